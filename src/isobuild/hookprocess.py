"""The hook process: one subprocess of the target interpreter per build, and its typed client.

pyproject-hooks starts one process per hook call, and a build calls two or
three hooks; so isobuild starts one process per build (``_inside/server.py``)
and has pyproject-hooks' commands executed inside it (see runner.py). This
module starts, talks to and ends that process; it turns no reply into an error
of the backend's: a dead process is reported as HookProcessDied.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess

from .errors import InterpreterError
from .isolation import hook_environ
from .reaper import end_group, end_strays

TYPE_CHECKING = False  # typing and dataclasses would delay the hook process's start
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO, Any

    from .isolation import Isolation

_HERE = os.path.dirname(os.path.abspath(__file__))
# In isobuild.pyz (tools/make_pyz.py) this package is a directory of a zip file: the target
# runs the archive's __main__ with --inside, and children import the shim through zipimport.
ARCHIVE = os.path.dirname(_HERE) if os.path.isfile(os.path.dirname(_HERE)) else None
INSIDE = [ARCHIVE, "--inside"] if ARCHIVE else [os.path.join(_HERE, "_inside", "__main__.py")]
SHIM_DIR = os.path.join(_HERE, "_shim")
TARGET_HINT = "--python takes the path of a CPython 3.8+ executable"
TOO_OLD = 86  # _inside/__main__.py's exit code for a Python older than 3.8
CHANNEL_LOST = 87  # _inside/server.py's exit code when the backend closed the channel's fds
HELLO_TIMEOUT = 30  # seconds: a real interpreter answers in well under one


def inside_command(python: str, *args: str) -> list[str]:
    """The target running isobuild's stdlib-only code: no site, no user site, nothing of ours on sys.path."""
    return [python, "-S", "-s", *INSIDE, *args]


def describe_exit(returncode: int) -> str:
    if returncode == CHANNEL_LOST:
        return ("lost its channel to isobuild (the backend closed file descriptors it does not own, "
                "as os.closerange() does)")
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class HookProcessDied(Exception):
    """The hook process closed the channel before replying; ``description`` says how it ended."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        self.description = describe_exit(returncode)
        super().__init__(self.description)


class Hello:
    """The setup's reply: what the hooks will see, before any backend import."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.sys_path: list[str] = reply["sys_path"]
        self.executable: str = reply["executable"]
        major, minor, micro = reply["version"]
        self.version: tuple[int, int, int] = (major, minor, micro)
        self.markers: dict[str, str] = reply["markers"]
        self.excluded_user_site: str = reply["excluded"]["user_site"]
        self.excluded_system_site: list[str] = reply["excluded"]["system_site"]
        self.child_env: dict[str, str] = reply["child_env"]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


class HookProcess:
    """``python -S -s _inside/__main__.py serve`` in a session of its own, so its whole group can be killed."""

    def __init__(self, python: str, *, log: IO[bytes] | None = None) -> None:
        self.python = python
        # The watch pipe: the process kills its own group when this end closes, so that
        # it and its children end with the frontend, however it dies (SIGKILL included).
        watch, self._watch = os.pipe()
        try:
            self._proc = subprocess.Popen(
                inside_command(python, "serve", str(watch)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, env=hook_environ(dict(os.environ)), start_new_session=True, pass_fds=(watch,),
            )
        except OSError as exc:
            os.close(self._watch)
            raise InterpreterError(f"cannot run the target interpreter {python}: {exc.strerror or exc}",
                                   hint=TARGET_HINT) from None
        finally:
            os.close(watch)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._closed = False
        self.loaded: list[dict[str, Any]] = []  # each hook's report of what it loaded (_inside/loaded.py)

    def setup(self, isolation: Isolation, backend_path: Sequence[str], backend: str | None,
              only_declared: bool = False) -> None:
        """Ask the process to build the hooks' sys.path, then to import ``backend``'s module; read
        the reply with hello(), once the frontend's own work in the meantime is done. ``only_declared``:
        the site dirs' .pth imports wait for hide() (a hidden distribution's are never run)."""
        self._send({
            "op": "setup", "pythonpath": list(isolation.pythonpath), "site_dirs": list(isolation.site_dirs),
            "backend_path": list(backend_path), "system_site": isolation.system_site, "shim_dir": SHIM_DIR,
            "backend": backend, "only_declared": only_declared,
        })

    def hello(self) -> Hello:
        """The setup's reply; an interpreter that could not run the hook process, or answers
        nonsense, or nothing within HELLO_TIMEOUT, is InterpreterError."""
        if not select.select([self._stdout], [], [], HELLO_TIMEOUT)[0]:
            raise InterpreterError(f"{self.python} did not answer isobuild's hook process setup in {HELLO_TIMEOUT} s",
                                   hint=TARGET_HINT)
        try:
            return Hello(self._receive())
        except (KeyError, TypeError, ValueError) as exc:
            raise InterpreterError(f"{self.python} answered the hook process setup with nonsense ({exc!r})",
                                   hint=TARGET_HINT) from None
        except HookProcessDied as exc:
            if exc.returncode == TOO_OLD:  # it said so on stderr
                raise InterpreterError(f"{self.python} is too old: the hooks need Python 3.8 or newer",
                                       hint=TARGET_HINT) from None
            raise InterpreterError(f"{self.python} could not start isobuild's hook process: it {exc.description}",
                                   hint=TARGET_HINT) from None

    def run(self, argv: Sequence[str], cwd: str, env: Mapping[str, str], *, hook: str, backend: str) -> dict[str, Any]:
        """Execute a script (``argv[0]``) with its arguments in the process; HookProcessDied if it dies."""
        reply = self._request({"op": "run", "argv": list(argv), "cwd": cwd, "env": dict(env),
                               "hook": hook, "backend": backend})
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
        try:
            self._stdin.write(json.dumps(msg).encode("utf-8") + b"\n")
            self._stdin.flush()
        except BrokenPipeError:
            pass  # the process is gone: the next read says how it ended

    def _receive(self) -> dict[str, Any]:
        line = self._stdout.readline()
        if not line:
            raise HookProcessDied(self._proc.wait())
        try:
            reply = json.loads(line)
        except ValueError:
            raise InterpreterError(f"{self.python} answered isobuild's hook process with nonsense: {line[:200]!r}",
                                   hint=TARGET_HINT) from None
        if not isinstance(reply, dict):
            raise InterpreterError(f"{self.python} answered isobuild's hook process with {reply!r}", hint=TARGET_HINT)
        return reply

    def close(self) -> None:
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
        self._closed = True

    def kill(self) -> None:
        """On failure or interrupt: the whole process group at once, then reap; nothing once closed
        (its group id and the watch pipe's fd number may be another's by then)."""
        if self._closed:
            return
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
