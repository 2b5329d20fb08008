"""One private temp dir per command, inside TMPDIR, for every temp file of the command and its processes;
and the rule that tells a live command's dir (here, and staging.py's in OUTDIR) from one a SIGKILL left.

Its name is a function of the command's inputs alone (``input_key``: the source tree's path, or an
sdist's content, and the target interpreter), never of a PID or a random suffix: a backend sees it (as
TMPDIR, and as the parent of an sdist's unpacked tree), and what a backend sees can end up in the
artifact (a C extension's debug info records the dir it was compiled in). Two commands with the same
inputs therefore take turns: the second waits, saying so, while the first holds the dir's lock
(``claim``). Where the name cannot be had (a filesystem without locks, another user's dir in its place)
the command falls back to a random name (``make_owned``) and says that its artifact may then differ.

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

Two path rules that every writer of isobuild shares live here too: a dir is ours only once our own
mkdir made it (``make_dirs``: OUTDIR's parents in staging.py, an install's dirs in install/journal.py),
and a path is inside a root only as ``inside`` says.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import FilesystemError
from .interrupts import signals_deferred

_HOST = os.uname().nodename
# O_CLOEXEC: no child inherits the lock, it is the frontend's alone. Its hook process and the backend die
# with the frontend (the watch pipe, hookprocess.py): a lock that outlived it would guard no live writer.
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def inside(root: str, path: str) -> bool:
    """``path`` is ``root`` or under it, as text (both absolute and normalized): component by component,
    so that /usr/lib2 is not under /usr/lib, and / holds everything."""
    return os.path.commonpath([root, path]) == root


def make_dirs(directory: str, made: Callable[[str], None], mkdir: Callable[[str], None] = os.mkdir) -> None:
    """Like os.makedirs(exist_ok=True), race-safe, each dir recorded as ours: ``made(path)`` right after the
    ``mkdir(path)`` that made it (parents first), interrupts held between the two, so that no interrupt
    leaves a dir of ours unrecorded. A dir that another process makes meanwhile is not ours (not recorded);
    what stands where a dir must go (a file, a dangling link) raises FileExistsError naming it.
    ``mkdir``: a journal's, which writes its record ahead of the call (install/journal.py)."""
    missing = []
    while not os.path.isdir(directory) and os.path.dirname(directory) != directory:
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        with signals_deferred():
            try:
                mkdir(path)
            except FileExistsError:
                if os.path.isdir(path):
                    continue  # made by someone else meanwhile: not ours to remove
                raise
            made(path)


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


def try_lock(fd: int) -> bool | None:
    """LOCK_EX without waiting: True if taken, False if someone holds it, None where the filesystem
    has no locks (some network filesystems): nothing there can be proven (no sweep, no install lock)."""
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
        if try_lock(fd) is not False and not owned.replaced():
            return owned
        os.close(fd)


_AGAIN, _REMOVED = -1, -2  # _attempt's "try once more", and "removed a dead command's dir": never fds
_MAX_REMOVED = 16  # dead commands' dirs removed in a row before the name is given up: one that cannot be removed


def _attempt(path: str) -> Owned | int | None:
    """One try at ``path``, interrupts held by the caller: the dir, made new, ours and locked; or an fd on it
    when a live command holds it (to wait on); or None when it cannot be ours; or _AGAIN or _REMOVED.
    Every race (a dir removed or made by another between two calls) ends in _AGAIN, never in None:
    None would cost the build its fixed name."""
    try:
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        created = False
    try:
        fd = os.open(path, _OPEN_DIR)
    except FileNotFoundError:  # removed meanwhile (another may have made it anew since): try again
        return _AGAIN
    except OSError:  # a file or a symlink there: never ours
        return None
    if os.fstat(fd).st_uid != os.geteuid():  # another user's (made, or squatted, first): never waited for
        os.close(fd)
        return None
    owned = Owned(path, fd)
    locked = try_lock(fd)
    if locked is False:
        return fd
    if locked is None:  # no locks on this filesystem: nothing proves that no other command uses the name
        os.close(fd)
        if created:
            os.rmdir(path)
        return None
    if owned.replaced():
        os.close(fd)
        return _AGAIN
    if not created:  # left by a command that died (its lock is free): removed while locked, then made anew
        owned.remove()
        return _REMOVED
    return owned


