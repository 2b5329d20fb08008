"""``--check-declared`` (issue 23, item 4): which undeclared distribution the build used changes the artifact.

Real backends (setuptools, hatchling, flit_core) in a build environment holding more than each fixture
declares: the test build env plus a --path dir (test_declared.py's ``extra_dists``, and setuptools-scm).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from isobuild.checkdeclared import UNRECORDED
from isobuild.errors import BackendFailed, BadInput, Interrupted, UndeclaredMatters
from test_declared import VERSION, extra_dists, setuptools_scm, write_dist
from test_first_day import _documented_keys

from conftest import build_env, clean_env, copy_fixture, isobuild_command, require_interpreter, run_isobuild, snapshot

FAILED = "the build failed: "


def _env(tmp_path: Path) -> dict[str, str]:
    """The build env on PYTHONPATH, and a TMPDIR of the test's own: the command's temp dir must go."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return clean_env(PYTHONPATH=str(build_env(VERSION)), TMPDIR=str(tmp_path / "tmp"))


def _argv(command: str, src: Path, tmp_path: Path, *args: str) -> list[str]:
    extra = extra_dists(tmp_path) if not (tmp_path / "extra").exists() else tmp_path / "extra"
    return [
        command,
        str(src),
        "--python",
        require_interpreter(VERSION),
        "-o",
        str(tmp_path / "out"),
        "--path",
        str(extra),
        "--path",
        str(setuptools_scm()),
        "--check-declared",
        *args,
    ]


def _check(
    src: Path, tmp_path: Path, *args: str, command: str = "wheel"
) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any]]:
    """``isobuild COMMAND SRC --check-declared --json``: the process and its JSON."""
    result = run_isobuild(*_argv(command, src, tmp_path, "--json", *args), env=_env(tmp_path), timeout=600)
    assert result.returncode in (0, UndeclaredMatters.exit_code), result.stderr.decode(errors="replace")
    info: dict[str, Any] = json.loads(result.stdout)
    assert os.listdir(tmp_path / "tmp") == []  # the copies went with the command's temp dir
    assert os.listdir(tmp_path / "out") == [os.path.basename(info["path"])]  # OUTDIR: the kept artifact alone
    return result, info


def _undeclared(info: dict[str, Any]) -> set[str]:
    return {item["name"] for item in info["dependencies"]["undeclared"]}


@pytest.mark.parametrize("fixture", ["flit", "hatch", "setuptools-pyproject", "declared-setuptools-scm"])
def test_what_changes_nothing_is_harmless(tmp_path: Path, fixture: str) -> None:
    """Clean projects, and setuptools loading setuptools-scm (and more) through its entry points for nothing."""
    result, info = _check(copy_fixture(fixture, tmp_path), tmp_path)

    assert result.returncode == 0
    check = info["declared_check"]
    assert set(check) == {"matters", "harmless", "unreproducible"}
    assert check["matters"] == {} and check["unreproducible"] == []
    assert set(check["harmless"]) == _undeclared(info)
    if fixture == "declared-setuptools-scm":
        assert "setuptools-scm" in check["harmless"]
    keys = _documented_keys()
    assert set(info) == keys["Build"] | keys["What the build used"] | keys["Declared check"]
    stderr = result.stderr.decode(errors="replace")
    assert f"{len(check['harmless'])} undeclared distribution(s) used, all harmless" in stderr
    assert "isobuild:   harmless: " not in stderr  # they are listed with -v only


