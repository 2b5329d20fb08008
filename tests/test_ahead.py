"""The build's first hook runs ahead, while the frontend checks build-system.requires.

The hook process runs get_requires_for_build_* (with -x: only the backend's
import) right after its setup and holds the output back; it is shown when the
frontend asks for that hook, and never if the build stops before that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import clean_env, copy_fixture, read_report, run_isobuild


def _probe_requiring(tmp_path: Path, requirement: str) -> Path:
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("requires = []", f"requires = [{requirement!r}]"))
    return src


def test_first_hook_runs_ahead_and_its_output_shows_once_in_order(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=early-words")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    err = result.stderr.decode()
    assert "get_requires_for_build_wheel (run ahead): nothing more" in err
    assert err.count("early-words") == 2  # its stdout and its stderr, both on isobuild's stderr
    assert err.index("early-words") < err.index("get_requires_for_build_wheel (run ahead)")
    assert "early-words" not in result.stdout.decode()


def test_output_run_ahead_is_dropped_when_a_static_requirement_is_missing(tmp_path: Path) -> None:
    src = _probe_requiring(tmp_path, "not-installed-anywhere")
    touched = tmp_path / "get-requires-ran"
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=early-words", "-C", f"requires-touch={touched}")
    assert result.returncode == 3
    assert touched.exists()  # it did run ahead ...
    assert b"early-words" not in result.stderr  # ... and the build stopped before its output was due
    assert b"not-installed-anywhere" in result.stderr
    assert not (src / "dist").exists()


def test_a_crash_in_the_hook_run_ahead_shows_as_it_happens(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=last-words", "-C", "requires-abort=1")
    assert result.returncode == 4
    err = result.stderr.decode()
    assert "killed by SIGABRT during get_requires_for_build_wheel" in err
    assert "last-words" in err  # from the run that is not held back
    assert "Traceback" not in err
    assert not (src / "dist").exists()


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
        proc = subprocess.run([sys.executable, "-m", "isobuild", "wheel", str(src)], pass_fds=(stray,),
                              env=clean_env(PROBE_REPORT=str(report)), capture_output=True, timeout=300)
    finally:
        for fd in (read_end, write_end, stray):
            os.close(fd)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    fds = read_report(report)["fds"]
    assert fds is not None and stray not in fds
