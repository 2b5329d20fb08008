"""The hook process: one per build, serving the frontend over a JSON-lines channel.

The frontend writes one request a line on our stdin and reads one reply a line
on our stdout. Those two descriptors are moved aside first (to new, non-
inheritable fds), stdin becomes /dev/null and stdout is pointed at stderr, so
nothing the backend prints can corrupt the channel or the frontend's stdout.

Requests, and their replies:
  {"op": "setup", "pythonpath": [...], "site_dirs": [...], "backend_path": [...],
   "system_site": bool, "shim_dir": str, "backend": str or null}
      -> {"sys_path", "executable", "version", "excluded", "child_env", "markers"}
      Once the reply is sent, the backend's module is imported (hooks.import_backend()),
      while the frontend imports its own libraries and checks the requirements on the
      reply's sys_path (with its own importlib.metadata: see dependencies.py).
  {"op": "run", "argv": [script, args...], "cwd": str, "env": {...}, "hook": str, "backend": str}
      -> {"status": "ok" | "exit" | "exception" | "hook_missing", ...}
A thread watches the pipe whose fd is the first argument: when the frontend's
end closes (the frontend died, even by SIGKILL), the process group is killed.
At EOF the process exits: atexit handlers run (the backend's remove their temp
dirs), but not the teardown of every module the backend imported (what that
costs with flit_core or setuptools: benchmarks/run.py, section 5): the last atexit
handler, registered before any backend is imported, flushes and calls os._exit().
Two things a backend may do would keep that from happening, and are told on stderr:
- it leaves a thread running (not a daemon): the interpreter would wait for it at exit, and the
  frontend for the interpreter, for ever. Once the hook has returned its work is done, so the
  process exits at once, without waiting for the thread (nor running atexit handlers: their
  temp files are in the command's temp dir, which goes with the command);
- it closes the channel's fds (os.closerange(3, ...), as daemonizing code does): the process
  cannot answer, or would read and write someone else's file under the same number, so it checks
  the channel is still its own before each read and write, and exits with the code the frontend
  handed it (CHANNEL_LOST) if not.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
from typing import IO, Any, Callable

from . import hidden, hooks, isolate, loaded, markers


class Server:
    """The state of one build: the backend to import once the setup's reply is sent."""

    def __init__(self) -> None:
        self.backend: tuple[str, list[str]] | None = None  # to import once the setup's reply is sent

    def setup(self, msg: dict[str, Any]) -> dict[str, Any]:
        hello = isolate.setup(msg)
        loaded.watch(isolate.shim(msg["shim_dir"]))  # which entry-point group loaded what
        hello["markers"] = markers.markers()
        if msg.get("backend"):
            self.backend = (msg["backend"], msg["backend_path"])
        return hello

    def after_reply(self) -> None:
        if self.backend is not None:
            hooks.import_backend(*self.backend)
            self.backend = None

    def run(self, msg: dict[str, Any]) -> dict[str, Any]:
        return loaded.report(hooks.run(msg))  # what the hook loaded: see loaded.py


def _private_channel() -> tuple[IO[bytes], IO[bytes]]:
    """The frontend's pipes, moved to fds that no child inherits; 0 is /dev/null, 1 is stderr."""
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    return channel_in, channel_out


def _leave() -> None:
    """The last atexit handler (registered first): every other one has run."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def _identity(stream: IO[bytes]) -> tuple[int, int] | None:
    """The (device, inode) an fd stands for now; None once closed."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _check_channel(
    channel: tuple[IO[bytes], IO[bytes]], identities: list[tuple[int, int] | None], what: str, lost: int
) -> None:
    """Exit with ``lost`` if the backend closed (or reused) the channel's fds."""
    if [_identity(stream) for stream in channel] == identities:
        return
    sys.stderr.write(
        "isobuild: {} closed the hook process's channel to isobuild (fds {}), as os.closerange() does: "
        "the hook process cannot answer\n".format(what, ", ".join(str(s.fileno()) for s in channel))
    )
    sys.stderr.flush()
    os._exit(lost)


def _leave_threads() -> None:
    """At EOF: a thread the backend left running is not waited for (see the module docstring)."""
    left = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.current_thread()]
    if left:
        sys.stderr.write(
            "isobuild: the backend left {} thread{} running ({}) after its last hook: not waited for, "
            "atexit handlers not run\n".format(len(left), "s" if len(left) > 1 else "", ", ".join(left))
        )
        _leave()


def _watch(fd: int) -> None:
    """Block on the frontend's watch pipe; its EOF means the frontend is gone: end this process group."""
    try:
        while os.read(fd, 1):
            pass
    except OSError:
        pass
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    # The frontend starts this process with its interrupts held (builder.session; interrupts.FATAL) and a
    # child inherits the mask: released first, or every process the backend starts would ignore SIGTERM.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
    atexit.register(_leave)  # first registered, last run (see the module docstring)
    # argv: WATCH_FD CHANNEL_LOST. The exit code is the frontend's to define (isobuild/inside.py): this code
    # cannot import the frontend, so it is handed over, as TOO_OLD is.
    fd, lost = int(argv[0]), int(argv[1])
    os.set_inheritable(fd, False)  # not for the backend's children
    threading.Thread(target=_watch, args=(fd,), name="isobuild-watch", daemon=True).start()
    channel = channel_in, channel_out = _private_channel()
    identities = [_identity(stream) for stream in channel]
    server = Server()
    ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "setup": server.setup,
        "run": server.run,
        "hide": hidden.hide,  # hide: --only-declared
    }
    what = "the backend's import"
    while True:
        _check_channel(channel, identities, what, lost)
        line = channel_in.readline()
        if not line:
            break
        msg = json.loads(line.decode("utf-8"))
        what = msg.get("hook") or "the setup"
        reply = ops[msg["op"]](msg)
        _check_channel(channel, identities, what, lost)
        channel_out.write(json.dumps(reply).encode("utf-8") + b"\n")
        channel_out.flush()
        what = "the backend's import" if msg["op"] == "setup" else "the backend"
        server.after_reply()
    sys.stdout.flush()
    _leave_threads()