@pytest.mark.parametrize(
    ("fixture", "name", "changed"),
    [
        ("declared-hatch-hook", "isobuild-undeclared", FAILED),  # imported by a build hook
        ("declared-codegen", "isobuild-codegen", FAILED),  # run as a Python child
        ("declared-metadata", "isobuild-undeclared", FAILED),  # looked up with importlib.metadata: no import
        (
            "check-generated",
            "isobuild-undeclared",
            "members differ: sample_generated-1.0.dist-info/RECORD, sample_generated/_flavor.py",
        ),
        (
            "check-scm-version",
            "setuptools-scm",
            "sample_scm_version-0.0.0-py3-none-any.whl instead of "
            "sample_scm_version-1.0-py3-none-any.whl; members differ: ",
        ),
    ],
)
def test_what_the_artifact_needs_matters(tmp_path: Path, fixture: str, name: str, changed: str) -> None:
    src = copy_fixture(fixture, tmp_path)

    result, info = _check(src, tmp_path)

    assert result.returncode == UndeclaredMatters.exit_code
    check = info["declared_check"]
    assert list(check["matters"]) == [name] and check["matters"][name].startswith(changed)
    assert name not in check["harmless"] and set(check["harmless"]) <= _undeclared(info)
    assert info["exit_code"] == UndeclaredMatters.exit_code and info["error"] == "UndeclaredMatters"
    keys = _documented_keys()
    assert set(info) == keys["Build"] | keys["What the build used"] | keys["Declared check"] | keys["Failure"]
    lines = result.stderr.decode(errors="replace").splitlines()
    assert f"  {name} matters: {check['matters'][name]}" in lines
    assert f"ERROR --check-declared: the artifact changes without what the build does not declare: {name}" in lines
    hint = next(line for line in lines if line.startswith("hint: "))
    assert f"declare {name} in build-system.requires" in hint and info["path"] in hint
    with zipfile.ZipFile(info["path"]) as zf:  # the kept artifact is the usual one
        assert not any(n.startswith("sample_scm_version-0.0.0") for n in zf.namelist())


def test_a_metadata_lookup_without_import_is_named(tmp_path: Path) -> None:
    """The build succeeds without it, differently: what the hider refused names the candidate."""
    result, info = _check(copy_fixture("check-metadata-lookup", tmp_path), tmp_path)

    assert result.returncode == UndeclaredMatters.exit_code
    assert "isobuild-undeclared" not in _undeclared(info)  # never imported: the record does not list it
    assert info["declared_check"]["matters"] == {
        "isobuild-undeclared": "members differ: sample_lookup-1.0.dist-info/RECORD, sample_lookup/_found.py"
    }


def test_a_use_the_record_does_not_see_is_reported_as_unrecorded(tmp_path: Path) -> None:
    """A build hook lists the modules of a namespace package (no file of its own, nothing imported from
    it): without the undeclared distribution that adds a portion, the list differs, and nothing names it."""
    src = copy_fixture("check-generated", tmp_path)
    (src / "hatch_build.py").write_text(
        "import os\nimport pkgutil\n\nfrom hatchling.builders.hooks.plugin.interface import BuildHookInterface\n\n\n"
        "class CustomBuildHook(BuildHookInterface):\n"
        "    def initialize(self, version, build_data):\n"
        "        try:\n"
        "            import isobuild_plugins\n"
        "            names = sorted(m.name for m in pkgutil.iter_modules(isobuild_plugins.__path__))\n"
        "        except ImportError:\n"
        "            names = []\n"
        "        out = os.path.join(self.root, 'src', 'sample_generated', '_flavor.py')\n"
        "        with open(out, 'w') as f:\n"
        "            f.write('PLUGINS = {!r}\\n'.format(names))\n"
        "        build_data['force_include'][out] = 'sample_generated/_flavor.py'\n"
    )
    write_dist(extra_dists(tmp_path), "isobuild-plugin-a", "1.0", {"isobuild_plugins/plugin_a.py": ""})

    result, info = _check(src, tmp_path)

    assert result.returncode == UndeclaredMatters.exit_code
    matters = info["declared_check"]["matters"]
    assert list(matters) == [UNRECORDED] and matters[UNRECORDED].startswith(
        "members differ: sample_generated-1.0.dist-info/RECORD, sample_generated/_flavor.py; no undeclared distribution"
    )
    assert "the record does not see" in matters[UNRECORDED]
    assert info["declared_check"]["harmless"] == []
    assert "the build uses something it does not declare where the record does not see it" in result.stderr.decode(
        errors="replace"
    )


