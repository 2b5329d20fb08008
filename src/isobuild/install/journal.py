"""What an install does to the filesystem, written ahead to a journal on disk, so that a rollback undoes
exactly that: in the process on a failure or an interrupt, or in the next install after a SIGKILL.

An install runs under an exclusive lock on its destination root (the prefix, DESTDIR/PREFIX, or the
scheme's common root): flock on the directory itself, so the lock creates nothing, goes with the
process however it ends, and is shared by the compiler, which inherits it (a killed install's
compiler finishes its last files before the next install may look). Holding the lock, the install
first completes or rolls back any journal a dead install left in the root, then writes its own:
``ROOT/.isobuild-journal-PID``, one JSON record a line, each written before its change is made. A
record written is enough for a SIGKILL (the next process reads it from the page cache); nothing is
fsync'd, so a power cut is not covered, as it is not for the installed files themselves.

A path is recorded as this install's only once the call that made it has succeeded (an exclusive
create, a mkdir), with interrupts held back between the call and the record. A file that existed is
never written into: the new content goes to a temp file in the same directory, the old file is
renamed to a backup, the temp file renamed into place; so a symlink or a hard link is replaced,
never written through, and the rollback renames the backup back. Directory symlinks on the way
(``lib -> lib64``) are followed as ever. The commit point is the ``commit`` record: before it, a
dead install is rolled back; from it on, completed (its backups removed).
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Callable

from ..interrupts import signals_deferred
from ..scratch import inside, make_dirs, try_lock

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
JOURNAL = ".isobuild-journal-"  # + the PID of the install that writes it


class Journal:
    def __init__(self) -> None:
        self.created: list[str] = []  # files and directories, in the order made
        self.replaced: list[tuple[str, str]] = []  # (path, its backup)
        self.removed: list[
            tuple[str, str]
        ] = []  # (a file of the version replaced, the dir its emptied parents stop at)
        self.committed = False  # then the install stands: an interrupt that comes now rolls nothing back
        self.lock = -1  # the root's fd, flock'ed; passed to the compiler (see held())
        self.log = -1  # the journal on disk
        self.log_path = ""
        self.root = ""  # the destination root: every write of the install is under it
        self.root_dirs: list[str] = []  # made for the root, before the journal could be in it

    def begin(self, root: str, warn: Callable[[str], None]) -> None:
        """``root`` made if missing and locked for the whole install; what a dead install left in it
        completed or rolled back (one ``warn`` line each); then every change journalled ahead."""
        self.root = root
        self.lock = _lock(root, self.makedirs, lambda: warn(f"{root}: another install holds its lock: waiting"))
        self.root_dirs = list(self.created)
        if self.lock < 0:  # a filesystem without flock on directories (NFS): no lock, so no journal either
            return
        for note in recover(root):
            warn(note)
        with signals_deferred():
            self.log_path = os.path.join(root, f"{JOURNAL}{os.getpid()}")
            try:
                self.log = os.open(self.log_path, _FLAGS | os.O_APPEND, 0o600)
            except PermissionError:  # a root only its subdirs of which this user may write: no journal
                return
        self._write("begin", root)
        for path in self.root_dirs:
            self._write("mkdir", path)

    def held(self) -> tuple[int, ...]:
        """The fds a process that writes for this install inherits (the compiler): the lock, so that it is
        held until that process too is gone."""
        return (self.lock,) if self.lock >= 0 else ()

    def _write(self, *record: str) -> None:
        if self.log >= 0:
            os.write(self.log, json.dumps(record).encode() + b"\n")

    def makedirs(self, directory: str) -> None:
        """Like os.makedirs(exist_ok=True), race-safe; a directory another process makes meanwhile is not ours."""
        make_dirs(directory, self.created.append, self._mkdir)

    def _mkdir(self, path: str) -> None:
        """os.mkdir, its record written ahead (a SIGKILL right after the call leaves nothing unrecorded) and
        marked failed when the call fails, so that no recovery removes a dir this install did not make."""
        self._write("mkdir", path)
        try:
            os.mkdir(path)
        except OSError:
            self._write("failed", path)
            raise

    def create(self, path: str, mode: int = 0o666) -> int:
        """An fd to write a new file at ``path`` (which must not exist)."""
        with signals_deferred():
            self._write("create", path)
            try:
                fd = os.open(path, _FLAGS, mode)
            except OSError:
                self._write("failed", path)
                raise
            self.created.append(path)
        return fd

    def open_replacement(self, path: str) -> tuple[int, str]:
        """An fd to the temp file that will replace ``path`` (see commit_replacement())."""
        directory, name = os.path.split(path)
        for attempt in range(100):
            temp = os.path.join(directory, f".{name}.isobuild-{os.getpid()}-{attempt}")
            try:
                return self.create(temp), temp
            except FileExistsError:
                continue
        raise FileExistsError(f"no free temp name beside {path}")

    def commit_replacement(self, temp: str, path: str) -> None:
        """Move the old ``path`` (if any) to a backup, then ``temp`` into its place."""
        with signals_deferred():
            if os.path.lexists(path):
                backup = temp + ".old"
                self._write("backup", path, backup)
                os.rename(path, backup)
                self.replaced.append((path, backup))
            else:
                self._write("create", path)
            os.rename(temp, path)
            self.created[self.created.index(temp)] = path

    def backup(self, path: str) -> None:
        """Move an existing file out of the way of what is about to be written there (bytecode)."""
        directory, name = os.path.split(path)
        backup = os.path.join(directory, f".{name}.isobuild-{os.getpid()}.old")
        with signals_deferred():
            self._write("backup", path, backup)
            os.rename(path, backup)
            self.replaced.append((path, backup))

    def remove(self, path: str, top: str) -> None:
        """A file of the installed version being replaced (--overwrite): to a backup, removed at the commit
        with the directories it leaves empty below ``top``."""
        directory, name = os.path.split(path)
        backup = os.path.join(directory, f".{name}.isobuild-{os.getpid()}.gone")
        with signals_deferred():
            self._write("remove", path, backup, top)
            os.rename(path, backup)
            self.replaced.append((path, backup))
            self.removed.append((path, top))

    def compiling(self, source: str) -> None:
        """``source`` goes to the compiler: its .pyc files (old ones moved aside already) are this install's,
        and so is its ``__pycache__`` if missing (the compiler makes it)."""
        cache = os.path.join(os.path.dirname(source), "__pycache__")
        if self.log >= 0 and not os.path.isdir(cache):
            self._write("mkdir", cache)
        self._write("compile", source)

    def rollback(self) -> None:
        """Remove what was created, newest first, and put every replaced file back (unless committed)."""
        if self.committed:
            return
        for path in reversed(self.created):
            _remove(path)
        for path, backup in reversed(self.replaced):
            _restore(path, backup)
        self.created, self.replaced = [], []
        self._close()
        for path in reversed(self.root_dirs):  # the journal was in the first of them
            _remove(path)

    def commit(self) -> None:
        """The install is complete: the backups go, with interrupts held, and rollback() does nothing from now on."""
        with signals_deferred():
            self._write("commit")
            self.committed = True
            for _, backup in self.replaced:
                _remove(backup)
            for path, top in self.removed:
                _remove_parents(path, top)
            self._close()

    def _close(self) -> None:
        """The journal has served: removed, and the lock released (once the compiler has let go of it too)."""
        if self.log >= 0:
            os.close(self.log)
            os.unlink(self.log_path)
            self.log = -1
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1


def _remove(path: str) -> None:
    """A file or link, or an empty directory; nothing if it is gone or (a directory) not empty."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass


