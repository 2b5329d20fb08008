"""No process outlives the command, and nothing hangs: escaped daemons, children in groups of their own,
threads a backend leaves running, an import check's children, a killed compiler, a backend that closes fds.

Each backend is a tiny in-tree one (backend-path) written for its test; every process it starts records
its pid in a file, so the test looks at those processes and no other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, ImportCheckFailed, InstallFailed, Interrupted

from conftest import clean_env, isobuild_command, make_wheel, require_interpreter, run_isobuild, snapshot

BACKEND = """\
import os, subprocess, sys, threading, time, zipfile

PIDS = {pids!r}


def record(pid):
    with open(PIDS, "a") as f:
        f.write("%d\\n" % pid)


def _wheel(directory):
    name = "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w") as zf:
        zf.writestr("demo/__init__.py", "")
        zf.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n")
        wheel = "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        zf.writestr("demo-1.0.dist-info/WHEEL", wheel)
        zf.writestr("demo-1.0.dist-info/RECORD", "")
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = _wheel(wheel_directory)
{body}
    return name
"""

# A daemon as the books make one: fork, setsid, fork again, stdio to /dev/null; it records its pid,
# then appends to a file in the source tree for as long as it lives.
DAEMON = """\
    first = os.fork()
    if first == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                record(os.getpid())
                while True:
                    with open(os.path.join(os.path.dirname(PIDS), "ticks"), "a") as f:
                        f.write("x")
                    time.sleep(0.01)
        finally:
            os._exit(0)
    os.waitpid(first, 0)
    while not open(PIDS).read().strip():
        time.sleep(0.01)
"""


def _project(tmp_path: Path, body: str) -> tuple[Path, Path]:
    """A project whose backend's build_wheel writes a wheel, then runs ``body``; and its pid file."""
    src = tmp_path / "src"
    src.mkdir()
    pids = tmp_path / "pids"
    pids.write_text("")
    (src / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = []
        build-backend = "backend"
        backend-path = ["."]

        [project]
        name = "demo"
        version = "1.0"
        """)
    )
    (src / "backend.py").write_text(BACKEND.format(pids=str(pids), body=textwrap.indent(textwrap.dedent(body), "    ")))
    return src, pids


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A TMPDIR of the test's own: no other command's sweep of TMPDIR can meet this one's."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return clean_env(TMPDIR=str(tmp_path / "tmp"), **extra)


def _alive(pid: int) -> bool:
    """Running, or stopped: a zombie is dead for our purposes."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(") ")[2][0] not in "ZX"
    except OSError:
        return False


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def _children(pid: int) -> list[int]:
    """The children of a process this test started."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(child) for child in f.read().split()]
    except OSError:
        pass
    return found


def _end(pids: list[int]) -> None:
    """Clean-up for a run that failed (the code before the fix): the processes the test's backend started."""
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _assert_all_gone(pids: list[int]) -> None:
    """Gone by the time isobuild has exited: its reaper waited for them (no grace period here)."""
    alive = [pid for pid in pids if _alive(pid)]
    _end(alive)
    assert not alive, f"{len(alive)} of {len(pids)} processes outlived the command"


