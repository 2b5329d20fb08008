"""Same input, same bytes (issue 25): no path of isobuild's own choosing that a backend sees is random,
and ``--check-reproducible`` builds twice with what should not matter varied, and says what differs.

The real C extension is markupsafe 2.1.5's sdist (pinned, downloaded once into the test cache): its
debug info records the dir it was compiled in, which is the dir isobuild unpacked the sdist into.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import test_realworld
from isobuild.compare import compare
from isobuild.errors import BackendFailed, Interrupted, NotReproducible
from isobuild.scratch import source_key
from test_environment_faults import wrapped_probe
from test_faults import mounted
from test_realworld import realworld  # noqa: F401  the fixture: the suite's sdists and build env

from conftest import CACHE, build_env, clean_env, copy_fixture, isobuild_command, require_interpreter, run_isobuild

VERSION = "3.11"
EPOCH = "1700000000"
MARKUPSAFE = "markupsafe==2.1.5"
WHEEL = "probe-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def markupsafe() -> Path:
    """The pinned sdist, downloaded once (pip download --no-binary) into the test cache."""
    where = CACHE / "repro-sdists"
    found = sorted(where.glob("[Mm]arkup[Ss]afe-2.1.5.tar.gz")) if where.is_dir() else []
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                "markupsafe",
                "-d",
                str(where),
                MARKUPSAFE,
            ],
            check=True,
            env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
        )
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
    procs = [
        subprocess.Popen(
            _argv(markupsafe, tmp_path / f"out{i}"), env=_env(temp), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(8)
    ]
    errors = [proc.communicate(timeout=900)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [e.decode(errors="replace")[-2000:] for e in errors]
    assert len({_wheel_hash(tmp_path / f"out{i}") for i in range(8)}) == 1
    assert any(b"waiting for " in err for err in errors), "no build waited: they did not share the name"
    assert not any(b"cannot be ours" in err for err in errors), "a race cost a build its fixed name"
    assert os.listdir(temp) == []
    assert all(
        sorted(p.name for p in (tmp_path / f"out{i}").iterdir()) == [next((tmp_path / "out0").glob("*.whl")).name]
        for i in range(8)
    )


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
    proc = subprocess.Popen(
        _argv(markupsafe, outdir),
        env=_env(temp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
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


def _wait_for_text(path: Path, text: bytes, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not (path.exists() and text in path.read_bytes()):
        assert proc.poll() is None and time.monotonic() < deadline, path.read_bytes().decode(errors="replace")
        time.sleep(0.02)


def test_a_build_with_the_same_inputs_waits_and_an_interrupt_ends_the_wait(tmp_path: Path) -> None:
    """The second command waits for the first's lock (and says so); SIGTERM ends the wait and touches nothing."""
    src, temp, started, gate = wrapped_probe(tmp_path), _temp(tmp_path), tmp_path / "started", tmp_path / "gate"
    argv, env = [*isobuild_command(), "wheel", str(src)], clean_env(TMPDIR=str(temp))
    first = subprocess.Popen(
        [*argv, "-o", str(tmp_path / "out1"), "-C", f"started={started}", "-C", f"gate={gate}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        while not started.exists():
            assert first.poll() is None, first.communicate()[1].decode(errors="replace")
            time.sleep(0.02)
        held = os.listdir(temp)
        with open(tmp_path / "err2", "wb") as err:
            second = subprocess.Popen(
                [*argv, "-o", str(tmp_path / "out2")], env=env, stdout=subprocess.PIPE, stderr=err
            )
            _wait_for_text(tmp_path / "err2", b"waiting for " + str(temp / held[0]).encode(), second)
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=60)
        assert second.returncode == Interrupted.exit_code, (tmp_path / "err2").read_text()
        assert os.listdir(temp) == held and not (tmp_path / "out2").exists()
        with open(tmp_path / "err3", "wb") as err:
            third = subprocess.Popen([*argv, "-o", str(tmp_path / "out3")], env=env, stdout=subprocess.PIPE, stderr=err)
            _wait_for_text(tmp_path / "err3", b"waiting for ", third)
    finally:
        gate.touch()
    assert first.wait(timeout=300) == 0 and third.wait(timeout=300) == 0, (tmp_path / "err3").read_text()
    assert os.listdir(tmp_path / "out1") == os.listdir(tmp_path / "out3") == [WHEEL]  # (probe stamps the time)
    assert os.listdir(temp) == []


@pytest.mark.parametrize("squatter", ["another user's dir", "a symlink"])
def test_a_name_that_cannot_be_ours_falls_back_to_a_random_one_and_says_so(tmp_path: Path, squatter: str) -> None:
    """A shared TMPDIR: whoever made TMPDIR/isobuild-KEY first keeps it; nothing of it is used or removed."""
    src, temp, elsewhere = copy_fixture("probe", tmp_path), _temp(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = require_interpreter(VERSION)
    taken = temp / f"isobuild-{source_key(str(src), python)}"
    if squatter == "a symlink":
        taken.symlink_to(elsewhere)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to make a dir of another user")
        taken.mkdir()
        os.chown(taken, 65534, 65534)
        held = os.open(taken, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(held, fcntl.LOCK_EX)  # in use by its owner: still never waited for
    try:
        result = run_isobuild("wheel", str(src), "--python", python, env=clean_env(TMPDIR=str(temp)), timeout=120)
    finally:
        if squatter != "a symlink":
            os.close(held)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert f"warning: {taken} cannot be ours" in err, err
    assert os.listdir(temp) == [taken.name] and os.listdir(elsewhere) == []


# ---------------------------------------------------------------- item 2: --check-reproducible


def _check(
    command: str, src: Path, tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[bytes], dict]:  # type: ignore[type-arg]
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    settings = {"SOURCE_DATE_EPOCH": EPOCH, "PYTHONPATH": str(build_env(VERSION)), **env, "TMPDIR": str(temp)}
    result = run_isobuild(
        command,
        str(src),
        "-o",
        str(tmp_path / "out"),
        "--check-reproducible",
        "--json",
        *args,
        env=clean_env(**settings),
    )
    assert os.listdir(temp) == [], "the second build was left behind"
    assert b"internal error" not in result.stderr, result.stderr.decode(errors="replace")
    return result, json.loads(result.stdout) if result.stdout else {}


@pytest.mark.parametrize(
    ("noise", "member", "cause"),
    [
        ("build-path", "noisy/where.py", "build-path"),
        ("timestamp", "noisy-1.0.dist-info/METADATA", "timestamp"),
        ("record-order", "noisy-1.0.dist-info/RECORD", "ordering"),
        ("random", "noisy/token.py", "content"),
    ],
)
def test_check_reproducible_names_the_member_and_the_cause(tmp_path: Path, noise: str, member: str, cause: str) -> None:
    result, info = _check("wheel", copy_fixture("unreproducible", tmp_path), tmp_path, "-C", f"noise={noise}")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == NotReproducible.exit_code, err
    report = info["reproducible"]
    assert report["identical"] is False
    causes = {diff["name"]: diff["cause"] for diff in report["comparison"]["members"]}
    assert causes[member] == cause, causes
    assert set(causes) <= {member, "noisy-1.0.dist-info/RECORD"}, causes  # RECORD follows the member, if another
    assert f"member {member}" in err and f"cause: {cause}" in err and "ERROR not reproducible" in err, err
    kept = tmp_path / "out" / "noisy-1.0-py3-none-any.whl"
    assert info["path"] == str(kept) and sorted(os.listdir(tmp_path / "out")) == [kept.name]  # the first is kept


@pytest.mark.parametrize(
    ("fixture", "command"),
    [
        ("unreproducible", "wheel"),
        ("unreproducible", "sdist"),
        ("flit", "wheel"),
        ("flit", "sdist"),
        ("hatch", "wheel"),
        ("hatch", "sdist"),
    ],
)
def test_check_reproducible_passes_a_reproducible_build(tmp_path: Path, fixture: str, command: str) -> None:
    result, info = _check(command, copy_fixture(fixture, tmp_path), tmp_path)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert info["reproducible"]["identical"] is True and "reproducible: both builds gave the same bytes" in err
    varied = {v["name"]: (v["first"], v["second"]) for v in info["reproducible"]["variations"]}
    for name in ("tree", "TMPDIR", "umask", "PYTHONHASHSEED", "TZ", "LC_ALL", "directory listing order"):
        assert varied[name][0] != varied[name][1] or name == "directory listing order", varied
    assert len(os.listdir(tmp_path / "out")) == 1


@pytest.mark.parametrize(
    ("fixture", "difference"),
    [
        ("probe", "timestamps differ"),  # zipfile stamps local time: TZ varies, 14 hours apart
        ("setuptools-pyproject", "permissions differ"),  # the files setuptools copies follow the umask
    ],
)
def test_what_the_second_build_varies_is_caught(tmp_path: Path, fixture: str, difference: str) -> None:
    result, info = _check("wheel", copy_fixture(fixture, tmp_path), tmp_path)
    assert result.returncode == NotReproducible.exit_code, result.stderr.decode(errors="replace")
    archive = info["reproducible"]["comparison"]["archive"]
    assert [line.split(" for ")[0] for line in archive] == [difference], archive
    assert info["reproducible"]["comparison"]["members"] == []


def test_a_failed_second_build_leaves_outdir_as_it_was(tmp_path: Path) -> None:
    """The varied build runs first, in its copy: OUTDIR only ever gets the kept one."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "noisy-1.0-py3-none-any.whl").write_bytes(b"an earlier wheel")
    result, _ = _check("wheel", copy_fixture("unreproducible", tmp_path), tmp_path, "-C", "noise=umask-fails")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BackendFailed.exit_code and "refusing to build under umask 002" in err, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["noisy-1.0-py3-none-any.whl"]
    assert (tmp_path / "out" / "noisy-1.0-py3-none-any.whl").read_bytes() == b"an earlier wheel"


def test_an_sdist_stamped_with_the_time_of_the_build_is_reported(tmp_path: Path) -> None:
    result, info = _check("sdist", copy_fixture("unreproducible", tmp_path), tmp_path, "-C", "noise=sdist-mtime")
    assert result.returncode == NotReproducible.exit_code, result.stderr.decode(errors="replace")
    archive = info["reproducible"]["comparison"]["archive"]
    assert any(line.startswith("timestamps differ for 12 member(s)") for line in archive), archive


def test_source_date_epoch_is_the_newest_mtime_in_the_tree_and_said(tmp_path: Path) -> None:
    src = copy_fixture("unreproducible", tmp_path)
    for path in src.rglob("*"):
        os.utime(path, (1600000000, 1500000000))
    os.utime(src / "noisy" / "golf.py", (1600000000, 1600000000))
    env = {k: v for k, v in clean_env().items() if k != "SOURCE_DATE_EPOCH"}
    result = run_isobuild("wheel", str(src), "-o", str(tmp_path / "out"), "--check-reproducible", env=env)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert f"SOURCE_DATE_EPOCH=1600000000 for both builds (from the newest mtime in {src})" in err, err
    with zipfile.ZipFile(tmp_path / "out" / "noisy-1.0-py3-none-any.whl") as zf:
        assert {info.date_time for info in zf.infolist()} == {time.gmtime(1600000000)[:6]}


def test_a_c_extension_from_an_sdist_records_its_build_path(tmp_path: Path, markupsafe: Path) -> None:
    """The real case: markupsafe's .so holds the dir it was compiled in; the second build's is another."""
    result, info = _check("wheel", markupsafe, tmp_path, "--python", require_interpreter(VERSION))
    assert result.returncode == NotReproducible.exit_code, result.stderr.decode(errors="replace")
    causes = {diff["name"]: diff["cause"] for diff in info["reproducible"]["comparison"]["members"]}
    assert causes["markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"] == "build-path", causes
    assert "ffile-prefix-map" in result.stderr.decode(errors="replace")


def test_the_listing_order_varies_where_tmpdir_is_a_tmpfs(tmp_path: Path) -> None:
    src = copy_fixture("unreproducible", tmp_path)
    with mounted(tmp_path / "tmp", "-t", "tmpfs", "tmpfs"):  # a tmpfs lists a directory newest first
        result, info = _check("wheel", src, tmp_path, "-C", "noise=listing")
    assert result.returncode == NotReproducible.exit_code, result.stderr.decode(errors="replace")
    assert any(line.startswith("member order differs") for line in info["reproducible"]["comparison"]["archive"])


def test_the_listing_order_is_said_not_to_vary_where_it_cannot(tmp_path: Path) -> None:
    result, info = _check("wheel", copy_fixture("unreproducible", tmp_path), tmp_path, "-C", "noise=listing")
    listing = next(v for v in info["reproducible"]["variations"] if v["name"] == "directory listing order")
    if listing["second"] == "another order":
        pytest.skip("this TMPDIR's filesystem lists in creation order: the order did vary")
    assert result.returncode == 0 and listing["second"].startswith("the same"), result.stderr.decode(errors="replace")


def test_compare_returns_frozen_records(tmp_path: Path) -> None:
    """compare.py's public function, for other checks to reuse (issue 23)."""
    paths = []
    for token in ("a", "b"):
        path = tmp_path / f"{token}.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("pkg/token.py", f"TOKEN = {token!r}\n")
        paths.append(str(path))
    result = compare(*paths)
    assert not result.identical and [m.name for m in result.members] == ["pkg/token.py"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.members[0].cause = "x"  # type: ignore[misc]
    assert compare(paths[0], paths[0]).identical


# ---------------------------------------------------------------- the real-world suite's sdists (opt-in)


@pytest.mark.realworld
@pytest.mark.parametrize("pin", sorted(test_realworld.PROJECTS))
def test_check_reproducible_on_a_real_project(tmp_path: Path, pin: str, realworld: dict[str, Path]) -> None:
    """``wheel --check-reproducible`` from each real sdist: either the same bytes, or a report whose every
    difference names a cause. ISOBUILD_REPRO_TABLE=FILE appends one JSON line a project (the README's table)."""
    dist, version = pin.split("==")
    (sdist,) = [
        p
        for p in realworld["sdists"].iterdir()
        if p.name.lower().replace("_", "-").startswith(f"{dist.lower().replace('_', '-')}-{version}")
    ]
    path = f"{realworld['build_env'] / 'bin'}{os.pathsep}{os.environ['PATH']}"
    result, info = _check(
        "wheel",
        sdist,
        tmp_path,
        "--python",
        require_interpreter(test_realworld.VERSION),
        PYTHONPATH=str(realworld["build_env"]),
        PATH=path,
    )
    err = result.stderr.decode(errors="replace")
    assert result.returncode in (0, NotReproducible.exit_code), err[-4000:]
    comparison = info["reproducible"]["comparison"]
    assert (result.returncode == 0) == comparison["identical"]
    assert all(diff["cause"] for diff in comparison["members"]), comparison
    if os.environ.get("ISOBUILD_REPRO_TABLE"):
        row = {
            "pin": pin,
            "identical": comparison["identical"],
            "archive": comparison["archive"],
            "members": [(d["name"], d["cause"]) for d in comparison["members"]],
        }
        with open(os.environ["ISOBUILD_REPRO_TABLE"], "a") as table:
            table.write(json.dumps(row) + "\n")


def test_only_declared_holds_for_both_builds(tmp_path: Path) -> None:
    """--check-reproducible --only-declared: the varied build hides what the kept one hides (it had dropped
    the flag, so a build that needs an undeclared distribution passed its first build)."""
    env = clean_env(PYTHONPATH=str(build_env("3.11")))
    result = run_isobuild(
        "wheel",
        str(copy_fixture("flit", tmp_path)),
        "--python",
        require_interpreter("3.11"),
        "-o",
        str(tmp_path / "out"),
        "--check-reproducible",
        "--only-declared",
        "-v",
        env=env,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    hidden = [line for line in stderr.splitlines() if "--only-declared:" in line and "hidden" in line]
    assert len(hidden) == 2 and "second build" in hidden[0], stderr
