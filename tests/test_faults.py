"""Builds under a busy farm and an attacker: concurrent runs, signals at several moments, SIGKILL, small and
read-only filesystems, and hostile input; never an internal error, a hang, a traceback of isobuild's code,
or anything left behind."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from isobuild.errors import BackendFailed, BadInput, InstallFailed, InterpreterError, Interrupted, OutputFailed

from conftest import apt_install, clean_env, copy_fixture, isobuild_command, make_wheel, run_isobuild, snapshot
from helpers import alive, all_succeed_at_once, own_traceback, wait_for

BAD_INPUT, BACKEND_FAILED, INTERPRETER = BadInput.exit_code, BackendFailed.exit_code, InterpreterError.exit_code
INSTALL_FAILED, INTERRUPTED = InstallFailed.exit_code, Interrupted.exit_code


def test_concurrent_builds_into_one_new_outdir_all_succeed(tmp_path: Path) -> None:
    outdir = tmp_path / "deep" / "new" / "out"
    sources = [copy_fixture("probe", tmp_path / f"copy{i}") for i in range(10)]
    all_succeed_at_once([["wheel", str(src), "-o", str(outdir), "-q"] for src in sources])
    assert sorted(p.name for p in outdir.iterdir()) == ["probe-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.05, 0.08, 0.15, 0.25, 0.4, 0.8])
def test_a_signal_at_any_moment_of_a_build_is_exit_130_and_leaves_nothing(
    tmp_path: Path, signum: int, delay: float
) -> None:
    src = copy_fixture("probe", tmp_path)
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen(
        [*isobuild_command(), "wheel", str(src), "-C", f"spawn-sleep={pidfile}"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The delay counts from isobuild's first byte on stderr (run from the tests' venv, it names the venv's
    # base first): a signal during the interpreter's own start-up, before isobuild's first line, is
    # Python's (README, "Signals"), and a loaded machine stretches that start-up past any fixed delay.
    assert select.select([proc.stderr], [], [], 60)[0], "isobuild printed nothing in 60 s"
    first = os.read(proc.stderr.fileno(), 1)  # type: ignore[union-attr]
    time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    text = (first + err).decode(errors="replace")
    assert proc.returncode == INTERRUPTED, text
    # No traceback at all: not isobuild's, and not pyproject-hooks' in-process script's either (its control
    # dir is removed only after the hook process's group is killed: test_lifecycle.py checks the order).
    assert "Traceback" not in text, text
    assert not (src / "dist").exists()
    if pidfile.exists():
        time.sleep(0.2)
        assert not alive(int(pidfile.read_text()))


@pytest.fixture(scope="module")
def strace() -> str:
    """strace, to deliver a signal at one exact system call of the frontend (apt-get installs it if absent)."""
    if shutil.which("strace") is None:
        apt_install(("strace",), "signals at exact system calls")
    probe = subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.strip()}")
    return "strace"


def _traced(
    strace: str, trace: Path, options: list[str], argv: list[str], **env: str
) -> subprocess.CompletedProcess[bytes]:
    """isobuild ARGV under strace (its ``options``: what to trace, what to inject), the trace in ``trace``."""
    return subprocess.run(
        [strace, "-qq", "-o", str(trace), *options, *isobuild_command(), *argv],
        env=clean_env(PYTHONDONTWRITEBYTECODE="1", **env),
        capture_output=True,
        timeout=120,
    )


# Every system call of the frontend that makes or removes a name, or waits for a child. strace delivers the
# signal on the way into the Nth call; the call completes (or waits while isobuild holds interrupts back).
_SWEPT = ("mkdir,mkdirat", "rename,renameat,renameat2", "unlink,unlinkat", "rmdir", "wait4")


def _signal_after_each_call(
    strace: str,
    argv: list[str],
    tmp_path: Path,
    reset: Callable[[], None],
    check: Callable[[str, subprocess.CompletedProcess[bytes]], bool],
    signum: int = signal.SIGTERM,
    step: int = 1,
) -> dict[str, list[bool]]:
    """For each swept call and N = 1, 1 + step, ...: ``reset()``, run isobuild ARGV with ``signum`` after the
    Nth such call, ``check(the call it followed, result)``, until a run sees no signal. Returns, per call,
    what check said of each run (True: the command's work was committed)."""
    temp, trace, name = tmp_path / "tmp", tmp_path / "trace", signal.Signals(signum).name
    found: dict[str, list[bool]] = {}
    for calls in _SWEPT:
        found[calls] = []
        for nth in range(1, 60, step):
            reset()
            shutil.rmtree(temp, ignore_errors=True)
            temp.mkdir()
            inject = f"inject={calls}:signal={name[3:]}:when={nth}"
            result = _traced(strace, trace, ["-e", f"trace={calls}", "-e", inject], argv, TMPDIR=str(temp))
            lines = trace.read_text().splitlines()
            hits = [i for i, line in enumerate(lines) if line.startswith(f"--- {name}")]
            if not hits:
                assert result.returncode == 0, result.stderr.decode(errors="replace")
                break
            # The traced call just before the signal: the Nth, or (interrupts held) the last of the held block.
            moment = f"{name} at {calls} #{nth}, delivered after {lines[hits[0] - 1]}"
            err = result.stderr.decode(errors="replace")
            assert result.returncode == INTERRUPTED and "Traceback" not in err, f"{moment}\n{err}"
            assert os.listdir(temp) == [], moment  # no temp file of isobuild's or pyproject-hooks' left
            found[calls].append(check(moment, result))
        else:
            pytest.fail(f"{calls}: still interrupted at call 59, so the sweep never reached the end")
    return found


def _committed_last(found: dict[str, list[bool]], least: int = 5) -> None:
    """Interrupted before the commit point, nothing is left; after it, everything is: never the other way."""
    for calls, committed in found.items():
        assert committed == sorted(committed), (calls, committed)
    assert sum(not c for cs in found.values() for c in cs) >= least, found  # the sweep did reach the work


def test_a_signal_after_any_call_of_a_build_leaves_nothing_or_the_whole_wheel(tmp_path: Path, strace: str) -> None:
    """The rename into OUTDIR, made once the hook process has exited, is the commit point."""
    src = tmp_path / "probe"

    def reset() -> None:
        shutil.rmtree(src, ignore_errors=True)
        copy_fixture("probe", tmp_path)

    def check(moment: str, result: subprocess.CompletedProcess[bytes]) -> bool:
        if not (src / "dist").exists():
            return False
        assert os.listdir(src / "dist") == ["probe-1.0-py3-none-any.whl"], moment
        with zipfile.ZipFile(src / "dist" / "probe-1.0-py3-none-any.whl") as whl:
            assert whl.testzip() is None, moment
        return True

    _committed_last(_signal_after_each_call(strace, ["wheel", str(src), "-q"], tmp_path, reset, check))


def _installed(prefix: Path) -> dict[str, tuple[str, bytes | str]] | None:
    """The prefix's snapshot, less what each install writes anew: the source mtime in a .pyc's header, so
    also the .pyc's hash in RECORD."""
    if not prefix.exists():
        return None
    found = snapshot(prefix)
    for rel, (kind, data) in found.items():
        if rel.endswith(".pyc"):
            found[rel] = (kind, data[16:])
        elif rel.endswith(".dist-info/RECORD") and isinstance(data, bytes):
            lines = [
                line.split(b",")[0] if line.split(b",")[0].endswith(b".pyc") else line for line in data.splitlines()
            ]
            found[rel] = (kind, b"\n".join(lines))
    return found


def test_a_signal_after_any_call_of_an_install_from_source_leaves_no_prefix_or_the_whole(
    tmp_path: Path, strace: str
) -> None:
    src, prefix = tmp_path / "probe", tmp_path / "prefix"
    copy_fixture("probe", tmp_path)
    assert run_isobuild("install", str(src), "--prefix", str(prefix)).returncode == 0
    done = _installed(prefix)
    shutil.rmtree(prefix)

    def check(moment: str, result: subprocess.CompletedProcess[bytes]) -> bool:
        now = _installed(prefix)
        assert now in (None, done), moment
        return now is not None

    _committed_last(
        _signal_after_each_call(
            strace,
            ["install", str(src), "--prefix", str(prefix), "-q"],
            tmp_path,
            lambda: shutil.rmtree(prefix, ignore_errors=True),
            check,
        )
    )


# SIGHUP (an ssh drop) and SIGQUIT (Ctrl-\) are SIGTERM's twins (interrupts.FATAL): swept on the overwrite,
# every 2nd call, which keeps the suite's time in bounds.
@pytest.mark.parametrize(("signum", "step"), [(signal.SIGTERM, 1), (signal.SIGHUP, 2), (signal.SIGQUIT, 2)])
def test_a_signal_after_any_call_of_an_overwrite_leaves_the_old_install_or_the_new(
    tmp_path: Path, strace: str, signum: int, step: int
) -> None:
    prefix = tmp_path / "prefix"
    old = make_wheel(tmp_path / "old", {"probe/__init__.py": b"OLD = 1\n"}, name="probe", version="0.9")
    assert run_isobuild("install", str(old), "--prefix", str(prefix)).returncode == 0
    before = _installed(prefix)
    new = make_wheel(
        tmp_path / "new",
        {"probe/__init__.py": b"NEW = 1\n", "probe/more.py": b"MORE = 1\n"},
        name="probe",
        version="0.9",
    )
    assert run_isobuild("install", str(new), "--prefix", str(prefix), "--overwrite").returncode == 0
    after = _installed(prefix)

    def restore() -> None:
        shutil.rmtree(prefix)
        assert run_isobuild("install", str(old), "--prefix", str(prefix)).returncode == 0

    def check_overwrite(moment: str, result: subprocess.CompletedProcess[bytes]) -> bool:
        now = _installed(prefix)
        assert now in (before, after), moment
        return now == after

    _committed_last(
        _signal_after_each_call(
            strace,
            ["install", str(new), "--prefix", str(prefix), "--overwrite", "-q"],
            tmp_path,
            restore,
            check_overwrite,
            signum,
            step,
        ),
        5 // step,
    )


def test_the_artifact_is_renamed_into_outdir_once_the_hook_process_has_exited(tmp_path: Path, strace: str) -> None:
    """So that nothing the hook process does at its exit (the backend's atexit handlers) can follow the
    commit point, and an interrupt while it exits leaves OUTDIR as it was."""
    src, trace = copy_fixture("probe", tmp_path), tmp_path / "trace"
    result = _traced(strace, trace, ["-e", "trace=rename,renameat,renameat2,wait4"], ["wheel", str(src), "-q"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    lines = trace.read_text().splitlines()
    reaped = [i for i, line in enumerate(lines) if line.startswith("wait4(") and not line.endswith("= 0")]
    placed = [i for i, line in enumerate(lines) if line.startswith("rename") and "probe-1.0-py3-none-any.whl" in line]
    assert reaped and placed and reaped[0] < placed[0], lines


def test_what_a_backend_leaves_in_tmpdir_goes_with_the_command(tmp_path: Path) -> None:
    """The backend's TMPDIR is the command's own temp dir (scratch.py), removed when the command ends."""
    src, temp = copy_fixture("probe", tmp_path), tmp_path / "tmp"
    temp.mkdir()
    result = run_isobuild("wheel", str(src), "-C", "temp-file=1", env=clean_env(TMPDIR=str(temp)))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert os.listdir(temp) == []


def test_a_sigkilled_frontend_takes_the_hook_process_with_it_and_the_next_build_sweeps(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    pidfile, report, temp = tmp_path / "grandchild.pid", tmp_path / "report.json", tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen(
        [*isobuild_command(), "wheel", str(src), "-C", f"spawn-sleep={pidfile}", "-C", "temp-file=1"],
        env=clean_env(PROBE_REPORT=str(report), TMPDIR=str(temp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(pidfile)
    hook_process, grandchild = json.loads(report.read_text())["pid"], int(pidfile.read_text())
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while (alive(hook_process) or alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(hook_process) and not alive(grandchild)
    left = [p.name for p in (src / "dist").iterdir()]
    assert len(left) == 1 and left[0].startswith(".isobuild-"), left  # harmless, and swept next time
    left = os.listdir(temp)
    assert len(left) == 1 and left[0].startswith("isobuild-"), left  # the command's temp dir, the backend's file in it
    assert run_isobuild("wheel", str(src), env=clean_env(TMPDIR=str(temp))).returncode == 0
    assert sorted(p.name for p in (src / "dist").iterdir()) == ["probe-1.0-py3-none-any.whl"]
    assert os.listdir(temp) == []


@contextmanager
def mounted(target: Path, *options: str) -> Iterator[Path]:
    """A filesystem of the test's own (tmpfs, or a read-only bind mount); skipped where it cannot mount."""
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", *options, str(target)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {result.stderr.decode(errors='replace').strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_outdir_is_a_clean_error(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    (tmp_path / "ro-source").mkdir()
    with mounted(tmp_path / "ro", "--bind", str(tmp_path / "ro-source")) as ro:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        result = run_isobuild("wheel", str(src), "-o", str(ro))
        err = result.stderr.decode(errors="replace")
        assert result.returncode == BAD_INPUT, err
        assert "Read-only file system" in err and not own_traceback(err)
        assert os.listdir(ro) == []


def test_an_outdir_without_free_inodes_is_a_clean_error(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=1m,nr_inodes=2", "tmpfs") as full:
        (full / "x").write_text("")  # the last inode
        result = run_isobuild("wheel", str(src), "-o", str(full))
        err = result.stderr.decode(errors="replace")
        assert result.returncode == BAD_INPUT, err
        assert "No space left on device" in err and not own_traceback(err)
        assert os.listdir(full) == ["x"]


def test_parents_of_outdir_made_before_the_disk_filled_are_removed(tmp_path: Path) -> None:
    """OUTDIR's missing parents are made one by one and each recorded as the build's (scratch.make_dirs):
    when the filesystem refuses the next, the ones made go, and nothing else."""
    src = copy_fixture("probe", tmp_path)
    with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=1m,nr_inodes=4", "tmpfs") as full:
        (full / "kept").mkdir()  # the root, this and two more inodes: a/ and a/b/ fit, a/b/out does not
        result = run_isobuild("wheel", str(src), "-o", str(full / "a" / "b" / "out"))
        err = result.stderr.decode(errors="replace")
        assert result.returncode == BAD_INPUT, err
        assert "No space left on device" in err and not own_traceback(err)
        assert os.listdir(full) == ["kept"]


@pytest.mark.parametrize("kind", ["file", "dangling link"])
def test_what_stands_where_a_parent_of_outdir_must_go_is_named_and_kept(tmp_path: Path, kind: str) -> None:
    src = copy_fixture("probe", tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    blocker = work / "blocker"
    if kind == "file":
        blocker.write_text("mine\n")
    else:
        blocker.symlink_to(work / "nowhere")
    before = snapshot(work)
    outdir = blocker / "sub" / "out"
    result = run_isobuild("wheel", str(src), "-o", str(outdir))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BAD_INPUT, err
    assert f"output directory {outdir} cannot be created: {blocker} is not a directory" in err
    assert not own_traceback(err)
    assert snapshot(work) == before


def test_an_install_onto_a_full_disk_rolls_back_without_a_traceback(tmp_path: Path) -> None:
    files = {f"demo/m{i:03}.py": f"VALUE = {i}\n".encode() for i in range(40)}
    wheel = make_wheel(tmp_path / "w", files)
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=96k", "tmpfs") as small:
        result = run_isobuild("install", str(wheel), "--prefix", str(small / "prefix"), "--optimize", "0,1,2")
        err = result.stderr.decode(errors="replace")
        assert result.returncode == INSTALL_FAILED, err
        assert "No space left on device" in err and not own_traceback(err)
        assert os.listdir(small) == []


def _probe_with(tmp_path: Path, old: str, new: str) -> Path:
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(old, new))
    return src


@pytest.mark.parametrize("marker", ["python_version ~= '3'", "'a' == 'a'"])
def test_a_marker_that_cannot_be_evaluated_is_bad_input(tmp_path: Path, marker: str) -> None:
    src = _probe_with(tmp_path, "requires = []", f'requires = ["setuptools; {marker}"]')
    result = run_isobuild("wheel", str(src))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BAD_INPUT, err
    assert "marker cannot be evaluated" in err and not own_traceback(err)
    assert not (src / "dist").exists()


def test_deep_nesting_is_bad_input(tmp_path: Path) -> None:
    src = _probe_with(tmp_path, "requires = []", "requires = []\nx = " + "[" * 1000 + "]" * 1000)
    result = run_isobuild("wheel", str(src))
    assert result.returncode == BAD_INPUT and not own_traceback(result.stderr.decode(errors="replace"))
    deep = '{"a": ' + "[" * 20000 + "]" * 20000 + "}"  # 40 KB: under the kernel's limit for one argument
    result = run_isobuild("wheel", str(copy_fixture("probe", tmp_path / "2")), "--config-json", deep)
    assert result.returncode == BAD_INPUT and b"--config-json" in result.stderr
    nested = '{"a": ' + "[" * 100 + "]" * 100 + "}"  # parses, but nests deeper than any backend's settings
    result = run_isobuild("wheel", str(copy_fixture("probe", tmp_path / "3")), "--config-json", nested)
    assert result.returncode == BAD_INPUT and b"nested more than 64 deep" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_pyproject_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    src = copy_fixture("probe", tmp_path)
    (src / "pyproject.toml").unlink()
    if kind == "fifo":
        os.mkfifo(src / "pyproject.toml")
    else:
        (src / "pyproject.toml").symlink_to("/dev/zero")
    result = run_isobuild("wheel", str(src), timeout=30)
    assert result.returncode == BAD_INPUT and b"is not a regular file" in result.stderr


def test_a_nul_backend_is_bad_input(tmp_path: Path) -> None:
    src = _probe_with(tmp_path, 'build-backend = "probe_backend"', 'build-backend = "\\u0000"')
    result = run_isobuild("wheel", str(src))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BAD_INPUT, err
    assert "Traceback" not in err and "is not MODULE or MODULE:OBJECT" in err


@pytest.mark.parametrize("answer", ["echo garbage", "echo '{\"sys_path\": 1}'", "echo '[1, 2]'", "exec sleep 40"])
def test_a_target_that_answers_nonsense_is_exit_6(tmp_path: Path, answer: str) -> None:
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nread line\n{answer}\n")
    fake.chmod(0o755)
    result = run_isobuild("wheel", str(copy_fixture("probe", tmp_path)), "--python", str(fake), timeout=90)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == INTERPRETER, err
    assert not own_traceback(err) and "internal error" not in err


def test_a_closed_stdout_is_exit_120(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = subprocess.run(
        [*isobuild_command(), "wheel", str(src), "-q"],
        env=clean_env(),
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
        timeout=120,
    )
    assert result.returncode == OutputFailed.exit_code, result.stderr.decode(errors="replace")
    assert b"cannot write the result to stdout" in result.stderr


def test_a_broken_wheel_from_the_backend_is_not_placed(tmp_path: Path) -> None:
    src = copy_fixture("backend-broken-wheel", tmp_path)
    result = run_isobuild("wheel", str(src))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BACKEND_FAILED, err
    assert "made a broken wheel: broken-1.0-py3-none-any.whl has no METADATA" in err
    assert not (src / "dist").exists()
