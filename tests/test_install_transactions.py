"""Installs that cannot be left half-done: every default-fatal signal rolls back, a SIGKILLed install is
completed or rolled back by the next install into that prefix, and concurrent installs serialize."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isobuild.errors import InstallFailed, Interrupted, RefusedWheel
from test_faults import strace  # noqa: F401  (the fixture: strace, installed if missing)

from conftest import clean_env, isobuild_command, make_wheel, run_isobuild, snapshot

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SITE = f"lib/python{VERSION}/site-packages"


def _demo(tmp_path: Path, version: str, files: int = 30) -> Path:
    """demo VERSION: files shared by every version, some of this version's alone (in a subpackage of its
    own: its dirs go with it), a console script."""
    tag = version.replace(".", "_")
    members = {f"demo/m{i:03}.py": f"VALUE = {i}\nVERSION = {version!r}\n".encode() for i in range(files)}
    members["demo/__init__.py"] = f"VERSION = {version!r}\ndef main():\n    pass\n".encode()
    members[f"demo/only_{tag}/__init__.py"] = f"ONLY = {version!r}\n".encode()
    members[f"demo-{version}.dist-info/entry_points.txt"] = b"[console_scripts]\ndemo = demo:main\n"
    return make_wheel(tmp_path / f"demo-{version}", members, version=version)


def _record_hash(path: Path) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()


def _check_one_version_each(prefix: Path) -> dict[str, str]:
    """Each project in the prefix has exactly one .dist-info, every file its RECORD lists is there with its
    hash, nothing else is (no file, no `.isobuild-*`, no empty dir). Returns {project: version}."""
    site = prefix / SITE
    infos = sorted(p for p in site.iterdir() if p.name.endswith(".dist-info"))
    projects = [p.name.split("-")[0] for p in infos]
    assert len(set(projects)) == len(projects), infos
    listed: set[Path] = set()
    for info in infos:
        with open(info / "RECORD", newline="") as f:
            for row in csv.reader(f):
                path = Path(os.path.normpath(site / row[0]))
                assert path.is_file(), (info.name, row[0])
                if row[1]:
                    assert _record_hash(path) == row[1], (info.name, row[0])
                listed.add(path)
    for path in prefix.rglob("*"):
        assert ".isobuild-" not in path.name, path
        if path.is_dir():
            assert any(path.iterdir()), f"empty dir left: {path}"
        else:
            assert path in listed, f"not in any RECORD: {path}"
    return {p.name.split("-")[0]: p.name[: -len(".dist-info")].split("-")[1] for p in infos}


# ---------------------------------------------------------------- every default-fatal signal rolls back


def _big_wheel(tmp_path: Path) -> Path:
    """~1500 files, as sympy has."""
    files = {f"big/sub{i // 100:02}/m{i:04}.py": f"VALUE = {i}\n".encode() for i in range(1500)}
    files.update({f"big/sub{j:02}/__init__.py": b"" for j in range(15)})
    return make_wheel(tmp_path / "big", files, name="big")


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_during_a_big_install_roll_it_back(tmp_path: Path, signum: int) -> None:
    wheel, prefix, temp = _big_wheel(tmp_path), tmp_path / "prefix", tmp_path / "tmp"
    (prefix / "share").mkdir(parents=True)
    (prefix / "share" / "users-file").write_text("kept\n")
    temp.mkdir()
    before = snapshot(prefix)
    proc = subprocess.Popen(
        [*isobuild_command(), "install", str(wheel), "--prefix", str(prefix)],
        env=clean_env(TMPDIR=str(temp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not (prefix / SITE / "big" / "sub03").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the install finished before the signal reached it")
    assert proc.returncode == Interrupted.exit_code, err.decode(errors="replace")
    assert b"Traceback" not in err
    assert snapshot(prefix) == before
    assert os.listdir(temp) == []


def test_a_sigpipe_sent_with_kill_is_ignored(tmp_path: Path, strace: str) -> None:  # noqa: F811
    """SIGPIPE stays ignored, as Python leaves it (interrupts.py): the install goes on and stands."""
    prefix = tmp_path / "prefix"
    result = subprocess.run(
        [
            strace,
            "-qq",
            "-o",
            os.devnull,
            "-e",
            "inject=openat:signal=PIPE:when=100+50",
            *isobuild_command(),
            "install",
            str(_demo(tmp_path, "1.0")),
            "--prefix",
            str(prefix),
        ],
        env=clean_env(),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert _check_one_version_each(prefix) == {"demo": "1.0"}


# ---------------------------------------------------------------- a SIGKILL, then the next install


def _traced(
    tracer: str, trace: Path, calls: str, argv: list[str], kill_at: tuple[str, int] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """isobuild ARGV under strace (whole paths in the trace), killed on entering the Nth call of one name."""
    inject = ["-e", f"inject={kill_at[0]}:signal=KILL:when={kill_at[1]}"] if kill_at else []
    temp = trace.with_name("tmp")  # empty each time: no sweep of a killed run's temp dir changes the count
    subprocess.run(["rm", "-rf", str(temp)], check=True)
    temp.mkdir()
    return subprocess.run(
        [tracer, "-qq", "-s", "4096", "-o", str(trace), "-e", f"trace={calls}", *inject, *isobuild_command(), *argv],
        env=clean_env(PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(temp)),
        capture_output=True,
        timeout=120,
    )


def _moments(tracer: str, tmp_path: Path, calls: str, argv: list[str], prefix: Path) -> list[tuple[str, int]]:
    """(call, N) for traced calls that touch the prefix, in a run to the end, spread over the install
    (strace counts each call by itself)."""
    trace = tmp_path / "trace"
    result = _traced(tracer, trace, calls, argv)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    counts: dict[str, int] = {}
    touching = []
    for line in trace.read_text().splitlines():
        name = line.split("(", 1)[0]
        counts[name] = counts.get(name, 0) + 1
        if str(prefix) in line:
            touching.append((name, counts[name]))
    assert len(touching) > 20, touching
    picks = {
        0,
        1,
        2,
        3,
        len(touching) // 3,
        len(touching) // 2,
        2 * len(touching) // 3,
        len(touching) - 4,
        len(touching) - 3,
        len(touching) - 2,
        len(touching) - 1,
    }
    return [touching[i] for i in sorted(picks)]


@pytest.mark.parametrize(
    ("case", "calls"), [("install", "openat,mkdir,rename,unlink"), ("overwrite", "openat,rename,unlink,rmdir")]
)
def test_a_sigkilled_install_is_completed_or_rolled_back_by_the_next(
    tmp_path: Path,
    strace: str,  # noqa: F811
    case: str,
    calls: str,
) -> None:
    prefix, old, new = tmp_path / "prefix", _demo(tmp_path, "1.0"), _demo(tmp_path, "2.0")
    other = make_wheel(tmp_path / "other", {"other/__init__.py": b"X = 1\n"}, name="other")
    argv = ["install", str(new), "--prefix", str(prefix), *(["--overwrite"] if case == "overwrite" else [])]

    def reset() -> None:
        subprocess.run(["rm", "-rf", str(prefix)], check=True)
        if case == "overwrite":
            assert run_isobuild("install", str(old), "--prefix", str(prefix)).returncode == 0

    reset()
    seen = set()
    for nth in _moments(strace, tmp_path, calls, argv, prefix):
        reset()
        killed = _traced(strace, tmp_path / "trace", calls, argv, kill_at=nth)
        moment = f"SIGKILL at {nth[0]} #{nth[1]}: {killed.returncode}"
        assert killed.returncode == -signal.SIGKILL, moment
        journal = prefix.exists() and any(p.name.startswith(".isobuild-journal-") for p in prefix.iterdir())
        after = run_isobuild("install", str(other), "--prefix", str(prefix))
        err = after.stderr.decode(errors="replace")
        assert after.returncode == 0, f"{moment}\n{err}"
        said = [line for line in err.splitlines() if "an install cut short" in line]
        assert len(said) == (1 if journal else 0), f"{moment}\n{err}"
        versions = _check_one_version_each(prefix)
        if said and said[0].endswith("was rolled back"):
            seen.add("rolled back")
            assert versions.get("demo") == ("1.0" if case == "overwrite" else None), f"{moment}\n{err}"
        elif said:
            seen.add("completed")
            assert said[0].endswith("was completed") and versions["demo"] == "2.0", f"{moment}\n{err}"
    assert seen == {"rolled back", "completed"}, seen


def test_a_sigkill_while_the_compiler_is_busy_is_recovered_once_the_compiler_is_done(tmp_path: Path) -> None:
    """The compiler outlives a SIGKILLed install (its own session) and compiles what it was sent; it holds
    the install's lock, so the next install recovers only once it is done: no .pyc comes after."""
    body = "".join(f"def f{j}(x):\n    return [x * {j} for _ in range(3)]\n" for j in range(300)).encode()
    wheel = make_wheel(tmp_path / "w", {f"big/m{i:03}.py": body for i in range(300)}, name="big")
    prefix = tmp_path / "prefix"
    other = make_wheel(tmp_path / "other", {"other/__init__.py": b"X = 1\n"}, name="other")
    proc = subprocess.Popen(
        [*isobuild_command(), "install", str(wheel), "--prefix", str(prefix), "-j", "1"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60  # files are written faster than compiled: a backlog, once the last is
    while not (prefix / SITE / "big" / "m250.py").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.communicate(timeout=60)
    after = run_isobuild("install", str(other), "--prefix", str(prefix))
    err = after.stderr.decode(errors="replace")
    assert after.returncode == 0, err
    if "was completed" not in err:
        assert "was rolled back" in err, err
    time.sleep(0.5)  # a compiler still running would write now
    assert set(_check_one_version_each(prefix)) <= {"big", "other"}


# ---------------------------------------------------------------- concurrent installs serialize


@pytest.mark.parametrize("where", ["prefix", "destdir"])
def test_concurrent_overwrites_of_alternating_versions_leave_one_whole_version(tmp_path: Path, where: str) -> None:
    """The lock is on the destination root: the prefix, or DESTDIR/PREFIX."""
    target = (
        ["--prefix", str(tmp_path / "prefix")]
        if where == "prefix"
        else ["--prefix", "/usr", "--destdir", str(tmp_path / "destdir")]
    )
    root = tmp_path / "prefix" if where == "prefix" else tmp_path / "destdir" / "usr"
    assert run_isobuild("install", str(_demo(tmp_path, "0.5", files=200)), *target).returncode == 0
    wheels = [_demo(tmp_path, version, files=200) for version in ("1.0", "2.0")]
    procs = [
        subprocess.Popen(
            [*isobuild_command(), "install", str(wheels[i % 2]), *target, "--overwrite", "-q"],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode(errors="replace")
    assert _check_one_version_each(root)["demo"] in ("1.0", "2.0")


def test_a_planted_journal_changes_nothing_outside_its_root(tmp_path: Path) -> None:
    """A journal is acted on only if this user wrote it for this root, and then only inside the root."""
    prefix, outside = tmp_path / "prefix", tmp_path / "outside.txt"
    prefix.mkdir()
    outside.write_text("mine\n")
    escape = f"{prefix}/../outside.txt"
    records = [
        ["begin", str(prefix)],
        ["create", str(outside)],
        ["create", escape],
        ["mkdir", str(tmp_path)],
        ["backup", escape, str(tmp_path / ".outside.txt.isobuild-1.old")],
    ]
    (prefix / ".isobuild-journal-1").write_text("".join(json.dumps(r) + "\n" for r in records))
    (prefix / ".isobuild-journal-2").write_text(
        json.dumps(["begin", str(tmp_path)]) + "\n" + json.dumps(["create", str(outside)]) + "\n"
    )
    foreign = prefix / ".isobuild-journal-3"
    foreign.write_text(json.dumps(["begin", str(prefix)]) + "\n")
    os.chown(foreign, 65534, 65534)
    (prefix / ".isobuild-journal-4").write_bytes(b'["beg')  # killed while it wrote its first record
    result = run_isobuild("install", str(_demo(tmp_path, "1.0")), "--prefix", str(prefix))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert outside.read_text() == "mine\n"
    assert "(process 1) was rolled back" in err and "(process 4) was rolled back" in err
    assert err.count("as it is: not a journal of this user's") == 2
    assert sorted(p.name for p in prefix.iterdir() if p.name.startswith(".isobuild-")) == [
        ".isobuild-journal-2",
        ".isobuild-journal-3",
    ]


def test_a_journal_with_relative_paths_is_acted_on_nowhere(tmp_path: Path) -> None:
    """A journal names absolute paths only: a relative one would mean another file in each working
    directory (and no path rule can compare it with the root). Its records are dropped, not followed."""
    prefix = tmp_path / "prefix"
    (prefix / "sub").mkdir(parents=True)
    (prefix / "victim.txt").write_text("mine\n")
    (prefix / "sub" / "x.py").write_text("mine\n")
    (prefix / "sub" / ".x.py.isobuild-1.gone").write_text("backup\n")
    records = [
        ["begin", str(prefix)],
        ["create", "victim.txt"],
        ["mkdir", "sub"],
        ["remove", "sub/x.py", "sub/.x.py.isobuild-1.gone", str(prefix)],
    ]
    (prefix / ".isobuild-journal-1").write_text("".join(json.dumps(r) + "\n" for r in records))
    before = {p: p.read_text() for p in prefix.rglob("*") if p.is_file() and "journal" not in p.name}
    result = run_isobuild("install", str(_demo(tmp_path, "1.0")), "--prefix", str(prefix), cwd=prefix)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert "(process 1) was rolled back" in err
    assert all(path.read_text() == text for path, text in before.items())


def test_an_overwrite_replaces_the_installed_version(tmp_path: Path) -> None:
    """As pip's upgrade: the old version's files that the new one does not have go, with the dirs they
    leave empty, and its .dist-info; a failure puts every one back."""
    prefix = tmp_path / "prefix"
    assert run_isobuild("install", str(_demo(tmp_path, "1.0")), "--prefix", str(prefix)).returncode == 0
    before = snapshot(prefix)
    failing = make_wheel(
        tmp_path / "failing", {"demo/__init__.py": b"X = 1\n", "demo/zz_" + "x" * 300 + ".py": b""}, version="2.0"
    )
    assert (
        run_isobuild("install", str(failing), "--prefix", str(prefix), "--overwrite").returncode
        == InstallFailed.exit_code
    )
    assert snapshot(prefix) == before
    result = run_isobuild("install", str(_demo(tmp_path, "2.0")), "--prefix", str(prefix), "--overwrite")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert _check_one_version_each(prefix) == {"demo": "2.0"}
    assert not (prefix / SITE / "demo" / "only_1_0").exists()


def test_a_wheel_that_would_write_a_journal_into_the_root_is_refused(tmp_path: Path) -> None:
    """The next install would read it as a dead install's journal, and undo what it names."""
    prefix = tmp_path / "prefix"
    wheel = make_wheel(tmp_path / "w", {"demo/__init__.py": b"", "demo-1.0.data/data/.isobuild-journal-1": b"[]\n"})
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    assert result.returncode == RefusedWheel.exit_code, result.stderr.decode(errors="replace")
    assert b"where isobuild keeps its install journal" in result.stderr
    assert not prefix.exists()
