"""The CLI's output: results on stdout; progress, warnings and errors with hints on stderr, colour only where
it belongs.

Three levels: progress (what is being done; -q silences it, -v adds detail),
warnings (what the user must know even when the build succeeds: a typo in
pyproject.toml, a requirement relaxed or removed by policy; a backend's Python
warnings reach stderr through pyproject-hooks, once: runner.py) and errors.
-q never silences a warning or an error.

Output never fails a command whose work is done: a result is written as bytes (a
path that is not valid in stdout's encoding goes out as the bytes it has on
disk), and stderr that cannot be written (its reader gone, its disk full) is
dropped, so the command's own result decides the exit code. Only a result that
cannot be written is an error (exit 120): it is the command's output.
"""

from __future__ import annotations

import os
import select
import sys

from .errors import IsobuildError, OutputFailed

TYPE_CHECKING = False  # imported before the hook process starts: no typing at run time
if TYPE_CHECKING:
    from typing import IO


def _encoded(text: str, stream: IO[str]) -> bytes:
    """``text`` in the stream's encoding; if that cannot hold it (a path with bytes that are not UTF-8,
    or any non-ASCII name under PYTHONIOENCODING=ascii), UTF-8 with surrogate escapes: the path's own
    bytes, as os.fsencode gives them, so that a pipeline reads the name of the file that exists."""
    try:
        return text.encode(getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict")
    except (UnicodeEncodeError, LookupError):
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoding made (a JSON escape): shown, not lost
        return text.encode("utf-8", "backslashreplace")


def _to_null(stream: IO[str]) -> None:
    """Point the stream's fd at /dev/null: its buffered rest, later lines, and the output of every process
    started later (which inherit the fd) go there instead of failing."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, stream.fileno())
    finally:
        os.close(null)
    try:
        stream.flush()
    except (OSError, ValueError):
        pass


def _reader_gone(stream: IO[str]) -> bool:
    """A pipe whose reader has gone (poll says POLLERR): every line written there would only fail, in
    isobuild and in the backend it is about to start."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError):
        return False


# The builder reports through one callable (builder.py's ``progress``); the lines that are warnings say so
# by their first word: its own "warning: ...", and a policy's "relaxed: ..." or "removed: ...".
WARNING_PREFIX = "warning: "
POLICY_PREFIXES = ("relaxed: ", "removed: ")


SCHEMA = 1  # the "schema" of every JSON object isobuild prints (docs/json.md); raised when a key changes meaning


def error_json(exc: IsobuildError) -> dict[str, object]:
    """A failure as --json prints it on stdout (docs/json.md, "Failure")."""
    return {
        "schema": SCHEMA,
        "exit_code": exc.exit_code,
        "error": type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
        "details": exc.details,
    }


class Console:
    """stderr reporting: progress lines unless -q, warnings and errors always, colour only on a TTY without NO_COLOR."""

    def __init__(self, quiet: bool, verbose: bool, stream: IO[str] | None = None, json: bool = False) -> None:
        self.stream = stream or sys.stderr or open(os.devnull, "w")  # noqa: SIM115  (stderr closed: say nothing)
        self.quiet, self.verbose, self.json = quiet, verbose, json
        self.color = self.stream.isatty() and not os.environ.get("NO_COLOR")
        if _reader_gone(self.stream):
            _to_null(self.stream)

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    @staticmethod
    def result(text: str) -> None:
        """Flushed at once, so that a full disk or a closed pipe is an error here, not at exit."""
        if sys.stdout is None:  # fd 1 was closed when isobuild started
            raise OutputFailed("cannot write the result to stdout: it was closed when isobuild started")
        try:
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is None:  # a text-only stream (an embedding's): it takes any str
                print(text, flush=True)
                return
            sys.stdout.flush()
            buffer.write(_encoded(text + "\n", sys.stdout))
            buffer.flush()
        except OSError as exc:
            # What is still buffered would fail again at exit: stdout goes to /dev/null,
            # as Python's documentation advises for a closed pipe.
            _to_null(sys.stdout)
            raise OutputFailed(f"cannot write the result to stdout: {exc.strerror or exc}") from None

    def _say(self, *lines: str) -> None:
        """Lines for people: if stderr cannot take them, they are dropped and stderr is /dev/null from then on."""
        try:
            for line in lines:
                print(line, file=self.stream)
            self.stream.flush()
        except OSError:
            try:
                _to_null(self.stream)
            except (OSError, ValueError):  # no fd of its own (an embedding's stream): silence it here
                self.stream = open(os.devnull, "w")  # noqa: SIM115  (for the process's life)

    def progress(self, text: str) -> None:
        if not self.quiet:
            self._say(f"{self._paint('isobuild:', '1')} {text}")

    def detail(self, text: str) -> None:
        if self.verbose:
            self.progress(text)

    def warn(self, text: str) -> None:
        """A warning: shown even under -q, which silences progress only."""
        self._say(f"{self._paint('isobuild:', '1')} {self._paint('warning:', '1;33')} {text}")

    def step(self, text: str) -> None:
        """A line of the builder's: a warning if it says it is one (WARNING_PREFIX, POLICY_PREFIXES), else progress."""
        if text.startswith(WARNING_PREFIX):
            self.warn(text[len(WARNING_PREFIX) :])
        elif text.startswith(POLICY_PREFIXES):
            self.warn(text)
        else:
            self.progress(text)

    def error(self, exc: IsobuildError, *, in_result: bool = False) -> None:
        """On stderr; with --json also on stdout as one object, unless the command's result holds it
        (``in_result``) or stdout is what failed."""
        lines = [exc.details] if exc.details else []
        lines.append(f"{self._paint('ERROR', '1;31')} {exc.message}")
        if exc.hint:
            lines.append(f"{self._paint('hint:', '1')} {exc.hint}")
        self._say(*lines)
        if self.json and not in_result and not isinstance(exc, OutputFailed):
            import json  # lazy: --json only, and this module is imported before the hook process starts

            try:
                self.result(json.dumps(error_json(exc), indent=2))
            except OutputFailed:  # the error's exit code stands
                pass
