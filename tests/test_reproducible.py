"""Same input, same bytes (issue 25): no path of isobuild's own choosing that a backend sees is random,
and ``--check-reproducible`` builds twice with what should not matter varied, and says what differs.

The real C extension is markupsafe 2.1.5's sdist (pinned, downloaded once into the test cache): its
debug info records the dir it was compiled in, which is the dir isobuild unpacked the sdist into.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CACHE, build_env, clean_env, isobuild_command, require_interpreter, run_isobuild

VERSION = "3.11"
EPOCH = "1700000000"
MARKUPSAFE = "markupsafe==2.1.5"


@pytest.fixture(scope="module")
def markupsafe() -> Path:
    """The pinned sdist, downloaded once (pip download --no-binary) into the test cache."""
    where = CACHE / "repro-sdists"
    found = sorted(where.glob("[Mm]arkup[Ss]afe-2.1.5.tar.gz")) if where.is_dir() else []
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", "markupsafe", "-d", str(where), MARKUPSAFE], check=True,
                       env=clean_env(PIP_ROOT_USER_ACTION="ignore"))
        found = sorted(where.glob("[Mm]arkup[Ss]afe-2.1.5.tar.gz"))
    return found[0]


def _env(temp: Path, **extra: str) -> dict[str, str]:
    return clean_env(PYTHONPATH=str(build_env(VERSION)), TMPDIR=str(temp), SOURCE_DATE_EPOCH=EPOCH, **extra)


def _argv(archive: Path, outdir: Path) -> list[str]:
    return [*isobuild_command(), "wheel", str(archive), "-o", str(outdir), "--python", require_interpreter(VERSION)]


def _wheel_hash(outdir: Path) -> str:
    (wheel,) = outdir.glob("*.whl")
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def _build(archive: Path, outdir: Path, temp: Path) -> str:
    result = subprocess.run(_argv(archive, outdir), env=_env(temp), capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-4000:]
    return _wheel_hash(outdir)


def _temp(tmp_path: Path) -> Path:
    temp = tmp_path / "tmp"
    temp.mkdir()
    return temp


# ---------------------------------------------------------------- item 1: isobuild's own paths

def test_the_same_sdist_archive_built_twice_gives_the_same_bytes(tmp_path: Path, markupsafe: Path) -> None:
    """Also from a copy of the archive elsewhere: the unpack dir is named by the archive's content."""
    temp = _temp(tmp_path)
    first = _build(markupsafe, tmp_path / "out1", temp)
    assert _build(markupsafe, tmp_path / "out2", temp) == first
    copy = tmp_path / "elsewhere" / markupsafe.name
    copy.parent.mkdir()
    copy.write_bytes(markupsafe.read_bytes())
    assert _build(copy, tmp_path / "out3", temp) == first
    assert os.listdir(temp) == []


def test_eight_concurrent_builds_of_one_archive_give_the_same_wheel(tmp_path: Path, markupsafe: Path) -> None:
    """They take turns on the temp dir their inputs name (the others wait, and say so); none mixes."""
    temp = _temp(tmp_path)
    procs = [subprocess.Popen(_argv(markupsafe, tmp_path / f"out{i}"), env=_env(temp), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(8)]
    errors = [proc.communicate(timeout=900)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [e.decode(errors="replace")[-2000:] for e in errors]
    assert len({_wheel_hash(tmp_path / f"out{i}") for i in range(8)}) == 1
    assert any(b"waiting for " in err for err in errors), "no build waited: they did not share the name"
    assert os.listdir(temp) == []
    assert all(sorted(p.name for p in (tmp_path / f"out{i}").iterdir()) == [next((tmp_path / "out0").glob("*.whl")).name]
               for i in range(8))


def _wait_for_compiler(temp: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until the backend has started compiling in the unpacked tree (its build/ dir exists)."""
    deadline = time.monotonic() + 300
    while not list(temp.glob("isobuild-*/*/*/build/temp*")):
        assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")
        assert time.monotonic() < deadline, "the build never started compiling"
        time.sleep(0.05)


def test_a_sigkilled_build_leaves_nothing_that_changes_the_next_builds_bytes(tmp_path: Path, markupsafe: Path) -> None:
    temp = _temp(tmp_path)
    reference = _build(markupsafe, tmp_path / "reference", temp)
    outdir = tmp_path / "out"
    proc = subprocess.Popen(_argv(markupsafe, outdir), env=_env(temp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _wait_for_compiler(temp, proc)
        proc.kill()  # the frontend alone: its hook process and the compiler die with it (hookprocess.py)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert [p.name for p in temp.iterdir()] != [], "the SIGKILL left nothing: the test proves nothing"
    assert _build(markupsafe, outdir, temp) == reference
    assert os.listdir(temp) == []
    assert [p.suffix for p in outdir.iterdir()] == [".whl"]
