"""One isolated hook process per build, driven over a JSON-lines channel.

pyproject-hooks starts one process per hook call; a build calls two or three
hooks, and start-up plus the backend's import dominate a small build. So this
process is started once, and it is also a pyproject-hooks *runner*: each hook
call's ``[python, _in_process.py, hook, control_dir]`` command is executed
inside it, with pyproject-hooks' own script and JSON files, so the backend is
imported once and everything else stays pyproject-hooks' logic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any, NamedTuple

from .errors import BackendFailed, BackendUnavailable, InterpreterError
from .isolation import Isolation, hook_environ

_HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(_HERE, "_hookrunner.py")
SHIM_DIR = os.path.join(_HERE, "_shim")


class Hello(NamedTuple):
    """What the hook process reports once its sys.path is in place, before any backend import."""

    sys_path: list[str]
    executable: str
    version: tuple[int, int, int]
    markers: dict[str, str]
    excluded_user_site: str
    excluded_system_site: list[str]
    child_env: dict[str, str]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class HookProcess:
    """The target interpreter running ``_hookrunner.py`` with ``-S -s``, in its own process group."""

    def __init__(self, isolation: Isolation, *, log: IO[bytes] | None = None) -> None:
        self.isolation = isolation
        self.hook: str | None = None
        self.exit_description: str | None = None
        argv = [isolation.python, "-S", "-s", RUNNER]
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=hook_environ(dict(os.environ)),
                start_new_session=True,
            )
        except OSError as exc:
            raise InterpreterError(
                f"cannot run the target interpreter {isolation.python}: {exc.strerror or exc}",
                hint="--python takes the path of a CPython 3.8+ executable",
            ) from None

    def send_setup(self, backend_path: Sequence[str], index: bool) -> None:
        """Ask for the isolated sys.path (and the distribution index); read the reply with hello()."""
        iso = self.isolation
        self._send({
            "op": "setup",
            "pythonpath": list(iso.pythonpath),
            "site_dirs": list(iso.site_dirs),
            "backend_path": list(backend_path),
            "system_site": iso.system_site,
            "shim_dir": SHIM_DIR,
            "index": index,
        })

    def hello(self) -> Hello:
        iso = self.isolation
        try:
            reply = self._receive()
        except BackendFailed:
            raise InterpreterError(
                f"{iso.python} could not start isobuild's hook process: it {self.exit_description}",
                hint="--python takes the path of a CPython 3.8+ executable",
            ) from None
        version = tuple(reply["version"])
        if version < (3, 8):
            raise InterpreterError(f"{iso.python} is Python {'.'.join(map(str, version))}; hooks need 3.8 or newer")
        return Hello(
            sys_path=reply["sys_path"],
            executable=reply["executable"],
            version=(version[0], version[1], version[2]),
            markers=reply["markers"],
            excluded_user_site=reply["excluded"]["user_site"],
            excluded_system_site=reply["excluded"]["system_site"],
            child_env=reply["child_env"],
        )

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
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(msg).encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the process is gone: _receive() says how it ended

    def _receive(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.exit_description = _describe_exit(self._proc.wait())
            raise BackendFailed(f"the hook process {self.exit_description} during {self.hook}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        """End the hook process; anything it left running in its process group is killed."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
