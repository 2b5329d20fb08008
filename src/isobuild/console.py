"""The CLI's output: results on stdout; progress lines and errors with hints on stderr, colour only where it belongs."""

from __future__ import annotations

import os
import sys

from .errors import IsobuildError, OutputFailed

TYPE_CHECKING = False  # imported before the hook process starts: no typing at run time
if TYPE_CHECKING:
    from typing import IO


class Console:
    """stderr reporting: progress lines unless -q, colour only on a TTY without NO_COLOR."""

    def __init__(self, quiet: bool, verbose: bool, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr or open(os.devnull, "w")  # noqa: SIM115  (stderr closed: say nothing)
        self.quiet, self.verbose = quiet, verbose
        self.color = self.stream.isatty() and not os.environ.get("NO_COLOR")

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    @staticmethod
    def result(text: str) -> None:
        """Flushed at once, so that a full disk or a closed pipe is an error here, not at exit."""
        if sys.stdout is None:  # fd 1 was closed when isobuild started
            raise OutputFailed("cannot write the result to stdout: it was closed when isobuild started")
        try:
            print(text, flush=True)
        except OSError as exc:
            # What is still buffered would fail again at exit: stdout goes to /dev/null,
            # as Python's documentation advises for a closed pipe.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
            raise OutputFailed(f"cannot write the result to stdout: {exc.strerror or exc}") from None

    def progress(self, text: str) -> None:
        if not self.quiet:
            print(f"{self._paint('isobuild:', '1')} {text}", file=self.stream, flush=True)

    def detail(self, text: str) -> None:
        if self.verbose:
            self.progress(text)

    def error(self, exc: IsobuildError) -> None:
        if exc.details:
            print(exc.details, file=self.stream)
        print(f"{self._paint('ERROR', '1;31')} {exc.message}", file=self.stream)
        if exc.hint:
            print(f"{self._paint('hint:', '1')} {exc.hint}", file=self.stream)
        self.stream.flush()
