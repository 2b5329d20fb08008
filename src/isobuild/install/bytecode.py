"""Bytecode compiled by the target interpreter (its magic number) while the wheel is unpacked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile

from ..errors import InstallFailed, InterpreterError
from ..inside import describe_exit, inside_command
from ..reaper import end_group
from .journal import Journal, pycs_of
from .target import Target


class Compiler:
    """The target interpreter byte-compiling (its magic number) each source as soon as it is written.

    Unpacking and compiling overlap: while this process writes the wheel's
    files, the compiler and its pool use the other cores. Its answer goes to a
    file, and the end of the compiler is waited for, not the end of its output:
    the pool's workers inherit its stdout, and outlive a compiler killed by
    SIGKILL (the OOM killer); its group (them) is killed once it has exited.
    """

    def __init__(self, target: Target, journal: Journal) -> None:
        self.target = target
        self.journal = journal
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # not a pipe: compile warnings could fill it while we write
        self.out = tempfile.TemporaryFile()  # its answer: see the class docstring
        self.sent: list[str] = []
        self.new_caches: set[str] = set()  # __pycache__ dirs that did not exist: the compiler's, if made

    def add(self, written: str, final: str) -> None:
        """``final`` is the path without DESTDIR, recorded in the .pyc."""
        if not self.target.levels:
            return
        if self.proc is None:
            try:  # its own session: a Ctrl-C meant for isobuild must not cut off what the rollback needs
                self.proc = subprocess.Popen(
                    inside_command(self.target.python, "compile"),
                    stdin=subprocess.PIPE,
                    stdout=self.out,
                    stderr=self.log,
                    start_new_session=True,
                    pass_fds=self.journal.held(),
                )  # the install's lock: see journal.py
            except OSError as exc:
                raise InterpreterError(
                    f"cannot run the target interpreter {self.target.python}: {exc.strerror}"
                ) from None
            self._send(
                {
                    "levels": list(self.target.levels),
                    "mode": self.target.invalidation_mode,
                    "jobs": self.target.jobs or os.cpu_count() or 1,
                    "hardlink_dupes": self.target.hardlink_dupes,
                }
            )
        self._own_cache(written)
        self.journal.compiling(written)
        self._send([written, final])
        self.sent.append(written)

    def _own_cache(self, source: str) -> None:
        """Before the compiler sees ``source``: its cache dir's existence, and the old .pyc moved aside."""
        cache = os.path.join(os.path.dirname(source), "__pycache__")
        if cache in self.new_caches:
            return
        if not os.path.isdir(cache):
            self.new_caches.add(cache)
            return
        for pyc in pycs_of(source):  # --overwrite of an earlier install: its .pyc files are restored on failure
            self.journal.backup(pyc)

    def _send(self, item: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(item).encode() + b"\n")
        except BrokenPipeError:
            pass  # finish() says how it ended

    def finish(self) -> list[tuple[str, str]]:
        """Wait for the last source; return (written pyc, final pyc) pairs."""
        if self.proc is None:
            self._close_files()
            return []
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:  # it is gone already: its exit says how
            pass
        returncode = end_group(self.proc)
        self.log.seek(0)
        errors = self.log.read().decode(errors="replace").strip()
        self.out.seek(0)
        out = self.out.read()
        self._close_files()
        if returncode != 0:
            raise InstallFailed(
                f"{self.target.python} failed to compile bytecode: the compiler {describe_exit(returncode)}",
                details=errors or None,
            )
        destdir = self.target.destdir
        written: list[str] = [pyc for pyc, _source in json.loads(out)]
        self._record(written)
        return [(pyc, "/" + os.path.relpath(pyc, destdir) if destdir else pyc) for pyc in written]

    def _close_files(self) -> None:
        self.log.close()
        self.out.close()

    def _record(self, pycs: list[str]) -> None:
        """The compiler's work into the journal: the cache dirs it made first, then its files."""
        self.journal.created += sorted(cache for cache in self.new_caches if os.path.isdir(cache))
        self.journal.created += pycs
        self.new_caches = set()

    def abandon(self) -> None:
        """After a failure: stop it at once (its own session: kill the group) and journal, for the
        rollback, every .pyc and cache dir it may have written for the sources it was sent."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close_files()
        self._record([pyc for source in self.sent for pyc in pycs_of(source)])
        self.sent = []
