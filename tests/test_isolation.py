"""The isolation contract, proved with real interpreters and real poisoned user and system sites."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from isobuild.errors import MissingDependencies

from conftest import (
    FIXTURE_DEP,
    TARGET_VERSIONS,
    copy_fixture,
    make_poisoned,
    read_report,
    require_interpreter,
    run_isobuild,
)


def _sysconfig_purelib(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _inside(path: str, root: Path | str) -> bool:
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


@pytest.mark.parametrize("version", TARGET_VERSIONS)
@pytest.mark.parametrize("target_kind", ["interpreter", "venv"])
def test_hooks_see_stdlib_and_build_env_only(tmp_path: Path, version: str, target_kind: str) -> None:
    python = require_interpreter(version)
    poisoned = make_poisoned(tmp_path, python, version)
    target = python if target_kind == "interpreter" else poisoned.venv_python
    build_env = tmp_path / "build-env"
    (build_env / "envdep-1.0.dist-info").mkdir(parents=True)
    (build_env / "envdep-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: envdep\nVersion: 1.0\n")
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"

    result = run_isobuild(
        "wheel", str(src), "--python", target, env=poisoned.env(str(build_env), PROBE_REPORT=str(report))
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    wheel = Path(result.stdout.decode().strip())
    assert wheel.name == "probe-1.0-py3-none-any.whl" and wheel.is_file()
    data = read_report(report)

    # 3. sys.executable is the target as named, not resolved, not a wrapper.
    assert data["executable"] == target
    # 1. stdlib + PYTHONPATH + backend-path; no user or system site, nothing of isobuild's.
    forbidden = [poisoned.home, poisoned.venv_site, _sysconfig_purelib(python)]
    for entry in data["sys_path"]:
        assert not any(_inside(entry, root) for root in forbidden), entry
        assert "isobuild" not in entry, entry
    assert str(build_env) in data["sys_path"]
    assert not any(data["importable"].values()), data["importable"]  # isobuild's own dependencies
    assert str(src / "_backend") == data["sys_path"][0]
    # 2. No foreign code ran and importlib.metadata sees the build env only.
    assert data["modules"] == {"sitecustomize": None, "usercustomize": None}
    names = {d["name"] for d in data["distributions"]}
    assert "envdep" in names
    assert not names & {"poison", "wheel", FIXTURE_DEP}
    assert all(not eps for group, eps in data["entry_points"].items() if group != "console_scripts")
    # 4. A child started with sys.executable: same sys.path, no user site, no system site.
    child = data["grandchild"]
    assert "sys_path" in child, child
    assert [p for p in child["sys_path"] if p not in ("", str(src))] == [
        p for p in data["sys_path"] if p != str(src / "_backend")
    ]
    assert child["enable_user_site"] is False
    assert child["sitecustomize"] is None or "isobuild" in child["sitecustomize"]
    assert child["usercustomize"] is None
    assert not set(child["distributions"]) & {"poison", "wheel", FIXTURE_DEP}
    # The hook process ran no foreign code at all. A child of a venv target runs
    # the venv's .pth lines (Python cannot stop that without -S): that one is documented.
    expected = {"interpreter": set(), "venv": {"pth-system"}}[target_kind]
    fired = {"-".join(name.split("-")[:2]) for name in poisoned.fired()}
    assert fired == expected, poisoned.fired()


def test_requirement_masked_by_user_site_is_missing(tmp_path: Path) -> None:
    version = "3.11"
    python = require_interpreter(version)
    poisoned = make_poisoned(tmp_path, python, version)
    src = copy_fixture("requires-dep", tmp_path)

    result = run_isobuild("wheel", str(src), "--python", python, env=poisoned.env())

    assert result.returncode == MissingDependencies.exit_code, result.stderr.decode(errors="replace")
    err = result.stderr.decode()
    assert f"missing build dependencies (checked against {python}, user and system site excluded): " in err
    assert "isobuild-fixture-dep>=1.0" in err
    assert "--system-site keeps it" not in err  # the user site has it: never a way in
    assert "Traceback" not in err
    assert not (src / "dist").exists()
    assert poisoned.fired() == []


def test_requirement_in_system_site_counts_only_with_system_site(tmp_path: Path) -> None:
    version = "3.11"
    python = require_interpreter(version)
    poisoned = make_poisoned(tmp_path, python, version)
    src = copy_fixture("requires-dep", tmp_path)

    without = run_isobuild("wheel", str(src), "--python", poisoned.venv_python, env=poisoned.env())
    with_site = run_isobuild("wheel", str(src), "--python", poisoned.venv_python, "--system-site", env=poisoned.env())

    assert without.returncode == MissingDependencies.exit_code
    hint = next(line for line in without.stderr.decode().splitlines() if line.startswith("hint: "))
    assert hint.startswith(f"hint: isobuild-fixture-dep>=1.0: in {poisoned.venv_python}'s own site-packages (")
    assert "which isobuild leaves out; --system-site keeps it (never the user site)" in hint
    assert with_site.returncode == 0, with_site.stderr.decode(errors="replace")
    assert "user site excluded" in with_site.stderr.decode()


def test_the_system_site_hint_counts_the_build_environment_too(tmp_path: Path) -> None:
    """The requirement is on PYTHONPATH, only its own requirement in the excluded site-packages: what
    --system-site would give the hooks is both, so the hint must name it."""
    poisoned = make_poisoned(tmp_path, require_interpreter("3.11"), "3.11")
    build_env = tmp_path / "build-env"
    info = build_env / f"{FIXTURE_DEP}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: isobuild-fixture-dep\nVersion: 1.2\nRequires-Dist: wheel>=99\n"
    )  # the poisoned site's wheel is 99.0
    src = copy_fixture("requires-dep", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("isobuild-fixture-dep>=1.0", "isobuild-fixture-dep>=1.1"))

    result = run_isobuild("wheel", str(src), "--python", poisoned.venv_python, env=poisoned.env(str(build_env)))

    assert result.returncode == MissingDependencies.exit_code, result.stderr.decode(errors="replace")
    hint = next(line for line in result.stderr.decode().splitlines() if line.startswith("hint: "))
    assert hint.startswith(f"hint: isobuild-fixture-dep>=1.1: in {poisoned.venv_python}'s own site-packages ("), hint


def test_requirement_on_pythonpath_is_satisfied(tmp_path: Path) -> None:
    python = require_interpreter("3.11")
    poisoned = make_poisoned(tmp_path, python, "3.11")
    build_env = tmp_path / "build-env"
    info = build_env / f"{FIXTURE_DEP}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: isobuild-fixture-dep\nVersion: 1.2\n")
    src = copy_fixture("requires-dep", tmp_path)

    result = run_isobuild("wheel", str(src), "--python", python, env=poisoned.env(str(build_env)))

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert Path(result.stdout.decode().strip()).name == "needsdep-1.0-py3-none-any.whl"


def test_path_dirs_are_site_dirs_and_reach_children(tmp_path: Path) -> None:
    python = require_interpreter("3.11")
    extra = tmp_path / "extra"
    (extra / "deeper").mkdir(parents=True)
    (extra / "add-deeper.pth").write_text(str(extra / "deeper") + "\n")
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"

    result = run_isobuild(
        "wheel",
        str(src),
        "--python",
        python,
        "--path",
        str(extra),
        env=make_poisoned(tmp_path, python, "3.11").env(PROBE_REPORT=str(report)),
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    data = read_report(report)
    assert str(extra) in data["sys_path"] and str(extra / "deeper") in data["sys_path"]
    assert str(extra / "deeper") in data["grandchild"]["sys_path"]


def test_environment_variables(tmp_path: Path) -> None:
    python = require_interpreter("3.11")
    poisoned = make_poisoned(tmp_path, python, "3.11")
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    env = poisoned.env(
        PROBE_REPORT=str(report),
        SOURCE_DATE_EPOCH="315532800",
        PYTHONUSERBASE=str(poisoned.home / ".local"),
        PYTHONSTARTUP=str(tmp_path / "startup.py"),
        PYTHONNOUSERSITE="",
    )

    result = run_isobuild("wheel", str(src), "--python", python, env=env)

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    environ = read_report(report)["environ"]
    assert environ["SOURCE_DATE_EPOCH"] == "315532800"
    assert environ["PYTHONNOUSERSITE"] == "1"
    assert environ["PYTHONUSERBASE"] is None and environ["PYTHONSTARTUP"] is None
    assert poisoned.fired() == []


def test_vendored_distribution_does_not_satisfy_the_check(tmp_path: Path) -> None:
    from conftest import build_env

    python = require_interpreter("3.11")
    src = copy_fixture("setuptools-vendored-wheel", tmp_path)
    env = make_poisoned(tmp_path, python, "3.11").env(str(build_env("3.11")))

    result = run_isobuild("wheel", str(src), "--python", python, env=env)

    assert result.returncode == MissingDependencies.exit_code, result.stderr.decode(errors="replace")
    assert b"get_requires_for_build_wheel: wheel" in result.stderr  # imported before the check
    assert b"missing build dependencies" in result.stderr and b": wheel\n" in result.stderr
    assert not (src / "dist").exists()


@pytest.mark.parametrize("target_kind", ["interpreter", "venv"])
def test_env_command_shows_what_the_hooks_see(tmp_path: Path, target_kind: str) -> None:
    import json

    python = require_interpreter("3.11")
    poisoned = make_poisoned(tmp_path, python, "3.11")
    target = python if target_kind == "interpreter" else poisoned.venv_python
    extra = tmp_path / "extra"
    extra.mkdir()
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    env = poisoned.env(str(tmp_path / "build-env"), PROBE_REPORT=str(report), PYTHONUSERBASE=str(tmp_path))
    common = [str(src), "--python", target, "--path", str(extra)]

    shown = run_isobuild("env", *common, "--json", env=env)
    built = run_isobuild("wheel", *common, env=env)

    assert shown.returncode == 0 and built.returncode == 0, shown.stderr + built.stderr
    info, data = json.loads(shown.stdout), read_report(report)
    assert info["interpreter"] == data["executable"] == target
    assert info["sys_path"] == data["sys_path"]
    assert info["environment"]["children"]["PYTHONPATH"] == data["environ"]["PYTHONPATH"]
    assert info["environment"]["removed"] == {"PYTHONUSERBASE": str(tmp_path)}
    assert data["environ"]["PYTHONUSERBASE"] is None
    assert info["excluded"]["user_site"] == str(poisoned.home / ".local" / "lib" / "python3.11" / "site-packages")
    if target_kind == "venv":
        assert info["excluded"]["system_site"] == [str(poisoned.venv_site)]
    same = info["children"]["same_interpreter"]
    assert same["executable"] == target
    assert same["sys_path"] + [str(extra)] == [p for p in data["grandchild"]["sys_path"] if p != ""]
    assert "left alone" in info["children"]["other_interpreters"]
    text = run_isobuild("env", *common, env=env).stdout.decode()
    assert f"interpreter: {target} (Python 3.11." in text and f"  {src / '_backend'}" in text
    assert "children run by another interpreter: left alone" in text


def test_env_with_system_site_reports_the_system_site_children_get(tmp_path: Path) -> None:
    """A child of the hooks' interpreter gets the system site back as a site dir: env says so."""
    import json

    python = require_interpreter("3.11")
    poisoned = make_poisoned(tmp_path, python, "3.11")
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    common = [str(src), "--python", poisoned.venv_python, "--system-site"]
    env = poisoned.env(PROBE_REPORT=str(report))

    info = json.loads(run_isobuild("env", *common, "--json", env=env).stdout)
    assert run_isobuild("wheel", *common, env=env).returncode == 0

    assert info["children"]["same_interpreter"]["site_dirs"] == [str(poisoned.venv_site)]
    assert str(poisoned.venv_site) in read_report(report)["grandchild"]["sys_path"]
    assert f"  {poisoned.venv_site} (site dir)" in run_isobuild("env", *common, env=env).stdout.decode()


