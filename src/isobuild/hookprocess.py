"""One isolated hook process per build, driven over a JSON-lines channel.

pyproject-hooks starts one process per hook call; a build calls two or three
hooks, and start-up plus the backend's import dominate a small build. So this
process is started once, and it is also a pyproject-hooks *runner*: each hook
call's ``[python, _in_process.py, hook, control_dir]`` command is executed
inside it, with pyproject-hooks' own script and JSON files, so the backend is
imported once and everything else stays pyproject-hooks' logic.
"""

from __future__ import annotations

import os
import sys

from .errors import BackendFailed, BackendUnavailable, InterpreterError
from .isolation import hook_environ

TYPE_CHECKING = False  # os and sys only at run time: this module starts the hook process, early
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO, Any

    from .isolation import Isolation

_HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(_HERE, "_hookmain.py")
SHIM_DIR = os.path.join(_HERE, "_shim")
BUILD_COMMANDS = ("wheel", "sdist", "editable", "metadata", "requires", "install")
_EXITING: list[int] = []  # hook processes that were done but not yet gone (see close())


class Hello:
    """What the hook process reports once its sys.path is in place, before any backend import."""

    __slots__ = ("sys_path", "executable", "version", "markers", "excluded_user_site", "excluded_system_site",
                 "child_env", "dists")

    def __init__(self, reply: dict[str, Any]) -> None:
        self.sys_path: list[str] = reply["sys_path"]
        self.executable: str = reply["executable"]
        major, minor, micro = reply["version"]
        self.version: tuple[int, int, int] = (major, minor, micro)
        self.markers: dict[str, str] | None = reply.get("markers")  # None: not asked for
        self.excluded_user_site: str = reply["excluded"]["user_site"]
        self.excluded_system_site: list[str] = reply["excluded"]["system_site"]
        self.child_env: dict[str, str] = reply["child_env"]
        self.dists: dict[str, dict[str, Any] | None] = reply.get("dists") or {}  # as dists() answers

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        import signal

        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _scratch_file() -> IO[bytes]:
    """tempfile.TemporaryFile() without importing tempfile (Linux's O_TMPFILE), else with it."""
    if hasattr(os, "O_TMPFILE"):
        try:
            fd = os.open(os.environ.get("TMPDIR") or "/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
            return os.fdopen(fd, "w+b")
        except OSError:
            pass
    import tempfile

    return tempfile.TemporaryFile()


def _inherited_fds() -> list[int]:
    """Descriptors a child would inherit beyond 0-2: closed for it, as Popen's close_fds does."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd" if sys.platform == "linux" else "/dev/fd")]
    except OSError:
        return []
    found = []
    for fd in fds:
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


def _spawn(argv: list[str], env: dict[str, str], stdin: int, stdout: int, stderr: int | None) -> int:
    """posix_spawn, in a new session: no subprocess import on the way to the hook process."""
    actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1)]
    if stderr is not None:
        actions.append((os.POSIX_SPAWN_DUP2, stderr, 2))
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
    try:
        return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    except NotImplementedError:  # no POSIX_SPAWN_SETSID: a process group is enough for killpg
        return os.posix_spawn(argv[0], argv, env, file_actions=actions, setpgroup=0)


def _reap_exited() -> None:
    """Reap the hook processes that close() left exiting, once they are gone."""
    for pid in list(_EXITING):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        except ChildProcessError:
            pass
        _EXITING.remove(pid)


class HookProcess:
    """The target interpreter running ``_hookrunner.py`` with ``-S -s``, in its own session."""

    _early: HookProcess | None = None  # started by prestart(), taken by start()

    def __init__(self, python: str, *, log: IO[bytes] | None = None) -> None:
        self.python = python
        self.log = log
        self.hook: str | None = None
        self.exit_description: str | None = None
        self.answered_ahead = False  # the last hook's answer was computed with the setup
        self.returncode: int | None = None
        argv = [python, "-S", "-s", RUNNER]
        _reap_exited()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        try:
            self.pid = _spawn(argv, hook_environ(dict(os.environ)), stdin_r, stdout_w,
                              None if log is None else log.fileno())
        except OSError as exc:
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            raise InterpreterError(
                f"cannot run the target interpreter {python}: {exc.strerror or exc}",
                hint="--python takes the path of a CPython 3.8+ executable",
            ) from None
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        self._stdin = os.fdopen(stdin_w, "wb")
        self._stdout = os.fdopen(stdout_r, "rb")

    @classmethod
    def prestart(cls, argv: Sequence[str]) -> None:
        """Start the hook process before argparse has run, when argv names a build with this Python.

        The guess (no --python; -q only as ``-q`` or ``--quiet``) is checked by
        start(), which discards a process that does not fit. The interpreter's
        start-up then overlaps the frontend's imports and pyproject.toml.
        ``python -m isobuild`` calls it before importing the CLI; main() calls
        it again, which does nothing while that process waits to be taken.
        """
        if cls._early is not None or not argv or argv[0] not in BUILD_COMMANDS:
            return
        if any(arg.startswith("--py") for arg in argv):
            return
        log = _scratch_file() if "-q" in argv or "--quiet" in argv else None
        try:
            cls._early = cls(sys.executable, log=log)
        except InterpreterError:
            if log is not None:
                log.close()

    @classmethod
    def early_log(cls) -> IO[bytes] | None:
        """The -q log prestart() opened for its process, for the caller to pass to start()."""
        return cls._early.log if cls._early is not None else None

    @classmethod
    def start(cls, python: str, *, log: IO[bytes] | None = None) -> HookProcess:
        """The process prestart() started if it fits, else a new one."""
        early, cls._early = cls._early, None
        if early is not None:
            if early.python == python and early.log is log:
                return early
            early.kill()
        return cls(python, log=log)

    @classmethod
    def discard_early(cls) -> None:
        early, cls._early = cls._early, None
        if early is not None:  # never taken by start(): its log is done with too (closing twice is harmless)
            early.kill()
            if early.log is not None:
                early.log.close()

    def send_setup(self, isolation: Isolation, backend_path: Sequence[str], requires: Sequence[str] | None,
                   ahead: Mapping[str, Any] | None = None, *, markers: bool = False) -> None:
        """Ask for the isolated sys.path; read the reply with hello().

        ``requires`` (None: no check) has the reply carry the distributions the
        check will look up, ``markers`` the target's PEP 508 marker values;
        ``ahead`` is a "run" message for the first hook, run before the reply
        (see _hookrunner.py).
        """
        self.isolation = iso = isolation
        if ahead is not None:
            self.hook = ahead["argv"][1]
        self._send({
            "op": "setup",
            "pythonpath": list(iso.pythonpath),
            "site_dirs": list(iso.site_dirs),
            "backend_path": list(backend_path),
            "system_site": iso.system_site,
            "shim_dir": SHIM_DIR,
            "requires": None if requires is None else list(requires),
            "markers": markers,
            "ahead": ahead,
        })

    def hello(self) -> Hello:
        """The setup's reply. If a hook ran ahead and the process died, BackendFailed says so."""
        iso = self.isolation
        try:
            reply = self._receive()
        except BackendFailed:
            if self.hook is not None:
                raise
            raise InterpreterError(
                f"{iso.python} could not start isobuild's hook process: it {self.exit_description}",
                hint="--python takes the path of a CPython 3.8+ executable",
            ) from None
        hello = Hello(reply)
        if hello.version < (3, 8):
            raise InterpreterError(f"{iso.python} is Python {hello.version_text}; hooks need 3.8 or newer")
        return hello

    def dists(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Distributions as importlib.metadata sees them in the hook process (normalized names)."""
        found: dict[str, dict[str, Any] | None] = self._request({"op": "dists", "names": list(names)})["dists"]
        return found

    def __call__(
        self, cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        """The pyproject-hooks runner protocol: ``cmd`` is ``[python, script, hook, control_dir]``."""
        self.hook = cmd[2] if len(cmd) > 2 else cmd[1]
        env = dict(extra_environ or {})
        reply = self._request({"op": "run", "argv": list(cmd[1:]), "cwd": cwd or os.getcwd(), "env": env})
        status = reply["status"]
        self.answered_ahead = bool(reply.get("ahead"))
        backend = env.get("_PYPROJECT_HOOKS_BUILD_BACKEND", "the backend")
        if status == "ok":
            return
        if status == "exit":
            raise BackendFailed(f"backend {backend} called sys.exit({reply['code']}) in {self.hook}")
        if status == "exception":
            raise BackendFailed(
                f"{self.hook} of backend {backend} raised {reply['type']}: {reply['message']}",
                hint="the backend's traceback is above",
            )
        if status == "backend_unavailable":
            raise BackendUnavailable(f"cannot import backend {backend}: {reply['message']}")
        if status == "hook_missing":
            raise BackendUnavailable(f"backend {backend} has no {reply['hook']} hook")
        raise AssertionError(f"unknown hook process status {status!r}")

    def _request(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        self._send(msg)
        return self._receive()

    def _send(self, msg: Mapping[str, Any]) -> None:
        import json

        try:
            self._stdin.write(json.dumps(msg).encode("utf-8") + b"\n")
            self._stdin.flush()
        except BrokenPipeError:
            pass  # the process is gone: _receive() says how it ended

    def _receive(self) -> dict[str, Any]:
        import json

        line = self._stdout.readline()
        if not line:
            self.exit_description = _describe_exit(self.wait())
            raise BackendFailed(f"the hook process {self.exit_description} during {self.hook}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def wait(self) -> int:
        """The exit code (negative: the signal that ended it)."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def close(self) -> None:
        """End the hook process; anything it left running in its process group is killed.

        On EOF the process runs its atexit handlers, closes the channel and calls
        os._exit(). The group is killed once the channel closes (or after 10 s), but
        the process is not waited for: the kernel's teardown of a large interpreter
        takes 1-2 ms and runs no code of its own. It is reaped later, as subprocess
        reaps a Popen dropped while running: when the next hook process starts, and
        by init once isobuild has exited.
        """
        import select
        import time

        try:
            self._stdin.close()
        except OSError:
            pass
        channel, deadline = self._stdout.fileno(), time.monotonic() + 10
        while select.select([channel], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if not os.read(channel, 1 << 16):  # EOF: its atexit handlers have run
                break
        self._kill_group()
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                _EXITING.append(self.pid)
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
        self._stdout.close()

    def kill(self) -> None:
        self._kill_group()
        self.wait()
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass

    def _kill_group(self) -> None:
        import signal

        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