def _wait_for(condition: Callable[[], object], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, f"isobuild exited before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within 120 s"
        time.sleep(0.01)


# ---------------------------------------------------------------- a build's processes


def _leaves_none(tmp_path: Path, pids: Path, expected: int, count: int, *args: str) -> None:
    """``isobuild ARGS`` exits with ``expected``, after its backend or modules started ``count`` processes, and
    none of them is left."""
    try:
        result = run_isobuild(*args, env=_env(tmp_path), timeout=120)
        assert result.returncode == expected, result.stderr.decode(errors="replace")
        assert len(_pids(pids)) == count
        _assert_all_gone(_pids(pids))
    finally:
        _end(_pids(pids))


def _wheel_into_out(src: Path, tmp_path: Path, version: str) -> subprocess.CompletedProcess[bytes]:
    """``isobuild wheel SRC -o TMP/out`` with the target ``version``."""
    python = require_interpreter(version)
    return run_isobuild(
        "wheel", str(src), "-o", str(tmp_path / "out"), "--python", python, env=_env(tmp_path), timeout=120
    )


def _interrupted_leaves_none(tmp_path: Path, pids: Path, *args: str, **env: str) -> None:
    """SIGTERM to ``isobuild ARGS`` once a process it started recorded its pid: exit 130, none of them left."""
    proc = subprocess.Popen(
        [*isobuild_command(), *args], env=_env(tmp_path, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: _pids(pids), proc, "a recorded pid")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == Interrupted.exit_code, err.decode(errors="replace")
        _assert_all_gone(_pids(pids))
    finally:
        proc.kill()
        proc.wait()
        _end(_pids(pids))


@pytest.mark.parametrize("then", ["return", "raise"])
def test_a_setsid_daemon_started_by_the_backend_ends_with_the_build(tmp_path: Path, then: str) -> None:
    src, pids = _project(tmp_path, DAEMON + ("    raise RuntimeError('after the daemon')\n" if then == "raise" else ""))
    _leaves_none(
        tmp_path,
        pids,
        BackendFailed.exit_code if then == "raise" else 0,
        1,
        "wheel",
        str(src),
        "-o",
        str(tmp_path / "out"),
    )
    ticks = tmp_path / "ticks"
    size = ticks.stat().st_size
    time.sleep(0.3)  # a daemon still alive would have written 30 more bytes by now
    assert ticks.stat().st_size == size


def test_two_hundred_children_each_in_its_own_group_end_with_the_build(tmp_path: Path) -> None:
    src, pids = _project(
        tmp_path,
        """\
        for _ in range(200):
            child = subprocess.Popen(["sleep", "1000"], preexec_fn=os.setpgrp, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            record(child.pid)
        """,
    )
    _leaves_none(tmp_path, pids, 0, 200, "wheel", str(src), "-o", str(tmp_path / "out"))


def test_an_interrupted_build_ends_the_backends_daemon(tmp_path: Path) -> None:
    src, pids = _project(tmp_path, DAEMON + "    time.sleep(1000)\n")
    _interrupted_leaves_none(tmp_path, pids, "wheel", str(src), "-o", str(tmp_path / "out"))


def test_main_called_by_a_program_spares_its_children_and_gives_back_the_subreaper_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """isobuild's main() in a program (here pytest): the program's own children live on, and it is no
    subreaper afterwards (it was none before); the backend's daemon is gone all the same."""
    import ctypes

    from isobuild.cli import main

    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(-1)
    assert libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value == 0  # PR_GET_CHILD_SUBREAPER
    src, pids = _project(tmp_path, DAEMON)
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    ours = subprocess.Popen(["sleep", "1000"])
    try:
        assert main(["wheel", str(src), "-q", "-o", str(tmp_path / "out")]) == 0
        assert _alive(ours.pid)
        _assert_all_gone(_pids(pids))
        assert libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value == 0
    finally:
        ours.kill()
        ours.wait()
        _end(_pids(pids))
    capsys.readouterr()


@pytest.mark.parametrize("version", ["3.8", "3.13"])
def test_a_thread_the_backend_leaves_running_does_not_hang_the_build(tmp_path: Path, version: str) -> None:
    src, _ = _project(
        tmp_path,
        """\
        threading.Thread(target=time.sleep, args=(1000,), name="forgotten").start()
        """,
    )
    result = _wheel_into_out(src, tmp_path, version)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert (tmp_path / "out" / "demo-1.0-py3-none-any.whl").is_file()
    assert b"the backend left 1 thread running (forgotten)" in result.stderr


@pytest.mark.parametrize("version", ["3.8", "3.13"])
def test_a_backend_that_closes_every_fd_is_a_clean_backend_failure(tmp_path: Path, version: str) -> None:
    src, _ = _project(tmp_path, "os.closerange(3, 4096)\n")
    result = _wheel_into_out(src, tmp_path, version)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BackendFailed.exit_code, err
    assert "Traceback" not in err
    assert "ERROR the hook process lost its channel to isobuild (the backend closed file descriptors" in err
    assert "during build_wheel" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- an install's processes

SPAWNER = """\
import os, subprocess, time
child = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session={new_session})
with open({pids!r}, "a") as f:
    f.write("%d\\n" % child.pid)
if os.environ.get("SPAWNER_BLOCKS"):
    time.sleep(1000)
"""


def _spawner(tmp_path: Path, new_session: bool = False) -> tuple[Path, Path]:
    """A wheel whose module starts a child when imported (in a session of its own if ``new_session``)."""
    pids = tmp_path / "pids"
    pids.write_text("")
    module = SPAWNER.format(pids=str(pids), new_session=new_session)
    return make_wheel(tmp_path / "wheels", {"spawner.py": module.encode()}), pids


@pytest.mark.parametrize("new_session", [False, True])
def test_a_child_started_by_an_import_checked_module_ends_with_the_install(tmp_path: Path, new_session: bool) -> None:
    wheel, pids = _spawner(tmp_path, new_session)
    _leaves_none(tmp_path, pids, 0, 1, "install", str(wheel), "--prefix", str(tmp_path / "prefix"), "--check-imports")


def test_sigterm_during_the_import_check_ends_the_modules_child(tmp_path: Path) -> None:
    wheel, pids = _spawner(tmp_path)
    prefix = tmp_path / "prefix"
    _interrupted_leaves_none(
        tmp_path, pids, "install", str(wheel), "--prefix", str(prefix), "--check-imports", SPAWNER_BLOCKS="1"
    )
    assert not prefix.exists() or snapshot(prefix) == {}


@pytest.mark.parametrize("works", [True, False])
def test_the_import_check_writes_no_bytecode(tmp_path: Path, works: bool) -> None:
    """--no-compile: no .pyc at all, not even from the import check (it would hold the DESTDIR path); and
    after a failed check, the rollback leaves the destination as it was."""
    files = {
        "pkg/__init__.py": b"from pkg import sub\n",
        "pkg/sub.py": b"VALUE = 1\n" if works else b"import not_there\n",
    }
    wheel = make_wheel(tmp_path / "wheels", files)
    destdir = tmp_path / "destdir"
    destdir.mkdir()
    env = _env(tmp_path)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a packager's shell has it
    result = run_isobuild(
        "install",
        str(wheel),
        "--prefix",
        "/usr",
        "--destdir",
        str(destdir),
        "--no-compile",
        "--check-imports",
        env=env,
        timeout=120,
    )
    assert result.returncode == (0 if works else ImportCheckFailed.exit_code), result.stderr.decode(errors="replace")
    found = snapshot(destdir)
    assert not [path for path in found if "__pycache__" in path or path.endswith(".pyc")], sorted(found)
    if not works:
        assert found == {}


def test_a_killed_compiler_fails_the_install_and_leaves_nothing(tmp_path: Path) -> None:
    """The OOM killer's SIGKILL to the compiler while its pool's workers run: an error and a rollback, not a hang."""
    body = "".join(f"def f{i}(x):\n    return [x + {i} * y for y in range(x) if y % 3]\n\n" for i in range(400))
    wheel = make_wheel(
        tmp_path / "wheels", {f"many/m{n}.py": body.encode() for n in range(800)} | {"many/__init__.py": b""}
    )
    prefix = tmp_path / "prefix"
    proc = subprocess.Popen(
        [*isobuild_command(), "install", str(wheel), "--prefix", str(prefix), "--jobs", "2"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    workers: list[int] = []
    try:
        compilers: list[int] = []

        def pool_started() -> bool:
            compilers[:] = [pid for pid in _children(proc.pid) if b"compile" in _cmdline(pid)]
            workers[:] = [w for c in compilers for w in _children(c)]
            return bool(workers)

        _wait_for(pool_started, proc, "the compiler's pool")
        os.kill(compilers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == InstallFailed.exit_code, err.decode(errors="replace")
        assert b"was killed by SIGKILL" in err
        _assert_all_gone(workers)
        assert not prefix.exists() or snapshot(prefix) == {}
    finally:
        proc.kill()
        proc.wait()
        _end(workers)


def _cmdline(pid: int) -> bytes:
    """A child's command line; empty once it has exited (between listing and reading, on a busy machine)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""
