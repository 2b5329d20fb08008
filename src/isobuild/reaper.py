"""No process outlives the command: isobuild is the child subreaper of everything it starts.

A backend's daemon that forks and calls setsid(), or a child it puts in a process
group of its own, escapes the kill of the hook process's group. On Linux, the
command makes isobuild a child subreaper (prctl PR_SET_CHILD_SUBREAPER, as
systemd, tini and Docker's init do): a process orphaned anywhere below it becomes
its child instead of init's. So once the owners have ended their own processes
(the hook process, the compiler, the import check: see end_group()), every child
left is one that escaped; end_strays() kills and reaps them, and the children
they leave in turn, until there are none. It runs when a hook process ends
(before the artifact is placed, so that no daemon can touch it afterwards) and
when the command ends, however it ends. Only this process's own children are
looked at (/proc/self/task/*/children), and those it had before the command
(isobuild's main() called from a program) are spared.

Limits: elsewhere (no prctl, or no /proc) orphans go to init as before, and only
the process groups of isobuild's own children are killed. A SIGKILL of isobuild
itself leaves nobody to reap: the hook process's group dies (its watch pipe), a
daemon that left the group lives on. The cost is ctypes' import, on Linux only.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from contextlib import contextmanager

from .interrupts import signals_deferred

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

# Imported where used (lazy): a command that does not reach that code does not pay for them.
#   ctypes: only on Linux, the one system where the subreaper is set (prctl)

PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37  # <linux/prctl.h>
ROUNDS = 1000  # a round ends one level of a tree of processes; a chain deeper than this is given up on

_spared: set[int] | None = None  # while a command runs: the children this process had before it


@contextmanager
def reaping() -> Iterator[None]:
    """For one command: isobuild is the subreaper of what it starts, and what is left is ended with it."""
    global _spared
    previous = _set_subreaper(True)
    _spared = set(_children())
    try:
        yield
    finally:
        with signals_deferred():  # a second Ctrl-C must not leave the rest running
            end_strays()
            _spared = None
            if previous is False:  # as it was, for a program that calls main() and was no subreaper
                _set_subreaper(False)


def end_strays() -> None:
    """Kill and reap every child of this process (but the spared): only once their owners ended theirs."""
    if _spared is None:
        return
    for _ in range(ROUNDS):
        strays = [pid for pid in _children() if pid not in _spared]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)  # unreaped, the pid cannot be another process's
            except ProcessLookupError:
                pass
        for pid in strays:  # a stray's own children are ours once it is dead: the next round's
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def end_group(proc: subprocess.Popen[bytes], timeout: float | None = None) -> int:
    """Wait for ``proc``, the leader of a session of its own, to exit; then kill what is left in its group
    (a pool's workers, a module's child) and reap it. Unreaped until then, its pid holds the group id, which
    no other process can have meanwhile. subprocess.TimeoutExpired after ``timeout`` s, the group killed."""
    if proc.returncode is not None:  # reaped already: the group id may be another's
        return proc.returncode
    try:
        _exited(proc, timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        returncode = proc.wait()
    return returncode


def _exited(proc: subprocess.Popen[bytes], timeout: float | None) -> None:
    """Until ``proc`` has exited, without reaping it: its pidfd turns readable (Linux 5.3+). Elsewhere
    it is reaped (a pid reused at once, between the wait and the kill, is the limit there)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        proc.wait(timeout)
        return
    try:
        if not select.select([fd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0)
    finally:
        os.close(fd)


def _children() -> list[int]:
    """This process's children, from each of its threads' list; where the kernel has no such list
    (CONFIG_PROC_CHILDREN unset), the processes whose parent is this one; [] without /proc."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as f:
                found += [int(pid) for pid in f.read().split()]
        except FileNotFoundError:
            if task == str(os.getpid()):
                return _children_by_parent()
        except OSError:  # a thread that ended meanwhile
            pass
    return found


def _children_by_parent() -> list[int]:
    """The processes whose parent (the 2nd field after the name in /proc/PID/stat) is this one."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if int(f.read().rpartition(b")")[2].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):  # gone meanwhile
                pass
    return found


def _set_subreaper(on: bool) -> bool | None:
    """Become (or stop being) a child subreaper; what it was before, or None where that is not possible."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # lazy: see the top

        libc = ctypes.CDLL(None, use_errno=True)
        was, zero = ctypes.c_int(0), ctypes.c_ulong(0)  # prctl's arguments after the first are unsigned long
        if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), zero, zero, zero) != 0:
            return None
        if libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(int(on)), zero, zero, zero) != 0:
            return None
    except (ImportError, OSError, AttributeError):  # ImportError: a Python built without ctypes
        return None
    return bool(was.value)
