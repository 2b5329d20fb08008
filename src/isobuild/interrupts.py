"""The signals that end a process by default are all one interrupt, and a clean-up may hold them back.

SIGINT (Ctrl-C), SIGTERM, SIGHUP (a closed terminal or ssh session) and SIGQUIT
(Ctrl-\\) each raise KeyboardInterrupt: the command rolls back what it was doing
and exits 130. One exit code for all: a pipeline asks "was it interrupted?", and
the answer does not depend on who sent which signal.

SIGPIPE stays ignored, as Python leaves it: a write to a closed pipe fails with
EPIPE where it happens, and that place knows what it means (the result on stdout:
exit 120; the pipe to the compiler or the hook process: that process died, its
failure). As an interrupt, a dead child's pipe would read "interrupted"; so a
SIGPIPE sent with kill is ignored too.
"""

from __future__ import annotations

import signal

TYPE_CHECKING = False  # imported by __main__.py before its handlers are set: the signal module alone
if TYPE_CHECKING:
    from typing import Any

FATAL = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)  # what ends a process by default, but SIGPIPE


def handle(handler: Any = signal.default_int_handler) -> dict[int, Any]:
    """Every signal of FATAL to ``handler`` (default: raise KeyboardInterrupt); returns what was there."""
    return {signum: signal.signal(signum, handler) for signum in FATAL}


def restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class signals_deferred:  # noqa: N801  (used as a function, like contextlib's)
    """``with signals_deferred():`` the FATAL signals wait (blocked, not lost) until the block ends.

    The mask is the calling thread's: in another thread than the main one it changes nothing, since
    Python runs signal handlers in the main thread, whose mask it does not touch."""

    def __enter__(self) -> None:
        self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, FATAL)

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)
