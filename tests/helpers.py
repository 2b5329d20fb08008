"""Checks several test files share; conftest.py keeps the fixtures and the machinery that makes things."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import isobuild

from conftest import PYZ, clean_env, isobuild_command, run_isobuild

# isobuild's own code, by where it lives (not by a directory name, which a clone called isobuild/ also
# has): the package the tests run, which holds _inside/ and _shim/, and isobuild.pyz's members.
OWN_CODE = tuple(
    os.path.realpath(path) + os.sep for path in [os.path.dirname(isobuild.__file__), *([PYZ] if PYZ else [])]
)
FRAME = re.compile(r'^ +File "(.+)", line \d+', re.MULTILINE)


def own_traceback(err: str) -> bool:
    """A traceback with a frame in isobuild's own code; a backend's traceback (its frames, pyproject-hooks',
    the stdlib's) is the backend's failure, reported as documented, wherever the checkout lives."""
    return "Traceback (most recent call last):" in err and any(
        os.path.realpath(path).startswith(OWN_CODE) for path in FRAME.findall(err)
    )


def alive(pid: int) -> bool:
    """Whether a process the test started is still running (a zombie is gone for a test's purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def wait_for(path: Path, seconds: float = 120) -> None:
    """Until ``path`` exists (a backend's gate or pid file), failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), path


def all_succeed_at_once(commands: list[list[str]], timeout: float = 120) -> None:
    """Start every ``isobuild ARGS`` of ``commands`` before waiting for any (so that they race), then each
    must exit 0."""
    procs = [
        subprocess.Popen([*isobuild_command(), *args], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode(errors="replace")


def install_with_installer(wheel: Path, destdir: Path, prefix: str, wrapper: list[str] | None = None) -> None:
    """The reference an install is compared with: ``python -m installer`` (pypa/installer's own command
    line, no bytecode) into ``destdir``, run under ``wrapper`` (e.g. a umask) if given."""
    argv = ["--prefix", prefix, "--destdir", str(destdir), "--no-compile-bytecode", str(wheel)]
    subprocess.run(
        [*(wrapper or []), sys.executable, "-m", "installer", *argv], check=True, env=clean_env(), timeout=300
    )


def python_says(python: str, code: str) -> str:
    """What ``python -c CODE`` prints: a fact of that interpreter, asked of the interpreter itself."""
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout


def magic_number(python: str) -> str:
    """``python``'s bytecode magic number, in hex: what the .pyc files it imports must start with."""
    return python_says(python, "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())")


def install_for(
    python: str, wheel: Path, prefix: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``isobuild install WHEEL --python PYTHON --prefix PREFIX ARGS``: a wheel installed for a target."""
    return run_isobuild("install", str(wheel), "--python", python, "--prefix", str(prefix), *args, env=env)
