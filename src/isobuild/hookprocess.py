"""The hook process: one subprocess of the target interpreter per build, and its typed client.

pyproject-hooks starts one process per hook call, and a build calls two or
three hooks; so isobuild starts one process per build (``_inside/server.py``)
and has pyproject-hooks' commands executed inside it (see runner.py). This
module owns that process from start to end: ``with HookProcess(...)`` starts it,
and on leaving the block closes it (success) or kills its whole group (an error
or an interrupt), so no caller ever ends it by hand. It turns no reply into an
error of the backend's: a dead process is reported as HookProcessDied.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
from typing import NamedTuple

from .errors import InterpreterError
from .inside import CHANNEL_LOST, SHIM_DIR, TARGET_HINT, TOO_OLD, describe_exit, inside_command
from .interrupts import signals_deferred
from .isolation import hook_environ
from .reaper import end_group, end_strays

# Imported where used (lazy): the hook process starts before they are paid for.
#   json: for the messages, once the process is started (the import overlaps its start-up)

TYPE_CHECKING = False  # typing would delay the hook process's start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType
    from typing import IO, Any

    from .isolation import Isolation

HELLO_TIMEOUT = 30  # seconds: a real interpreter answers in well under one


class HookProcessDied(Exception):
    """The hook process closed the channel before replying; ``description`` says how it ended."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        self.description = describe_exit(returncode)
        super().__init__(self.description)


class Hello(NamedTuple):
    """The setup's reply: what the hooks will see, before any backend import (a NamedTuple, as the
    other records made before the hook process starts: builder.py says why)."""

    sys_path: list[str]
    executable: str
    version: tuple[int, int, int]
    markers: dict[str, str]
    excluded_user_site: str
    excluded_system_site: list[str]
    child_env: dict[str, str]

    @classmethod
    def of(cls, reply: Mapping[str, Any]) -> Hello:
        """From the reply's JSON (_inside/isolate.py); KeyError, TypeError or ValueError if it is not one."""
        major, minor, micro = reply["version"]
        return cls(
            list(reply["sys_path"]),
            str(reply["executable"]),
            (int(major), int(minor), int(micro)),
            dict(reply["markers"]),
            str(reply["excluded"]["user_site"]),
            list(reply["excluded"]["system_site"]),
            dict(reply["child_env"]),
        )

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


