"""What a build declares (its closure), what its hooks used, and what it used without declaring it (issue 23)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from isobuild.declared import hidden as declared_hidden
from isobuild.dependencies import Environment, Policy, Resolved, check
from isobuild.errors import BackendFailed, BadInput
from isobuild.usage import used

from conftest import CACHE, build_env, clean_env, copy_fixture, require_interpreter, run_isobuild

SHIM = Path(__file__).resolve().parent.parent / "src" / "isobuild" / "_shim" / "sitecustomize.py"
MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "sys_platform": "linux",
    "os_name": "posix",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_version": "",
    "implementation_version": "3.11.9",
}


def _dist(where: Path, name: str, version: str, *requires: str) -> None:
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def _closure(env_dir: Path, requirements: list[str], policy: Policy = Policy()) -> dict[str, Resolved]:
    env = Environment([str(env_dir)], MARKERS, policy)
    check(requirements, "build-system.requires", env)
    return env.closure


def test_the_closure_follows_requires_dist_markers_and_extras(tmp_path: Path) -> None:
    _dist(
        tmp_path, "Backend_One", "1.0", "helper>=1", "windows-only; sys_platform == 'win32'", "fancy; extra == 'fancy'"
    )
    _dist(tmp_path, "helper", "2.0", "deep")
    _dist(tmp_path, "deep", "0.1")
    _dist(tmp_path, "fancy", "3.0")
    _dist(tmp_path, "windows-only", "1.0")
    _dist(tmp_path, "bystander", "1.0")

    plain = _closure(tmp_path, ["backend-one"])
    assert plain == {
        name: Resolved(name, version, str(tmp_path))
        for name, version in (("backend-one", "1.0"), ("helper", "2.0"), ("deep", "0.1"))
    }
    assert set(_closure(tmp_path, ["backend-one[fancy]"])) == {"backend-one", "helper", "deep", "fancy"}
    assert _closure(tmp_path, ["bystander; python_version < '3'"]) == {}


def test_relax_keeps_a_distribution_in_the_closure_and_remove_takes_it_out(tmp_path: Path) -> None:
    _dist(tmp_path, "backend", "1.0", "helper>=5")
    _dist(tmp_path, "helper", "2.0", "deep")
    _dist(tmp_path, "deep", "0.1")

    relaxed = _closure(tmp_path, ["backend"], Policy.of(["helper"], []))
    assert set(relaxed) == {"backend", "helper", "deep"} and relaxed["helper"].version == "2.0"
    assert set(_closure(tmp_path, ["backend"], Policy.of([], ["helper"]))) == {"backend"}
    assert _closure(tmp_path, ["backend"], Policy.of([], ["backend"])) == {}


# ---------------------------------------------------------------- what a build used (real backends)

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def write_dist(where: Path, name: str, version: str, files: dict[str, str], *, record: bool = True) -> None:
    """A distribution installed in ``where``: its files, and a .dist-info with RECORD (else a Debian-style
    .egg-info with top_level.txt alone)."""
    for path, text in files.items():
        (where / path).parent.mkdir(parents=True, exist_ok=True)
        (where / path).write_text(text)
    module = name.replace("-", "_")
    if record:
        info = where / f"{module}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        rows = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
        (info / "RECORD").write_text("".join(f"{row},,\n" for row in rows))
    else:
        info = where / f"{module}.egg-info"
        info.mkdir(parents=True)
        (info / "PKG-INFO").write_text(f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n")
        (info / "top_level.txt").write_text(f"{module}\n")


def _build(src: Path, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """``isobuild wheel SRC --json`` in the test build environment: its JSON and its stderr."""
    python = require_interpreter(VERSION)
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    result = run_isobuild("wheel", str(src), "--python", python, "-o", str(tmp_path / "out"), "--json", *args, env=env)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info, stderr


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "does not declare" in line]


def test_a_clean_project_uses_only_what_it_declares(tmp_path: Path) -> None:
    info, stderr = _build(copy_fixture("flit", tmp_path), tmp_path)

    deps = info["dependencies"]
    assert _names(deps["used"]) == ["flit-core"] and deps["used"][0]["how"] == "import"
    assert deps["used"][0]["location"] == str(build_env(VERSION))
    assert deps["undeclared"] == [] and deps["unused"] == [] and deps["unowned"] == []
    assert not _warnings(stderr)
    environment = info["environment"]
    assert environment["interpreter"] == info["interpreter"] and environment["version"] == info["python_version"]
    assert str(build_env(VERSION)) in environment["sys_path"]
    assert environment["config_settings"] == {} and environment["source_date_epoch"] is None


def pip_target(name: str, *args: str, **env: str) -> Path:
    """pip install --no-deps --target (``args``: what to install), once into the test cache."""
    target = CACHE / f"{name}-{VERSION}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [
                require_interpreter(VERSION),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-compile",
                "--disable-pip-version-check",
                "--target",
                str(target),
                *args,
            ],
            check=True,
            env=clean_env(PIP_ROOT_USER_ACTION="ignore", **env),
            timeout=300,
        )
        (target / ".complete").touch()
    return target


def setuptools_scm() -> Path:
    """setuptools-scm and vcs-versioning (its one requirement the build env lacks)."""
    return pip_target("declared-setuptools-scm", "setuptools-scm", "vcs-versioning")


def test_setuptools_scm_loaded_through_entry_points_is_undeclared(tmp_path: Path) -> None:
    scm = setuptools_scm()
    src = copy_fixture("declared-setuptools-scm", tmp_path)

    info, stderr = _build(src, tmp_path, "--path", str(scm))

    undeclared = {item["name"]: item for item in info["dependencies"]["undeclared"]}
    group = "entry point setuptools.finalize_distribution_options"
    assert undeclared["setuptools-scm"]["location"] == str(scm) and undeclared["setuptools-scm"]["how"] == group
    assert "vcs-versioning" in undeclared and "setuptools" not in undeclared  # imported by the plugin, later
    used = {item["name"]: item for item in info["dependencies"]["used"]}
    assert used["setuptools"]["how"] == "import"  # its own plugins too, but the backend is imported first
    [line] = _warnings(stderr)
    assert f"the hooks loaded {len(undeclared)} distributions the build does not declare (-v lists them)" in line
    _, verbose = _build(src, tmp_path, "--path", str(scm), "-v")
    assert f"undeclared: setuptools-scm {undeclared['setuptools-scm']['version']} at {scm} ({group})" in verbose


def test_a_build_hook_importing_an_undeclared_package(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_dist(extra, "isobuild-undeclared", "2.0", {"isobuild_undeclared/__init__.py": ""})
    (extra / "isobuild_loose_module.py").write_text("")

    info, _ = _build(copy_fixture("declared-hatch-hook", tmp_path), tmp_path, "--path", str(extra))

    deps = info["dependencies"]
    assert deps["undeclared"] == [
        {"name": "isobuild-undeclared", "version": "2.0", "location": str(extra), "how": "import"}
    ]
    assert deps["unowned"] == [{"path": str(extra / "isobuild_loose_module.py"), "how": "import"}]
    assert "hatchling" in _names(deps["used"])


def test_a_code_generator_run_as_a_python_child(tmp_path: Path) -> None:
    """Its package has a Debian-style .egg-info: no RECORD, no installed-files.txt, top_level.txt only."""
    extra = tmp_path / "extra"
    _codegen(extra)

    info, _ = _build(copy_fixture("declared-codegen", tmp_path), tmp_path, "--path", str(extra))

    assert info["dependencies"]["undeclared"] == [
        {"name": "isobuild-codegen", "version": "0.5", "location": str(extra), "how": "child process"}
    ]
    with zipfile.ZipFile(info["path"]) as zf:
        assert zf.read("sample_codegen/_generated.py") == b"VALUE = 1\n"


def test_without_the_check_nothing_is_called_undeclared(tmp_path: Path) -> None:
    info, stderr = _build(copy_fixture("setuptools-pyproject", tmp_path), tmp_path, "-x")

    assert info["dependencies"]["undeclared"] is None and info["dependencies"]["unused"] is None
    assert "setuptools" in _names(info["dependencies"]["used"]) and not _warnings(stderr)


def test_install_srcdir_says_when_the_build_used_what_it_does_not_declare(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write_dist(extra, "isobuild-undeclared", "2.0", {"isobuild_undeclared/__init__.py": ""})
    (extra / "isobuild_loose_module.py").write_text("")
    src = copy_fixture("declared-hatch-hook", tmp_path)
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))

    result = run_isobuild(
        "install",
        str(src),
        "--python",
        require_interpreter(VERSION),
        "--path",
        str(extra),
        "--prefix",
        str(tmp_path / "prefix"),
        "-v",
        env=env,
    )

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert _warnings(stderr) == ["isobuild: warning: the hooks loaded 1 distribution the build does not declare"]
    assert f"isobuild:   undeclared: isobuild-undeclared 2.0 at {extra} (import)" in stderr.splitlines()


# ---------------------------------------------------------------- --only-declared


def extra_dists(tmp_path: Path) -> Path:
    """A --path dir holding what the fixtures use without declaring it."""
    extra = tmp_path / "extra"
    write_dist(extra, "isobuild-undeclared", "2.0", {"isobuild_undeclared/__init__.py": ""})
    (extra / "isobuild_loose_module.py").write_text("")
    _codegen(extra)
    return extra


def _codegen(extra: Path) -> None:
    """A code generator run as ``python -m isobuild_codegen``, with a Debian-style .egg-info (no RECORD)."""
    generator = "import sys\nwith open(sys.argv[1], 'w') as f:\n    f.write('VALUE = 1\\n')\n"
    write_dist(
        extra,
        "isobuild-codegen",
        "0.5",
        {"isobuild_codegen/__init__.py": "", "isobuild_codegen/__main__.py": generator},
        record=False,
    )


def _only_declared(src: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env, python, out = clean_env(PYTHONPATH=str(build_env(VERSION))), require_interpreter(VERSION), tmp_path / "out"
    return run_isobuild("wheel", str(src), "--python", python, "-o", str(out), "--only-declared", *args, env=env)


def _members(wheel: str | Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.mark.parametrize("fixture", ["flit", "hatch", "setuptools-pyproject"])
def test_only_declared_builds_what_a_clean_project_builds(tmp_path: Path, fixture: str) -> None:
    src = copy_fixture(fixture, tmp_path)
    usual, _ = _build(src, tmp_path / "usual", "--path", str(extra_dists(tmp_path)))

    result = _only_declared(src, tmp_path, "--path", str(tmp_path / "extra"), "--json")

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    only = json.loads(result.stdout)
    assert _members(only["path"]) == _members(usual["path"])
    assert not {"isobuild-undeclared", "isobuild-codegen"} & set(_names(only["dependencies"]["used"]))


def test_only_declared_hides_setuptools_scm_from_setuptools_entry_points(tmp_path: Path) -> None:
    result = _only_declared(
        copy_fixture("declared-setuptools-scm", tmp_path), tmp_path, "--path", str(setuptools_scm()), "--json"
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    deps = json.loads(result.stdout)["dependencies"]
    assert "setuptools" in _names(deps["used"]) and "setuptools-scm" not in _names(deps["used"])


@pytest.mark.parametrize(
    ("fixture", "hidden"),
    [
        ("declared-hatch-hook", "isobuild-undeclared"),
        ("declared-metadata", "isobuild-undeclared"),
        ("declared-codegen", "isobuild-codegen"),
    ],
)
def test_a_build_that_needs_a_hidden_distribution_fails_with_a_hint_naming_it(
    tmp_path: Path, fixture: str, hidden: str
) -> None:
    """By import in the hook process, by importlib.metadata, by import in a Python child."""
    src = copy_fixture(fixture, tmp_path)
    extra = extra_dists(tmp_path)
    _build(src, tmp_path / "usual", "--path", str(extra))  # it builds where the distribution is seen

    result = _only_declared(src, tmp_path, "--path", str(extra))

    assert result.returncode == BackendFailed.exit_code
    lines = result.stderr.decode(errors="replace").splitlines()
    hint = next(line for line in lines if line.startswith("hint: "))
    assert f"--only-declared hid {hidden}, which the build asked for" in hint
    assert "add it to build-system.requires" in hint
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_only_declared_needs_the_check(tmp_path: Path) -> None:
    result = _only_declared(copy_fixture("flit", tmp_path), tmp_path, "-x")

    assert result.returncode == BadInput.exit_code
    assert b"--only-declared needs the dependency check" in result.stderr


def test_a_namespace_package_split_between_a_declared_and_a_hidden_distribution(tmp_path: Path) -> None:
    """One site dir: the shared dir stays, the hidden distribution's modules and metadata go (the shim's
    Hider, as the hook process and its children put it in place, run by the hooks' interpreter)."""
    write_dist(tmp_path, "ns-kept", "1.0", {"nsp/kept.py": "", "kept_top/__init__.py": ""})
    write_dist(tmp_path, "ns-gone", "1.0", {"nsp/gone.py": "", "gone_top.py": ""})
    hidden = declared_hidden([str(tmp_path)], [Resolved("ns-kept", "1.0", str(tmp_path))])
    assert hidden.names == ("ns-gone",) and hidden.dists == ((str(tmp_path), "ns-gone"),)
    assert str(tmp_path / "nsp") not in hidden.roots and str(tmp_path / "nsp" / "gone.py") in hidden.roots
    script = f"""
import importlib.metadata, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("shim", {str(SHIM)!r})
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
sys.path.insert(0, {str(tmp_path)!r})
shim.hide({list(hidden.roots)!r}, {[list(d) for d in hidden.dists]!r})
import nsp.kept, kept_top
results = {{"version": importlib.metadata.version("ns-kept"), "names": sorted(
    d.metadata["Name"] for d in importlib.metadata.distributions(path=[{str(tmp_path)!r}]))}}
for name in ("nsp.gone", "gone_top"):
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        results[name] = str(exc)
try:
    importlib.metadata.version("ns-gone")
except importlib.metadata.PackageNotFoundError:
    results["ns-gone"] = "not found"
print(json.dumps(results))
"""
    out = subprocess.run([require_interpreter(VERSION), "-S", "-c", script], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert json.loads(out.stdout) == {
        "version": "1.0",
        "names": ["ns-kept"],
        "ns-gone": "not found",
        "nsp.gone": "No module named 'nsp.gone'",
        "gone_top": "No module named 'gone_top'",
    }


@pytest.mark.parametrize("declared", [False, True])
def test_a_hidden_distributions_pth_file_is_never_run(tmp_path: Path, declared: bool) -> None:
    """Neither in the hook process (its .pth imports wait for the closure) nor in the code generator's
    child; a declared distribution's runs in both, as in a normal build."""
    extra = extra_dists(tmp_path)
    marker = tmp_path / "pth-ran"
    pth_line = f"import os; open(os.path.join({str(marker)!r}, str(os.getpid())), 'w').close()\n"
    write_dist(extra, "isobuild-pth", "1.0", {"isobuild_pth.pth": pth_line})
    marker.mkdir()
    src = copy_fixture("declared-codegen", tmp_path)
    requires = ["hatchling", "isobuild-codegen", *(["isobuild-pth"] if declared else [])]
    build_requires = f"requires = {json.dumps(requires)}"
    (src / "pyproject.toml").write_text(
        (src / "pyproject.toml").read_text().replace('requires = ["hatchling"]', build_requires)
    )

    usual, _ = _build(src, tmp_path / "usual", "--path", str(extra))
    assert len(list(marker.iterdir())) == 2  # the hook process and the code generator
    for ran in marker.iterdir():
        ran.unlink()
    result = _only_declared(src, tmp_path, "--path", str(extra))

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert len(list(marker.iterdir())) == (2 if declared else 0)


def test_the_importlib_metadata_backports_own_finder_does_not_find_a_hidden_distribution(tmp_path: Path) -> None:
    """The backport (a real one, declared) appends its own finder to sys.meta_path when imported: it finds
    a declared distribution, not a hidden one."""
    backport = pip_target("declared-importlib-metadata", "importlib-metadata", "zipp", "lazy-importer")
    src = copy_fixture("declared-metadata", tmp_path)
    (src / "hatch_build.py").write_text(
        (src / "hatch_build.py")
        .read_text()
        .replace("import importlib.metadata\n", "import importlib_metadata\n")
        .replace(
            'importlib.metadata.version("isobuild-undeclared")',
            'importlib_metadata.version("hatchling"), importlib_metadata.version("isobuild-undeclared")',
        )
    )
    pyproject = src / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requires = ["hatchling"]', 'requires = ["hatchling", "importlib-metadata"]')
    )
    extra = extra_dists(tmp_path)
    _build(src, tmp_path / "usual", "--path", str(extra), "--path", str(backport))  # found where it is not hidden

    result = _only_declared(src, tmp_path, "--path", str(extra), "--path", str(backport))

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == BackendFailed.exit_code, stderr
    assert "PackageNotFoundError: No package metadata was found for isobuild-undeclared" in stderr
    assert "--only-declared hid isobuild-undeclared, which the build asked for" in stderr