def _restore(path: str, backup: str) -> None:
    """The backup back in its place; if that fails, every other change is still undone."""
    try:
        os.rename(backup, path)
    except OSError:
        pass


def _remove_parents(path: str, top: str) -> None:
    """The directories above ``path`` that are empty now, up to (not including) ``top``."""
    parent = os.path.dirname(path)
    while parent != top and inside(top, parent):
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


def _lock(root: str, makedirs: Callable[[str], None], waiting: Callable[[], None]) -> int:
    """An fd of ``root`` (made first if missing) under an exclusive flock, -1 where the filesystem has
    none. Another install may remove the root it made while this one waits: then again."""
    while True:
        makedirs(root)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        taken = try_lock(fd)
        if taken is None:
            os.close(fd)
            return -1
        if not taken:
            waiting()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        try:
            if os.path.samestat(os.fstat(fd), os.stat(root)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def pycs_of(source: str) -> list[str]:
    """NAME.TAG[.opt-N].pyc in the cache dir beside ``source``, and py_compile's temp files NAME.TAG[.opt-N].pyc.NNN."""
    cache = os.path.join(os.path.dirname(source), "__pycache__")
    stem = os.path.basename(source)[:-3] + "."
    try:
        return [os.path.join(cache, n) for n in os.listdir(cache) if n.startswith(stem) and ".pyc" in n]
    except OSError:
        return []


# ---------------------------------------------------------------- recovery after a SIGKILL


def recover(root: str) -> list[str]:
    """What dead installs left in ``root`` (the caller holds its lock, so their owners are gone): each
    journal completed if it has its commit record, else rolled back; one line to print for each."""
    notes = []
    for name in sorted(os.listdir(root)):
        if name.startswith(JOURNAL):
            what = _recover(root, os.path.join(root, name))
            notes.append(f"{root}: an install cut short (process {name[len(JOURNAL) :]}) {what}")
    return notes


def _read(path: str) -> list[list[str]] | None:
    """The records of a journal this user wrote; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return None
        lines = f.read().splitlines()
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            break  # the last line, cut short by the kill: its change had not begun
        if isinstance(record, list) and record and all(isinstance(item, str) for item in record):
            records.append(record)
    return records


def _recover(root: str, path: str) -> str:
    records = _read(path)
    begin = records[0] if records else ["begin", root]  # no record: killed as it began
    if (
        records is None
        or begin[0] != "begin"
        or len(begin) != 2
        or not os.path.isabs(begin[1])
        or not _same_dir(begin[1], root)
    ):
        return f"left {path} as it is: not a journal of this user's for this directory"
    valid = [record for record in records[1:] if _inside(begin[1], record)]
    committed = ["commit"] in valid
    with signals_deferred():
        if committed:
            _complete(valid)
        else:
            _undo(valid)
        os.unlink(path)
    return "was completed" if committed else "was rolled back"


def _same_dir(recorded: str, root: str) -> bool:
    try:
        return os.path.samefile(recorded, root)
    except OSError:
        return False


def _inside(root: str, record: list[str]) -> bool:
    """Every path of ``record`` under the journal's root (a hostile journal names nothing else), a backup
    beside its file; the dirs made for the root itself are the current install's now: left alone."""
    op, *paths = record
    if any("\0" in path or not os.path.isabs(path) or not inside(root, os.path.abspath(path)) for path in paths):
        return False
    if op in ("backup", "remove"):
        return (
            len(paths) == (2 if op == "backup" else 3)
            and os.path.dirname(paths[1]) == os.path.dirname(paths[0])
            and ".isobuild-" in os.path.basename(paths[1])
        )
    if op == "mkdir":
        return len(paths) == 1 and paths[0] != root
    return op in ("create", "compile", "failed", "commit") and len(paths) == (op != "commit")


def _undo(records: list[list[str]]) -> None:
    """Newest first: what was made removed, what was moved aside moved back."""
    failed = {record[1] for record in records if record[0] == "failed"}
    for op, *paths in reversed(records):
        if op in ("mkdir", "create") and paths[0] not in failed:
            _remove(paths[0])
        elif op in ("backup", "remove") and os.path.lexists(paths[1]):
            _remove(paths[0])
            _restore(paths[0], paths[1])
        elif op == "compile":
            for pyc in pycs_of(paths[0]):
                _remove(pyc)


def _complete(records: list[list[str]]) -> None:
    for op, *paths in records:
        if op in ("backup", "remove"):
            _remove(paths[1])
        if op == "remove":
            _remove_parents(paths[0], paths[2])