class HookProcess:
    """``python -S -s _inside/__main__.py serve`` in a session of its own, so its whole group can be killed.

    ``with HookProcess(isolation) as process:`` starts it (interrupts held until it is ours to kill);
    ``setup()`` asks for the hooks' sys.path and the backend's import, ``hello()`` reads the reply; the
    block's end closes it, or, if the block raised (an interrupt too), kills its group."""

    def __init__(self, isolation: Isolation, *, log: IO[bytes] | None = None) -> None:
        self.isolation = isolation
        self.python = isolation.python
        self._log = log
        self._hello: Hello | None = None
        self._ended = True  # nothing to end until it is started
        self.loaded: list[dict[str, Any]] = []  # each hook's report of what it loaded (_inside/loaded.py)

    def __enter__(self) -> HookProcess:
        with signals_deferred():  # a Ctrl-C during the spawn waits until the process is ours to kill
            self._start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                self._close()
                return
            except BaseException:  # an interrupt during the close: what is left is killed
                self._kill()
                raise
        self._kill()

    def _start(self) -> None:
        # The watch pipe: the process kills its own group when this end closes, so that
        # it and its children end with the frontend, however it dies (SIGKILL included).
        watch, self._watch = os.pipe()
        try:
            self._proc = subprocess.Popen(
                inside_command(self.python, "serve", str(watch), str(CHANNEL_LOST)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=hook_environ(dict(os.environ)),
                start_new_session=True,
                pass_fds=(watch,),
            )
        except OSError as exc:
            os.close(self._watch)
            raise InterpreterError(
                f"cannot run the target interpreter {self.python}: {exc.strerror or exc}", hint=TARGET_HINT
            ) from None
        finally:
            os.close(watch)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._ended = False

    def setup(self, backend_path: Sequence[str] = (), backend: str | None = None, only_declared: bool = False) -> None:
        """Ask the process to build the hooks' sys.path, then to import ``backend``'s module; the reply
        is read by hello(), once the frontend's own work in the meantime is done. ``only_declared``:
        the site dirs' .pth imports wait for hide() (a hidden distribution's are never run)."""
        isolation = self.isolation
        self._send(
            {
                "op": "setup",
                "pythonpath": list(isolation.pythonpath),
                "site_dirs": list(isolation.site_dirs),
                "backend_path": list(backend_path),
                "system_site": isolation.system_site,
                "shim_dir": SHIM_DIR,
                "backend": backend,
                "only_declared": only_declared,
            }
        )

    def hello(self) -> Hello:
        """The setup's reply (read once); an interpreter that could not run the hook process, or answers
        nonsense, or nothing within HELLO_TIMEOUT, is InterpreterError."""
        if self._hello is None:
            self._hello = self._read_hello()
        return self._hello

    def _read_hello(self) -> Hello:
        if not select.select([self._stdout], [], [], HELLO_TIMEOUT)[0]:
            raise InterpreterError(
                f"{self.python} did not answer isobuild's hook process setup in {HELLO_TIMEOUT} s", hint=TARGET_HINT
            )
        try:
            return Hello.of(self._receive())
        except (KeyError, TypeError, ValueError) as exc:
            raise InterpreterError(
                f"{self.python} answered the hook process setup with nonsense ({exc!r})", hint=TARGET_HINT
            ) from None
        except HookProcessDied as exc:
            if exc.returncode == TOO_OLD:  # it said so on stderr
                raise InterpreterError(
                    f"{self.python} is too old: the hooks need Python 3.8 or newer", hint=TARGET_HINT
                ) from None
            raise InterpreterError(
                f"{self.python} could not start isobuild's hook process: it {exc.description}", hint=TARGET_HINT
            ) from None

    def run(self, argv: Sequence[str], cwd: str, env: Mapping[str, str], *, hook: str, backend: str) -> dict[str, Any]:
        """Execute a script (``argv[0]``) with its arguments in the process; HookProcessDied if it dies.

        Called by pyproject-hooks' runner, inside the call that made the script's control dir: an
        interrupt (or any failure) while the hook runs kills the process group right here, before that
        dir is removed as the exception unwinds through pyproject-hooks, so the script never finds it gone."""
        try:
            reply = self._request(
                {"op": "run", "argv": list(argv), "cwd": cwd, "env": dict(env), "hook": hook, "backend": backend}
            )
        except BaseException:
            self._kill()
            raise
        if isinstance(reply.get("loaded"), dict):
            self.loaded.append(reply.pop("loaded"))
        return reply

    def hide(self, roots: Sequence[str], dists: Sequence[tuple[str, str]]) -> None:
        """--only-declared: what the hooks and their Python children must not see (_inside/hidden.py)."""
        self._request({"op": "hide", "roots": list(roots), "dists": [list(d) for d in dists], "shim_dir": SHIM_DIR})

    def _request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        self._send(msg)
        return self._receive()

    def _send(self, msg: Mapping[str, Any]) -> None:
        import json  # lazy: see the top

        try:
            self._stdin.write(json.dumps(msg).encode("utf-8") + b"\n")
            self._stdin.flush()
        except BrokenPipeError:
            pass  # the process is gone: the next read says how it ended

    def _receive(self) -> dict[str, Any]:
        import json  # lazy: see the top

        line = self._stdout.readline()
        if not line:
            raise HookProcessDied(self._proc.wait())
        try:
            reply = json.loads(line)
        except ValueError:
            raise InterpreterError(
                f"{self.python} answered isobuild's hook process with nonsense: {line[:200]!r}", hint=TARGET_HINT
            ) from None
        if not isinstance(reply, dict):
            raise InterpreterError(f"{self.python} answered isobuild's hook process with {reply!r}", hint=TARGET_HINT)
        return reply

    def _close(self) -> None:
        """End of the build: EOF on its stdin, the process exits (its atexit handlers run, see
        _inside/server.py), what it left running in its group is killed, and what escaped the
        group (a daemon, a child in a group of its own) too: see reaper.py."""
        try:
            self._stdin.close()
        except BrokenPipeError:
            pass
        end_group(self._proc)
        end_strays()  # what the backend started outside its group: before the artifact is placed
        self._stdout.close()
        os.close(self._watch)
        self._ended = True

    def _kill(self) -> None:
        """On failure or interrupt: the whole process group at once, then reap, interrupts held (a second
        Ctrl-C must not cut it short); nothing once ended (its group id and the watch pipe's fd number
        may be another's by then)."""
        if self._ended:
            return
        with signals_deferred():
            self._ended = True
            self._kill_group()
            self._proc.wait()
            end_strays()
            for stream in (self._stdin, self._stdout):  # some may be closed already (an interrupted close())
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                os.close(self._watch)
            except OSError:
                pass

    def _kill_group(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
