"""One private temp dir per command, inside TMPDIR, for every temp file of the command and its processes;
and the rule that tells a live command's dir (here, and staging.py's in OUTDIR) from one a SIGKILL left.

tempfile.TemporaryDirectory alone cannot promise that nothing is left: an
interrupt that lands between its mkdtemp and the finalizer it registers leaves
the dir behind (tests/test_faults.py delivers one after each mkdir), and a
backend's own temp files stay when its process group is killed. So for the
command's life ``tempfile.tempdir`` and ``TMPDIR`` (which every child inherits:
the hook process, the backend, its compilers) name this dir, and whatever is
left in it goes with it.

Only SIGKILL leaves such a dir behind, and the next command sweeps it, but only
on proof that its owner is gone: the owner holds an flock on the dir itself for
as long as it uses it, and the kernel drops that lock when the owner dies. A
PID proves nothing (another PID namespace with the same host name sees other
PIDs); a lock taken on the dir does, on every machine that shares the dir.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import FilesystemError
from .interrupts import signals_deferred

_HOST = os.uname().nodename
# O_CLOEXEC: no child inherits the lock, it is the frontend's alone. Its hook process and the backend die
# with the frontend (the watch pipe, hookprocess.py): a lock that outlived it would guard no live writer.
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def owned_prefix(stem: str) -> str:
    """``STEM-HOST-``, then the PID: a dir name that tells a reader whose it was."""
    return f"{stem}-{_HOST}-"


class Owned:
    """A dir of ours, locked (LOCK_EX) by ``fd`` until ``remove()``: no sweeper takes it meanwhile."""

    __slots__ = ("path", "fd")

    def __init__(self, path: str, fd: int) -> None:
        self.path, self.fd = path, fd

    def replaced(self) -> bool:
        """Whether ``path`` is no longer the dir we made (a backend put a symlink or another dir there)."""
        try:
            return not os.path.samestat(os.lstat(self.path), os.fstat(self.fd))
        except OSError:
            return True

    def remove(self) -> None:
        """Removed while still locked, then unlocked; whatever took its place goes too, a symlink
        as itself: never followed."""
        try:
            if os.path.islink(self.path) or not os.path.isdir(self.path):
                os.unlink(self.path)
            else:
                shutil.rmtree(self.path, ignore_errors=True)
        except OSError:
            pass
        finally:
            os.close(self.fd)


def _open_dir(path: str) -> int | None:
    """An fd on the dir ``path`` itself, None if it is gone or not a dir (a symlink is never followed)."""
    try:
        return os.open(path, _OPEN_DIR)
    except OSError:
        return None


def _lock(fd: int) -> bool | None:
    """LOCK_EX without waiting: True if taken, False if someone holds it, None where the filesystem
    has no locks (some network filesystems): nothing there can be proven, so nothing is swept there."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def make_owned(parent: str, prefix: str) -> Owned:
    """A new dir PREFIX+PID-XXXXXXXX in ``parent``, locked. A sweeper may take it in the instant between
    the mkdir and the lock (it looks abandoned then): it removes it, and another name is made."""
    while True:
        path = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
        fd = _open_dir(path)
        if fd is None:
            continue
        owned = Owned(path, fd)
        if _lock(fd) is not False and not owned.replaced():
            return owned
        os.close(fd)


def sweep(directory: str, prefix: str) -> None:
    """Dirs named PREFIX+PID-... in ``directory`` whose owner is provably gone (their lock is free):
    removed while locked by us, so that no second sweeper and no owner can take them meanwhile."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name[len(prefix):].partition("-")[0].isdigit()):
            continue
        path = os.path.join(directory, name)
        fd = _open_dir(path)
        if fd is None:
            continue
        owned = Owned(path, fd)
        if _lock(fd) and not owned.replaced():
            owned.remove()
        else:
            os.close(fd)


_PREFIX = owned_prefix("isobuild")


def _make() -> Owned:
    try:
        return make_owned(tempfile.gettempdir(), _PREFIX)
    except OSError as exc:  # gettempdir() raises FileNotFoundError when no candidate dir is usable
        raise FilesystemError(f"cannot make a temp dir: {exc.strerror or exc}",
                              hint="set TMPDIR to a writable directory") from None


@contextmanager
def private_tempdir() -> Iterator[str]:
    """``tempfile``'s dir and ``TMPDIR`` name a new dir of ours until the block ends, however it ends."""
    previous, previous_env, owned = tempfile.tempdir, os.environ.get("TMPDIR"), None
    try:
        with signals_deferred():  # made and recorded before an interrupt can strike
            owned = _make()
            tempfile.tempdir = os.environ["TMPDIR"] = owned.path
        yield owned.path
    finally:
        with signals_deferred():
            tempfile.tempdir = previous
            if previous_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = previous_env
            if owned is not None:
                owned.remove()
        if owned is not None:
            sweep(os.path.dirname(owned.path), _PREFIX)  # once the work is done: off the build's way
