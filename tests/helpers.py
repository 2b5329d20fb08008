"""Checks several test files share; conftest.py keeps the fixtures and the machinery that makes things."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import isobuild

from conftest import PYZ

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