def test_backend_path_is_the_projects_own_even_with_egg_info_metadata(tmp_path: Path) -> None:
    """An in-tree backend beside an .egg-info naming it (setuptools-scm 8.1.0's sdist has src/setuptools_scm.egg-info,
    and builds itself from src/): --only-declared does not hide the project's own code."""
    src = _noisy(tmp_path)
    backend = src / "_backend"
    (backend / "noisy_helper").mkdir()
    (backend / "noisy_helper" / "__init__.py").write_text("")
    (backend / "noisy_helper" / "sub.py").write_text("")
    # pyproject-hooks finds top-level modules in backend-path itself; a submodule goes through sys.meta_path.
    (backend / "noisy_backend.py").write_text((backend / "noisy_backend.py").read_text() + "import noisy_helper.sub\n")
    info_dir = backend / "noisy_backend.egg-info"
    info_dir.mkdir()
    (info_dir / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: noisy-backend\nVersion: 1.0\n")
    (info_dir / "top_level.txt").write_text("noisy_backend\nnoisy_helper\n")

    result, info = _check(src, tmp_path)

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert info["declared_check"] == {"matters": {}, "harmless": ["isobuild-undeclared"], "unreproducible": []}


def _noisy(tmp_path: Path) -> Path:
    """fixtures/unreproducible, whose backend also imports an undeclared package it does not need."""
    src = copy_fixture("unreproducible", tmp_path)
    backend = src / "_backend" / "noisy_backend.py"
    backend.write_text(
        backend.read_text() + "\ntry:\n    import isobuild_undeclared  # noqa: F401\nexcept ImportError:\n    pass\n"
    )
    return src


def test_members_that_differ_between_two_usual_builds_are_never_blamed(tmp_path: Path) -> None:
    result, info = _check(_noisy(tmp_path), tmp_path, "-C", "noise=random")

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    check = info["declared_check"]
    assert check["matters"] == {} and check["harmless"] == ["isobuild-undeclared"]
    assert check["unreproducible"] == ["noisy-1.0.dist-info/RECORD", "noisy/token.py"]
    assert (
        "these members differ between two usual builds: noisy-1.0.dist-info/RECORD, noisy/token.py"
        in result.stderr.decode(errors="replace")
    )


def test_sdist_and_editable(tmp_path: Path) -> None:
    """hatchling runs the build hook for the sdist too; flit_core's editable wheel needs nothing undeclared."""
    result, info = _check(copy_fixture("check-generated", tmp_path / "a"), tmp_path / "a", command="sdist")
    assert result.returncode == UndeclaredMatters.exit_code
    assert info["path"].endswith(".tar.gz")
    assert info["declared_check"]["matters"] == {
        "isobuild-undeclared": "members differ: sample_generated-1.0/sample_generated/_flavor.py"
    }
    result, info = _check(copy_fixture("flit", tmp_path / "b"), tmp_path / "b", command="editable")
    assert result.returncode == 0 and info["declared_check"]["matters"] == {}


def test_an_environment_of_the_declared_closure_alone_needs_no_comparison(tmp_path: Path) -> None:
    """The cheapest case: nothing would be hidden, so no build in a copy runs."""
    env_dir = tmp_path / "env"
    for found in (build_env(VERSION) / "flit_core", *build_env(VERSION).glob("flit_core-*.dist-info")):
        shutil.copytree(found, env_dir / found.name)
    env = {**_env(tmp_path), "PYTHONPATH": str(env_dir)}

    result = run_isobuild(
        "wheel",
        str(copy_fixture("flit", tmp_path)),
        "--python",
        require_interpreter(VERSION),
        "-o",
        str(tmp_path / "out"),
        "--check-declared",
        "--json",
        env=env,
    )

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert json.loads(result.stdout)["declared_check"] == {"matters": {}, "harmless": [], "unreproducible": []}
    assert "the build environment holds nothing but the declared closure: nothing to compare" in stderr
    assert "--check-declared build 1" not in stderr


def test_verbose_lists_the_harmless_ones(tmp_path: Path) -> None:
    result = run_isobuild(
        *_argv("wheel", copy_fixture("declared-setuptools-scm", tmp_path), tmp_path, "-v"),
        env=_env(tmp_path),
        timeout=600,
    )

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    lines = result.stderr.decode(errors="replace").splitlines()
    assert "isobuild:   harmless: setuptools-scm" in lines
    assert result.stdout.decode().strip() == str(next((tmp_path / "out").iterdir()))


def test_srcdir_is_left_as_a_usual_build_leaves_it(tmp_path: Path) -> None:
    """The comparison builds run in copies: SRCDIR gets only what the usual build writes (setuptools' build/)."""
    plain = copy_fixture("check-scm-version", tmp_path / "plain")
    checked = copy_fixture("check-scm-version", tmp_path / "checked")
    env = _env(tmp_path)
    usual = run_isobuild(
        "wheel",
        str(plain),
        "--python",
        require_interpreter(VERSION),
        "-o",
        str(tmp_path / "o"),
        "--path",
        str(setuptools_scm()),
        env=env,
    )
    assert usual.returncode == 0, usual.stderr.decode(errors="replace")

    result, _ = _check(checked, tmp_path)

    assert result.returncode == UndeclaredMatters.exit_code
    assert snapshot(checked) == snapshot(plain)


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["-x"], "needs the dependency check"),
        (["--only-declared"], "not combined with --only-declared"),
        (["--check-reproducible"], "--check-reproducible each run builds"),
    ],
)
def test_what_it_does_not_combine_with(tmp_path: Path, args: list[str], refused: str) -> None:
    result = run_isobuild(*_argv("wheel", copy_fixture("flit", tmp_path), tmp_path, *args), env=_env(tmp_path))

    assert result.returncode == BadInput.exit_code
    assert refused in result.stderr.decode(errors="replace")
    assert not (tmp_path / "out").exists()


