"""The hook process's lifecycle (hookprocess.HookProcess, entered once per command): what an interrupt
ends first, and the entry into the target that every user of it shares (inside.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from isobuild.errors import InterpreterError, Interrupted

from conftest import clean_env, copy_fixture, isobuild_command
from helpers import wait_for

# A backend whose build_wheel reports its pid, its parent (the frontend) and pyproject-hooks' control dir
# (the in-process script's last argument), then waits to be interrupted.
WAITING_BACKEND = """
import os, sys, time

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.environ["GATE"] + ".part", "w") as f:
        f.write("%d %d %s" % (os.getpid(), os.getppid(), sys.argv[-1]))
    os.rename(os.environ["GATE"] + ".part", os.environ["GATE"])
    time.sleep(120)
"""


def _strace() -> str:
    """strace, to see the order of the frontend's system calls (test_faults.py's fixture installs it)."""
    path = shutil.which("strace")
    if path is None or subprocess.run([path, "-qq", "-o", os.devnull, "true"]).returncode != 0:
        pytest.skip("strace is not installed, or cannot trace here")
    return path


def test_an_interrupt_kills_the_hook_process_before_pyproject_hooks_removes_its_control_dir(tmp_path: Path) -> None:
    """Else the in-process script, still running, can find its control dir gone and print a traceback."""
    strace = _strace()
    src, gate, trace, temp = tmp_path / "src", tmp_path / "gate", tmp_path / "trace", tmp_path / "tmp"
    src.mkdir()
    temp.mkdir()
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "waiting"\nbackend-path = ["."]\n'
    )
    (src / "waiting.py").write_text(WAITING_BACKEND)
    proc = subprocess.Popen(
        [
            strace,
            "-f",
            "-qq",
            "-o",
            str(trace),
            "-e",
            "trace=kill,rmdir,unlinkat",
            *isobuild_command(),
            "wheel",
            str(src),
            "-x",
        ],
        env=clean_env(TMPDIR=str(temp), GATE=str(gate)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(gate)
        hook_process, frontend, control = gate.read_text().split(" ", 2)
        os.kill(int(frontend), signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == Interrupted.exit_code, err.decode(errors="replace")
    assert b"Traceback" not in err, err.decode(errors="replace")
    lines = [line for line in trace.read_text().splitlines() if line.startswith(f"{frontend} ")]
    killed = [i for i, line in enumerate(lines) if re.search(rf"kill\(-{hook_process}, SIGKILL\)", line)]
    name = re.escape(os.path.basename(control))
    removed = [
        i
        for i, line in enumerate(lines)
        if re.search(rf'(rmdir\("[^"]*{name}"|unlinkat\(.*"{name}", AT_REMOVEDIR)', line)
    ]
    assert killed and removed and killed[0] < removed[0], "\n".join(lines)
    assert os.listdir(temp) == []


def test_a_target_too_old_for_the_hooks_is_told_by_the_exit_code_the_frontend_passes(tmp_path: Path) -> None:
    """_inside/__main__.py cannot import the frontend: the "too old" exit code is defined once (inside.py)
    and handed to it. A fake interpreter that reports Python 3.7 stands for a real old one."""
    from isobuild.inside import TOO_OLD, inside_command

    old = tmp_path / "python3.7"
    old.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.version_info = (3, 7, 9)\n"
        "sys.argv = sys.argv[3:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    old.chmod(0o755)
    result = subprocess.run(inside_command(str(old), "serve"), capture_output=True, timeout=60)
    assert result.returncode == TOO_OLD, result.stderr
    assert b"the hooks need Python 3.8 or newer" in result.stderr
    assert InterpreterError.exit_code != TOO_OLD  # a code of the target's, never one of isobuild's


# Runs isobuild in this process and notes what it has imported at its first Popen (the hook process's start)
# and at its first message to that process (the setup the process waits for, once it has booted).
FIRST_POPEN = """
import runpy, subprocess, sys
before, record, start, notes = set(sys.modules), sys.argv[1], subprocess.Popen.__init__, {}

def note(when, **more):
    notes[when] = dict(imported=sorted(set(sys.modules) - before), **more)
    if len(notes) == 2:
        import json  # after the notes: the frontend's own import is what is looked for
        with open(record, "w") as f:
            json.dump(notes, f)

class FirstWrite:
    def __init__(self, stream):
        self.stream = stream
    def write(self, data):
        if "setup" not in notes:
            note("setup")
        return self.stream.write(data)
    def __getattr__(self, name):
        return getattr(self.stream, name)

def first(self, args, *rest, **kwargs):
    subprocess.Popen.__init__ = start
    note("start", argv=list(args))
    start(self, args, *rest, **kwargs)
    self.stdin = FirstWrite(self.stdin)

subprocess.Popen.__init__ = first
sys.argv = ["isobuild", *sys.argv[2:]]
runpy.run_module("isobuild", run_name="__main__", alter_sys=True)
"""

# What a build needs only once the hook process is started, or once its setup is sent: imported earlier,
# each delays the process's start or the setup it waits for (builder.py's docstring; benchmarks/overhead.py
# measures what that costs). tomllib is needed for the setup (the backend's name is in pyproject.toml).
AFTER_THE_SETUP = {
    "dataclasses",
    "email",
    "importlib.metadata",
    "inspect",
    "isobuild.dependencies",
    "isobuild.usage",
    "packaging",
    "pyproject_hooks",
    "zipfile",
}
AFTER_THE_START = {*AFTER_THE_SETUP, "isobuild.project", "isobuild.staging", "json", "tomli", "tomllib"}


def _among(names: list[str], modules: set[str]) -> list[str]:
    return [name for name in names if name in modules or name.split(".")[0] in modules]


def test_the_hook_process_starts_before_what_the_rest_of_the_build_imports(tmp_path: Path) -> None:
    src, record = copy_fixture("probe", tmp_path), tmp_path / "record.json"
    result = subprocess.run(
        [sys.executable, "-c", FIRST_POPEN, str(record), "wheel", str(src), "-o", str(tmp_path / "out")],
        env=clean_env(TMPDIR=str(tmp_path)),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    notes = json.loads(record.read_text())
    assert "serve" in notes["start"]["argv"], notes  # the hook process (inside.inside_command)
    assert _among(notes["start"]["imported"], AFTER_THE_START) == []
    assert _among(notes["setup"]["imported"], AFTER_THE_SETUP) == []
