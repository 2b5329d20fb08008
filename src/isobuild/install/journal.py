"""What an install did to the filesystem, proven by what succeeded, so that a rollback undoes exactly that.

A path is recorded as this install's only once the call that made it has
succeeded (an exclusive create, a mkdir), with SIGINT and SIGTERM held back
between the call and the record. A file that existed is never written into:
the new content goes to a temp file in the same directory, the old file is
renamed to a backup, the temp file renamed into place; so a symlink or a hard
link is replaced, never written through, and the rollback renames the backup
back. Directory symlinks on the way (``lib -> lib64``) are followed as ever.
"""

from __future__ import annotations

import os

from ..interrupts import signals_deferred

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class Journal:
    def __init__(self) -> None:
        self.created: list[str] = []  # files and directories, in the order made
        self.replaced: list[tuple[str, str]] = []  # (path, its backup)
        self.committed = False  # then the install stands: an interrupt that comes now rolls nothing back

    def makedirs(self, directory: str) -> None:
        """Like os.makedirs(exist_ok=True), race-safe; a directory another process makes meanwhile is not ours."""
        missing = []
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            with signals_deferred():
                try:
                    os.mkdir(path)
                except FileExistsError:
                    if not os.path.isdir(path):
                        raise
                    continue
                self.created.append(path)

    def create(self, path: str, mode: int = 0o666) -> int:
        """An fd to write a new file at ``path`` (which must not exist)."""
        with signals_deferred():
            fd = os.open(path, _FLAGS, mode)
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
                os.rename(path, backup)
                self.replaced.append((path, backup))
            os.rename(temp, path)
            self.created[self.created.index(temp)] = path

    def backup(self, path: str) -> None:
        """Move an existing file out of the way of what is about to be written there (bytecode)."""
        directory, name = os.path.split(path)
        backup = os.path.join(directory, f".{name}.isobuild-{os.getpid()}.old")
        with signals_deferred():
            os.rename(path, backup)
            self.replaced.append((path, backup))

    def rollback(self) -> None:
        """Remove what was created, newest first, and put every replaced file back (unless committed)."""
        if self.committed:
            return
        for path in reversed(self.created):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
            except OSError:
                pass
        for path, backup in reversed(self.replaced):
            try:
                os.rename(backup, path)
            except OSError:
                pass
        self.created, self.replaced = [], []

    def commit(self) -> None:
        """The install is complete: the backups go, with interrupts held, and rollback() does nothing from now on."""
        with signals_deferred():
            self.committed = True
            for _, backup in self.replaced:
                try:
                    os.unlink(backup)
                except OSError:
                    pass
