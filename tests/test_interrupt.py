"""Ctrl-C, SIGTERM, SIGHUP and SIGQUIT: the hook process group dies, temp dirs go, exit code 130."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from isobuild.errors import Interrupted

from conftest import clean_env, copy_fixture, isobuild_command
from helpers import alive


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_interrupt_kills_hook_process_group(tmp_path: Path, signum: int) -> None:
    src = copy_fixture("probe", tmp_path)
    pidfile = tmp_path / "grandchild.pid"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        [*isobuild_command(), "wheel", str(src), "-C", f"spawn-sleep={pidfile}"],
        env=clean_env(TMPDIR=str(tmpdir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    assert alive(grandchild)

    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == Interrupted.exit_code, err.decode(errors="replace")
    assert b"ERROR interrupted" in err and out == b""
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    assert list(tmpdir.iterdir()) == []
    assert not (src / "dist").exists()


def test_a_successful_build_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backend's atexit handlers have run, the hook process has exited and been reaped, and
    what it left running in its group is killed, all before main() returns."""
    from isobuild.cli import main

    from conftest import read_report

    monkeypatch.delenv("PYTHONPATH", raising=False)
    src = copy_fixture("probe", tmp_path)
    pidfile, marker, report = tmp_path / "grandchild.pid", tmp_path / "atexit-ran", tmp_path / "report.json"
    monkeypatch.setenv("PROBE_REPORT", str(report))
    assert main(["wheel", str(src), "-q", "-C", f"linger={pidfile}", "-C", f"atexit-touch={marker}"]) == 0
    assert marker.exists()
    grandchild, hook_process = int(pidfile.read_text()), read_report(report)["pid"]
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    with pytest.raises(ChildProcessError):  # not a zombie of ours
        os.waitpid(hook_process, os.WNOHANG)
    capsys.readouterr()


def test_a_backends_child_stops_on_sigterm(tmp_path: Path) -> None:
    """The frontend holds SIGINT and SIGTERM while it starts the hook process; the mask must not reach the
    backend's children (a build tool that stops its helpers with SIGTERM, or `timeout`, would hang)."""
    src = copy_fixture("probe", tmp_path)
    result = subprocess.run(
        [*isobuild_command(), "wheel", str(src), "-C", "terminate-child=1"],
        env=clean_env(),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