def claim(parent: str, name: str, keep: Callable[[Owned], None], waiting: Callable[[str], None]) -> bool:
    """PARENT/NAME as a new dir of ours, locked until ``remove()``, handed to ``keep`` before an interrupt
    can strike. While another live command holds it, this one waits (an interrupt ends the wait) and
    ``waiting(path)`` says so once. False where the name cannot be ours (no locks on that filesystem,
    another user's dir): the caller makes a random one."""
    path, said, removed = os.path.join(parent, name), False, 0
    while True:
        with signals_deferred():
            found = _attempt(path)
            if isinstance(found, Owned):
                keep(found)
                return True
        removed = removed + 1 if found == _REMOVED else 0
        if found is None or removed > _MAX_REMOVED:
            return False
        if found in (_AGAIN, _REMOVED):
            continue
        try:
            if not said:
                waiting(path)
                said = True
            fcntl.flock(found, fcntl.LOCK_EX)  # until its owner has removed it, or is dead
        finally:
            os.close(found)


def input_key(*inputs: str) -> str:
    """16 hex digits that only these inputs determine: the fixed part of a dir name a backend sees."""
    return hashlib.sha256("\0".join(inputs).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def source_key(source: str | None, python: str | None, *more: str) -> str:
    """The key of a command's inputs: an archive (any file) by its content, wherever it lies, so that
    a copy of it builds the same; a source tree by its absolute path, which the backend sees anyway."""
    identity = os.path.abspath(source or ".")
    if source is not None and os.path.isfile(source):
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            identity = f"content:{digest.hexdigest()}"
        except OSError:  # unreadable: the command names it itself, with its errno
            pass
    return input_key(identity, python or "", *more)


def _swept_name(name: str, prefix: str) -> bool:
    """A name ``claim`` gives (STEM-KEY) or ``make_owned`` does (STEM-HOST-PID-...): ``prefix`` is STEM-HOST-."""
    stem = prefix[: -len(_HOST) - 1]
    key = name[len(stem) :]
    if name.startswith(stem) and len(key) == 16 and all(c in "0123456789abcdef" for c in key):
        return True
    return name.startswith(prefix) and name[len(prefix) :].partition("-")[0].isdigit()


def sweep(directory: str, prefix: str) -> None:
    """Dirs named STEM-KEY or PREFIX+PID-... in ``directory`` whose owner is provably gone (their lock is
    free): removed while locked by us, so that no second sweeper and no owner can take them meanwhile.
    Only our user's: a fixed name may be another user's dir in a shared TMPDIR, never ours to remove."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not _swept_name(name, prefix):
            continue
        path = os.path.join(directory, name)
        fd = _open_dir(path)
        if fd is None:
            continue
        owned = Owned(path, fd)
        if os.fstat(fd).st_uid == os.geteuid() and try_lock(fd) and not owned.replaced():
            owned.remove()
        else:
            os.close(fd)


_PREFIX = owned_prefix("isobuild")


def own(parent: str, stem: str, key: str, keep: Callable[[Owned], None], say: Callable[[str], None]) -> None:
    """PARENT/STEM-KEY claimed for ``keep`` (waiting, said, while another command with the same inputs holds
    it); where it cannot be ours, a random STEM-HOST-PID-XXXXXXXX, with a warning that says what that costs."""
    name = f"{stem}-{key}"
    if claim(parent, name, keep, lambda path: say(f"waiting for {path}: another isobuild command has the same inputs")):
        return
    say(
        f"warning: {os.path.join(parent, name)} cannot be ours (another user's, or no file locks there): "
        "a random name instead, which the artifact may record"
    )
    with signals_deferred():
        keep(make_owned(parent, owned_prefix(stem)))


@contextmanager
def private_tempdir(key: str, say: Callable[[str], None]) -> Iterator[str]:
    """``tempfile``'s dir and ``TMPDIR`` name TMPDIR/isobuild-KEY, ours, until the block ends, however it ends."""
    previous, previous_env, kept = tempfile.tempdir, os.environ.get("TMPDIR"), []

    def keep(owned: Owned) -> None:
        kept.append(owned)
        tempfile.tempdir = os.environ["TMPDIR"] = owned.path

    try:
        try:
            own(tempfile.gettempdir(), "isobuild", key, keep, say)
        except OSError as exc:  # gettempdir() raises FileNotFoundError when no candidate dir is usable
            raise FilesystemError(
                f"cannot make a temp dir: {exc.strerror or exc}", hint="set TMPDIR to a writable directory"
            ) from None
        yield kept[0].path
    finally:
        with signals_deferred():
            tempfile.tempdir = previous
            if previous_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = previous_env
            for owned in kept:
                owned.remove()
        if kept:
            sweep(os.path.dirname(kept[0].path), _PREFIX)  # once the work is done: off the build's way