def test_metadata_has_no_check_declared(tmp_path: Path) -> None:
    result = run_isobuild(*_argv("metadata", copy_fixture("flit", tmp_path), tmp_path), env=_env(tmp_path))

    assert result.returncode == BadInput.exit_code and b"--check-declared" in result.stderr


def test_a_build_that_fails_only_in_the_copy_cannot_be_checked(tmp_path: Path) -> None:
    src = copy_fixture("declared-hatch-hook", tmp_path)
    (src / "hatch_build.py").write_text(
        "from hatchling.builders.hooks.plugin.interface import BuildHookInterface\n\n\n"
        "class CustomBuildHook(BuildHookInterface):\n"
        "    def initialize(self, version, build_data):\n"
        "        if '/declared/tree/' in self.root:\n"
        "            raise RuntimeError('this tree must not move')\n"
    )

    result = run_isobuild(*_argv("wheel", src, tmp_path), env=_env(tmp_path), timeout=600)

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == BackendFailed.exit_code, stderr
    assert "the usual build succeeded, but the same build in a copy of the tree" in stderr
    assert "this tree must not move" in stderr and "Traceback" not in stderr.split("ERROR")[-1]
    assert os.listdir(tmp_path / "tmp") == []


def test_an_interrupt_during_the_comparison_builds_leaves_no_copy_and_no_process(tmp_path: Path) -> None:
    """SIGTERM once the usual build is in OUTDIR: exit 130, the command's temp dir (the copies) gone."""
    errors = tmp_path / "stderr"
    with open(errors, "wb") as err:
        proc = subprocess.Popen(
            [*isobuild_command(), *_argv("wheel", copy_fixture("check-scm-version", tmp_path), tmp_path, "-v")],
            env=_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while b"--check-declared build 2 (only declared): hooks run by" not in errors.read_bytes():
            assert proc.poll() is None, errors.read_bytes().decode(errors="replace")
            assert time.monotonic() < deadline, "the comparison builds never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == Interrupted.exit_code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert os.listdir(tmp_path / "tmp") == []
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["sample_scm_version-1.0-py3-none-any.whl"]
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing left in isobuild's own group (its hook processes have groups of their own)
