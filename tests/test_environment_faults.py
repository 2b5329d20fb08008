"""A hostile environment around a good build: an output encoding that cannot hold the path, stderr that
nobody reads, a deleted working directory, a second build in another PID namespace, a backend that swaps
its output dir for a symlink, and build environments whose variables are near the kernel's limit.

The work done is never undone by what comes after it, and exit 1 stays for isobuild's own bugs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, BadInput

from conftest import clean_env, copy_fixture, isobuild_command, make_wheel, run_isobuild
from helpers import wait_for

WHEEL = "probe-1.0-py3-none-any.whl"

# The probe backend (fixtures/probe), wrapped: each config setting adds one misbehaviour before the
# probe's own build_wheel runs.
WRAPPER = """
import os, subprocess, sys, time
from probe_backend import *
import probe_backend


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    cs = config_settings or {}
    if "started" in cs:
        open(cs["started"], "w").close()
    if "gate" in cs:  # wait, bounded, for the test to open it
        deadline = time.monotonic() + 120
        while not os.path.exists(cs["gate"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    if "symlink-to" in cs:  # the staging dir replaced by a link to a dir of the test's
        os.rmdir(wheel_directory)
        os.symlink(cs["symlink-to"], wheel_directory)
    if "child-report" in cs:  # a Python child, as setuptools starts compilers and the like
        child = subprocess.run([sys.executable, "-c", "import json, sys; print(json.dumps(sys.path))"],
                               stdout=subprocess.PIPE, check=True)
        with open(cs["child-report"], "wb") as f:
            f.write(child.stdout)
    return probe_backend.build_wheel(wheel_directory, config_settings, metadata_directory)
"""


def wrapped_probe(tmp_path: Path) -> Path:
    src = copy_fixture("probe", tmp_path)
    (src / "_backend" / "envfault_backend.py").write_text(WRAPPER)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"probe_backend"', '"envfault_backend"'))
    return src


def _no_bug(err: bytes) -> None:
    text = err.decode(errors="replace")
    assert "internal error" not in text and "Traceback" not in text, text


# ---------------------------------------------------------------- output encodings (finding 7)

# PYTHONIOENCODING, and a dir name it cannot encode: any non-ASCII under ascii, bytes that are not
# UTF-8 under utf-8 (os.fsdecode holds them as surrogate escapes).
ENCODINGS = [("ascii", "out-\u00e9"), ("utf-8", os.fsdecode(b"out-\xff"))]


@pytest.mark.parametrize(("encoding", "name"), ENCODINGS)
def test_a_built_path_stdout_cannot_encode_is_printed_as_its_bytes(tmp_path: Path, encoding: str, name: str) -> None:
    """Not exit 1 after the wheel was placed: the path goes out as the bytes it has on disk (-v: stderr names
    it too)."""
    src, outdir = copy_fixture("probe", tmp_path), tmp_path / name
    result = run_isobuild("wheel", str(src), "-o", str(outdir), "-v", env=clean_env(PYTHONIOENCODING=encoding))
    _no_bug(result.stderr)
    assert result.returncode == 0, result.stderr
    assert result.stdout == os.fsencode(outdir / WHEEL) + b"\n"
    assert (outdir / WHEEL).is_file()


@pytest.mark.parametrize(("encoding", "name"), ENCODINGS)
@pytest.mark.parametrize("form", ["-v", "--json"])
def test_an_installed_path_stdout_cannot_encode_is_printed_and_the_install_stays(
    tmp_path: Path, encoding: str, name: str, form: str
) -> None:
    wheel, prefix = make_wheel(tmp_path / "w", {"demo/__init__.py": b"VALUE = 1\n"}), tmp_path / name
    result = run_isobuild(
        "install", str(wheel), "--prefix", str(prefix), "--no-compile", form, env=clean_env(PYTHONIOENCODING=encoding)
    )
    _no_bug(result.stderr)
    assert result.returncode == 0, result.stderr
    dist_info = next(prefix.rglob("demo-1.0.dist-info"))
    if form == "--json":
        assert json.loads(result.stdout)["installed"][0]["dist_info"] == str(dist_info)
    else:
        assert result.stdout == os.fsencode(dist_info) + b"\n"
    assert (dist_info / "RECORD").is_file()


# ---------------------------------------------------------------- stderr nobody reads (finding 8)


@pytest.mark.parametrize(
    ("settings", "expected"), [((), 0), (("-C", "fail=on purpose", "-q"), BackendFailed.exit_code)]
)
def test_stderr_whose_reader_is_gone_leaves_the_result_to_the_build(
    tmp_path: Path, settings: tuple[str, ...], expected: int
) -> None:
    """Not 'interrupted' (130), not a filesystem error: the lines are dropped, the build's result is the exit code."""
    src = copy_fixture("probe", tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*isobuild_command(), "wheel", str(src), *settings],
            stdout=subprocess.PIPE,
            stderr=write_end,
            env=clean_env(),
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert result.returncode == expected
    if expected == 0:
        assert result.stdout == os.fsencode(src / "dist" / WHEEL) + b"\n" and (src / "dist" / WHEEL).is_file()
    else:
        assert result.stdout == b"" and not (src / "dist").exists()


def test_stderr_whose_reader_goes_away_mid_build_leaves_the_result_to_the_build(tmp_path: Path) -> None:
    src, gate = wrapped_probe(tmp_path), tmp_path / "gate"
    proc = subprocess.Popen(
        [*isobuild_command(), "wheel", str(src), "-C", f"gate={gate}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stderr is not None and proc.stdout is not None
    proc.stderr.readline()  # isobuild has started writing progress lines; then nobody reads them any more
    proc.stderr.close()
    gate.touch()
    out = proc.stdout.read()
    assert proc.wait(timeout=300) == 0
    assert out == os.fsencode(src / "dist" / WHEEL) + b"\n" and (src / "dist" / WHEEL).is_file()


# ---------------------------------------------------------------- a deleted working directory (finding 8)


def test_a_deleted_working_directory_is_named(tmp_path: Path) -> None:
    src, gone = copy_fixture("probe", tmp_path), tmp_path / "gone"
    gone.mkdir()

    def leave_a_deleted_cwd() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    result = subprocess.run(
        [*isobuild_command(), "wheel", str(src)],
        capture_output=True,
        env=clean_env(),
        preexec_fn=leave_a_deleted_cwd,
        timeout=300,
    )
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BadInput.exit_code, err
    assert f"ERROR the working directory no longer exists: {gone}\nhint: " in err, err
    assert not (src / "dist").exists()


# ---------------------------------------------------------------- the sweep's proof (finding 8)


def _entries(directory: Path, prefix: str) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(prefix))


def test_a_build_in_another_pid_namespace_sweeps_nothing_of_a_live_build(tmp_path: Path) -> None:
    """Same host name, other PIDs: the first build's temp dir and staging dir are locked, so they stay."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs util-linux's unshare and root for a PID namespace")
    first, second = wrapped_probe(tmp_path / "a"), copy_fixture("probe", tmp_path / "b")
    temp, outdir, started, gate = tmp_path / "tmp", tmp_path / "out", tmp_path / "started", tmp_path / "gate"
    temp.mkdir()
    env = clean_env(TMPDIR=str(temp))
    proc = subprocess.Popen(
        [*isobuild_command(), "wheel", str(first), "-o", str(outdir), "-C", f"started={started}", "-C", f"gate={gate}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        wait_for(started)
        live = (_entries(temp, "isobuild-"), _entries(outdir, ".isobuild-"))
        assert [len(names) for names in live] == [1, 1], live
        other = subprocess.run(
            ["unshare", "--pid", "--fork", *isobuild_command(), "wheel", str(second), "-o", str(outdir), "-q"],
            capture_output=True,
            env=env,
            timeout=300,
        )
        assert other.returncode == 0, other.stderr.decode(errors="replace")
        assert (_entries(temp, "isobuild-"), _entries(outdir, ".isobuild-")) == live
    finally:
        gate.touch()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert sorted(os.listdir(outdir)) == [WHEEL] and os.listdir(temp) == []


def test_a_dir_a_sigkill_left_is_swept_even_when_its_pid_is_alive_again(tmp_path: Path) -> None:
    """PIDs are reused: a dir whose number is a live process's but whose lock is free is a dead build's."""
    src, temp = copy_fixture("probe", tmp_path), tmp_path / "tmp"
    temp.mkdir()
    host, pid = os.uname().nodename, os.getpid()  # alive: this very process
    left = [src / "dist" / f".isobuild-{host}-{pid}-abcdefgh", temp / f"isobuild-{host}-{pid}-abcdefgh"]
    for path in left:
        path.mkdir(parents=True)
        (path / "half-written").write_text("x")
    result = run_isobuild("wheel", str(src), env=clean_env(TMPDIR=str(temp)))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert os.listdir(src / "dist") == [WHEEL] and os.listdir(temp) == []


# ---------------------------------------------------------------- a staging dir swapped for a symlink (finding 8)


def test_a_backend_that_replaces_its_staging_dir_with_a_symlink_fails_and_leaves_nothing(tmp_path: Path) -> None:
    src, elsewhere = wrapped_probe(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("not isobuild's")
    result = run_isobuild("wheel", str(src), "-C", f"symlink-to={elsewhere}")
    err = result.stderr.decode(errors="replace")
    _no_bug(result.stderr)
    assert result.returncode == BackendFailed.exit_code, err
    assert "the backend replaced its output directory" in err, err
    assert not (src / "dist").exists()  # made by this build, so removed: the link first, never followed
    assert sorted(os.listdir(elsewhere)) == ["keep", WHEEL] and (elsewhere / "keep").read_text() == "not isobuild's"


# ---------------------------------------------------------------- build environments near the kernel's limits


def test_pythonpath_and_nix_pythonpath_of_70_kb_each_reach_a_backends_child(tmp_path: Path) -> None:
    """One variable over 128 KiB (MAX_ARG_STRLEN) makes every exec fail: the children's sys.path is not one."""
    src, report = wrapped_probe(tmp_path), tmp_path / "child.json"
    entries = [str(tmp_path / "env" / f"{'d' * 90}{i:04}") for i in range(900)]
    pythonpath, nix = os.pathsep.join(entries[:450]), os.pathsep.join(entries[450:])
    assert 60_000 < len(pythonpath) < 128 * 1024 and 60_000 < len(nix) < 128 * 1024
    result = run_isobuild(
        "wheel", str(src), "-C", f"child-report={report}", env=clean_env(PYTHONPATH=pythonpath, NIX_PYTHONPATH=nix)
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    child_path = json.loads(report.read_text())
    assert entries[0] in child_path and entries[-1] in child_path  # the hooks' sys.path, put back in the child
    assert (src / "dist" / WHEEL).is_file()


def test_a_python_without_ctypes_builds_without_the_subreaper(tmp_path: Path) -> None:
    """A CPython built without libffi has no _ctypes: isobuild is then no child subreaper (reaper.py's
    limit, as on a system without prctl), and the build goes on."""
    shadow = tmp_path / "no-ctypes"
    shadow.mkdir()
    (shadow / "ctypes.py").write_text("raise ModuleNotFoundError(\"No module named '_ctypes'\", name='_ctypes')\n")
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-o", str(tmp_path / "out"), env=clean_env(PYTHONPATH=str(shadow)))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert (tmp_path / "out" / WHEEL).is_file()
