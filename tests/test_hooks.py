"""The hooks run in one hook process through pyproject-hooks: what that keeps and what it reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, BadInput, MissingDependencies

from conftest import clean_env, copy_fixture, isobuild_command, read_report, run_isobuild


def _probe_requiring(tmp_path: Path, requirement: str) -> Path:
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("requires = []", f"requires = [{requirement!r}]"))
    return src


def test_skip_dependency_check_asks_no_get_requires(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    touched = tmp_path / "get-requires-ran"
    result = run_isobuild("wheel", str(src), "-x", "-C", f"requires-touch={touched}", "-C", "echo=built")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert not touched.exists()
    assert b"get_requires" not in result.stderr
    assert result.stderr.count(b"built") == 2


def test_hook_process_inherits_no_stray_descriptor(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    read_end, write_end = os.pipe()
    stray = 97
    os.dup2(write_end, stray)
    try:
        proc = subprocess.run(
            [*isobuild_command(), "wheel", str(src)],
            pass_fds=(stray,),
            env=clean_env(PROBE_REPORT=str(report)),
            capture_output=True,
            timeout=300,
        )
    finally:
        for fd in (read_end, write_end, stray):
            os.close(fd)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    fds = read_report(report)["fds"]
    assert fds is not None and stray not in fds


def test_a_missing_requirement_in_get_requires_answer_means_no_build_hook_at_all(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    count = tmp_path / "hooks-called"
    result = run_isobuild("wheel", str(src), "-C", "requires=not-installed-anywhere>=2", "-C", f"count={count}")
    assert result.returncode == MissingDependencies.exit_code, result.stderr.decode(errors="replace")
    assert count.read_text() == "get_requires\n"
    assert not (src / "dist").exists()


@pytest.mark.parametrize(
    "options, hook",
    [(["-C", "requires-fail=broken-words"], "get_requires"), (["-x", "-C", "fail=broken-words"], "build_wheel")],
)
def test_a_failure_shows_once_with_the_backends_traceback(tmp_path: Path, options: list[str], hook: str) -> None:
    """The traceback as the backend raised it, without the runner's frames; the hook is not run again."""
    src = copy_fixture("probe", tmp_path)
    count = tmp_path / "hooks-called"
    result = run_isobuild("wheel", str(src), "-C", "echo=echo-words", "-C", f"count={count}", *options)
    err = result.stderr.decode()
    assert result.returncode == BackendFailed.exit_code, err
    assert count.read_text() == f"{hook}\n"
    assert err.count("RuntimeError: broken-words") == 2  # the traceback's last line, and isobuild's ERROR line
    traceback = err.split("ERROR")[0].split("Traceback")[-1]
    assert "probe_backend.py" in traceback and "_inside" not in traceback and "runpy" not in traceback
    assert not (src / "dist").exists()


@pytest.mark.parametrize("options", [["-C", "requires-warn=careful-words"], ["-x", "-C", "warn=careful-words"]])
def test_warnings_of_a_hook_reach_the_frontend_as_pyproject_hooks_forwards_them(
    tmp_path: Path, options: list[str]
) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), *options)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err.count("BuildBackendWarning: careful-words") == 1, err


def test_marker_values_are_the_same_from_the_hook_process_and_from_packaging_here() -> None:
    """The hook process computes them for the check with the stdlib alone: they must agree with packaging's."""
    from packaging.markers import default_environment

    from isobuild.hookprocess import HookProcess
    from isobuild.isolation import Isolation

    with HookProcess(Isolation(sys.executable)) as process:
        process.setup()
        hello = process.hello()
    assert hello.markers == dict(default_environment())


def test_unreadable_metadata_of_a_requirement_is_reported_by_the_check(tmp_path: Path) -> None:
    """Not a dead hook process (which would read as an unusable interpreter): exit 3, saying why."""
    site = tmp_path / "site"
    info = site / "latin.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_bytes(
        "Metadata-Version: 1.1\nName: latin\nVersion: 1.0\nAuthor: Jos\xe9\n".encode("latin-1")
    )
    src = _probe_requiring(tmp_path, "latin>=1")
    result = run_isobuild("wheel", str(src), env=clean_env(PYTHONPATH=str(site)))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == MissingDependencies.exit_code, err
    assert "unreadable metadata: UnicodeDecodeError" in err and "Traceback" not in err
    assert not (src / "dist").exists()


def test_with_x_requirement_strings_are_not_even_parsed(tmp_path: Path) -> None:
    src = _probe_requiring(tmp_path, "not a >>= requirement")
    assert run_isobuild("wheel", str(src)).returncode == BadInput.exit_code
    result = run_isobuild("wheel", str(src), "-x")
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def test_compiling_with_a_pool_works_whatever_the_default_start_method(tmp_path: Path) -> None:
    """Python 3.14 starts pool workers with a forkserver by default; they would re-run _inside/__main__.py."""
    from isobuild.inside import INSIDE, TOO_OLD

    sources = []
    for i in range(100):
        path = tmp_path / f"m{i:03}.py"
        path.write_text(f"VALUE = {i}\n")
        sources.append([str(path), str(path)])
    driver = (
        "import multiprocessing, os, runpy, sys\n"
        "multiprocessing.set_start_method('forkserver')\n"
        "sys.argv = [sys.argv[1], sys.argv[2], 'compile']\n"
        "sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as for python _inside/__main__.py\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    lines = [json.dumps({"levels": [0], "mode": None, "jobs": 2})] + [json.dumps(pair) for pair in sources]
    proc = subprocess.run(
        [sys.executable, "-S", "-s", "-c", driver, INSIDE[0], str(TOO_OLD)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 100