def _foreign_report(tmp_path: Path, foreign: str, module: str, hooks_python: str) -> dict:  # type: ignore[type-arg]
    import json

    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "foreign.json"
    result = run_isobuild(
        "wheel",
        str(src),
        "--python",
        hooks_python,
        "-C",
        f"foreign-python={foreign}",
        "-C",
        f"foreign-report={report}",
        "-C",
        f"foreign-import={module}",
        env=make_poisoned(tmp_path, hooks_python, hooks_python.rsplit("python", 1)[1]).env(),
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    found: dict = json.loads(report.read_text())  # type: ignore[type-arg]
    return found


def test_another_interpreter_run_by_a_hook_keeps_its_own_site_and_sitecustomize(tmp_path: Path) -> None:
    """A tool of another interpreter (here a venv of another Python) sees its site-packages and runs its own
    sitecustomize, as without isobuild; isobuild's shim dir is gone from its sys.path."""
    hooks_python = require_interpreter("3.11")
    other = require_interpreter("3.12")
    venv = tmp_path / "tool-venv"
    subprocess.run([other, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / "python3.12" / "site-packages"
    (site / "toolmod.py").write_text("VALUE = 1\n")
    (site / "sitecustomize.py").write_text("TOOL_OWN = True\n")

    found = _foreign_report(tmp_path, str(venv / "bin" / "python"), "toolmod", hooks_python)

    assert found["imported"] is True, found
    assert found["sitecustomize"] == str(site / "sitecustomize.py")
    assert str(site) in found["sys_path"]
    assert not any("_shim" in entry for entry in found["sys_path"]), found["sys_path"]


def test_debian_python3_run_by_a_hook_imports_from_its_dist_packages(tmp_path: Path) -> None:
    """``/usr/bin/python3 -c "import yaml"`` from a hook works as under build, Debian's sitecustomize included."""
    system = "/usr/bin/python3"
    probe = (
        subprocess.run(
            [system, "-c", "import yaml, sitecustomize; print(sitecustomize.__file__)"], capture_output=True, text=True
        )
        if os.path.exists(system)
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip(f"{system} with PyYAML and a sitecustomize is not on this machine")

    found = _foreign_report(tmp_path, system, "yaml", require_interpreter("3.11"))

    assert found["imported"] is True, found
    assert found["sitecustomize"] == probe.stdout.strip()


@pytest.mark.parametrize("variable", ["NIX_PYTHONPATH", "GUIX_PYTHONPATH"])
def test_nix_and_guix_site_variables_are_site_dirs(tmp_path: Path, variable: str) -> None:
    python = require_interpreter("3.11")
    store = tmp_path / "store"
    (store / "nested").mkdir(parents=True)
    (store / "nested.pth").write_text(str(store / "nested") + "\n")
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    env = make_poisoned(tmp_path, python, "3.11").env(PROBE_REPORT=str(report), **{variable: str(store)})

    result = run_isobuild("wheel", str(src), "--python", python, env=env)

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    data = read_report(report)
    assert str(store) in data["sys_path"] and str(store / "nested") in data["sys_path"]
    assert str(store / "nested") in data["grandchild"]["sys_path"]