def test_install_srcdir_only_declared(tmp_path: Path) -> None:
    extra = extra_dists(tmp_path)
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    prefix = tmp_path / "prefix"

    result = run_isobuild(
        "install",
        str(copy_fixture("declared-hatch-hook", tmp_path)),
        "--only-declared",
        "--python",
        require_interpreter(VERSION),
        "--path",
        str(extra),
        "--prefix",
        str(prefix),
        env=env,
    )

    assert result.returncode == BackendFailed.exit_code
    assert b"--only-declared hid isobuild-undeclared, which the build asked for" in result.stderr
    assert not prefix.exists()


def test_unreadable_metadata_owns_nothing_and_breaks_nothing(tmp_path: Path) -> None:
    """A RECORD that is not UTF-8, a .dist-info that is a file: the files they would own are reported
    as owned by no distribution; the other distributions in the dir are still found."""
    write_dist(tmp_path, "fine", "1.0", {"fine.py": ""})
    write_dist(tmp_path, "bad-utf8", "1.0", {"bad_utf8.py": ""})
    (tmp_path / "bad_utf8-1.0.dist-info" / "RECORD").write_bytes(b"bad_utf8.py,,\n\xff\xfe\n")
    (tmp_path / "a_file-1.0.dist-info").write_text("not a dir")
    loaded = [(str(tmp_path / name), "import") for name in ("bad_utf8.py", "fine.py")]

    found, unowned = used(loaded, [str(tmp_path)], [], str(tmp_path / "src"))

    assert [(u.name, u.version, u.location) for u in found] == [("fine", "1.0", str(tmp_path))]
    assert unowned == [(str(tmp_path / "bad_utf8.py"), "import")]
    assert declared_hidden([str(tmp_path)], []).names == ("a-file", "bad-utf8", "fine")
