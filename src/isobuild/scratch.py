"""One private temp dir per command, inside TMPDIR, for every temp file of the command and its processes.

tempfile.TemporaryDirectory alone cannot promise that nothing is left: an
interrupt that lands between its mkdtemp and the finalizer it registers leaves
the dir behind (tests/test_faults.py delivers one after each mkdir), and a
backend's own temp files stay when its process group is killed. So for the
command's life ``tempfile.tempdir`` and ``TMPDIR`` (which every child inherits:
the hook process, the backend, its compilers) name this dir, and whatever is
left in it goes with it. Only SIGKILL leaves it behind; the next command of
this host sweeps it once its process is gone (as staging.py does in OUTDIR).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import FilesystemError
from .interrupts import signals_deferred

_HOST = os.uname().nodename


def owned_prefix(stem: str) -> str:
    """``STEM-HOST-``, then the PID: a dir name that tells the next command whose it was."""
    return f"{stem}-{_HOST}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def sweep(directory: str, prefix: str) -> None:
    """Dirs named PREFIX+PID-... in ``directory`` whose process of this host is gone (SIGKILL left them): removed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].partition("-")[0]
        if name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


_PREFIX = owned_prefix("isobuild")


def _make() -> str:
    try:
        return tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
    except OSError as exc:  # gettempdir() raises FileNotFoundError when no candidate dir is usable
        raise FilesystemError(f"cannot make a temp dir: {exc.strerror or exc}",
                              hint="set TMPDIR to a writable directory") from None


@contextmanager
def private_tempdir() -> Iterator[str]:
    """``tempfile``'s dir and ``TMPDIR`` name a new dir of ours until the block ends, however it ends."""
    previous, previous_env, path = tempfile.tempdir, os.environ.get("TMPDIR"), ""
    try:
        with signals_deferred():  # made and recorded before an interrupt can strike
            path = _make()
            tempfile.tempdir = os.environ["TMPDIR"] = path
        yield path
    finally:
        with signals_deferred():
            tempfile.tempdir = previous
            if previous_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = previous_env
            if path:
                shutil.rmtree(path, ignore_errors=True)
        if path:
            sweep(os.path.dirname(path), _PREFIX)  # once the work is done: off the build's way
