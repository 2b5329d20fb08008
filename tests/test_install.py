"""isobuild install: real interpreters, real wheels, hostile wheels refused with nothing written."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from isobuild.errors import BadInput, InstallFailed, Interrupted, RefusedWheel

from conftest import (
    TARGET_VERSIONS,
    clean_env,
    copy_fixture,
    digest as _digest,
    isobuild_command,
    make_wheel,
    require_interpreter,
    run_isobuild,
)

REFUSED, INSTALL_FAILED = RefusedWheel.exit_code, InstallFailed.exit_code
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


GOOD = {
    "demo/__init__.py": b"def main():\n    print('demo ok')\n",
    "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo-cli = demo:main\n",
}


def _hostile(tmp: Path) -> dict[str, tuple[Path, str]]:
    wheels = tmp / "hostile"
    cases: dict[str, tuple[Path, str]] = {}

    def case(key: str, message: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        files = {**GOOD, **kwargs.pop("extra", {})}
        for drop in kwargs.pop("drop", ()):
            files.pop(drop)
        cases[key] = (make_wheel(wheels / key, files, **kwargs), message)

    case("absolute", "'/etc/evil' is absolute or escapes", extra={"/etc/evil": b"x"})
    case("dotdot", "'../evil.py' is absolute or escapes", extra={"../evil.py": b"x"})
    case(
        "data-escape",
        "'demo-1.0.data/purelib/../../../evil' is absolute or escapes",
        extra={"demo-1.0.data/purelib/../../../evil": b"x"},
    )
    case("data-unknown-key", "unknown scheme 'etc'", extra={"demo-1.0.data/etc/passwd": b"x"})
    case(
        "script-name",
        "console script name '../../evil' is not a plain file name",
        extra={"demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\n../../evil = demo:main\n"},
    )
    case(
        "bad-entry-points",
        "entry_points.txt is malformed",
        extra={"demo-1.0.dist-info/entry_points.txt": b"[console_scripts\nnot ini at all\n"},
    )
    case("symlink", "'demo/link' is a symlink", extra={"demo/link": b"/etc/passwd"}, symlinks=("demo/link",))
    case("no-record", "RECORD", record=False)
    case("hash-mismatch", "demo/__init__.py", record="demo/__init__.py,sha256=AAAA,34\ndemo-1.0.dist-info/RECORD,,\n")
    case(
        "unlisted-member",
        "is not mentioned in RECORD",
        record=f"demo/__init__.py,{_digest(GOOD['demo/__init__.py'])},{len(GOOD['demo/__init__.py'])}\n",
    )
    case("no-wheel-file", "demo-1.0.dist-info/WHEEL is missing", extra={"demo-1.0.dist-info/WHEEL": None})
    case("bad-wheel-file", "WHEEL is malformed", extra={"demo-1.0.dist-info/WHEEL": b"Generator: x\n"})
    case("no-metadata", "demo-1.0.dist-info/METADATA is missing", extra={"demo-1.0.dist-info/METADATA": None})
    case(
        "metadata-mismatch",
        "METADATA names other 1.0",
        extra={"demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n"},
    )
    case("distinfo-mismatch", "does not match the file name", wheel_name="demo-2.0-py3-none-any.whl")
    good = make_wheel(wheels / "base", GOOD)
    truncated = wheels / "truncated" / "demo-1.0-py3-none-any.whl"
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated"] = (truncated, "not a readable zip file")
    corrupt = wheels / "corrupt" / "demo-1.0-py3-none-any.whl"
    corrupt.parent.mkdir(parents=True)
    data = bytearray(good.read_bytes())
    offset = data.index(b"def main")
    data[offset : offset + 3] = b"XYZ"
    corrupt.write_bytes(bytes(data))
    cases["corrupt"] = (corrupt, "corrupt or truncated zip")
    return cases


HOSTILE_KEYS = [
    "absolute",
    "dotdot",
    "data-escape",
    "data-unknown-key",
    "script-name",
    "bad-entry-points",
    "symlink",
    "no-record",
    "hash-mismatch",
    "unlisted-member",
    "no-wheel-file",
    "bad-wheel-file",
    "no-metadata",
    "metadata-mismatch",
    "distinfo-mismatch",
    "truncated",
    "corrupt",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_wheel_is_refused_with_nothing_written(tmp_path: Path, key: str) -> None:
    wheel, message = _hostile(tmp_path)[key]
    stage = tmp_path / "stage"
    result = run_isobuild("install", str(wheel), "--prefix", "/opt/demo", "--destdir", str(stage))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == REFUSED, err
    assert message in err and "Traceback" not in err
    assert not stage.exists()
    assert result.stdout == b""


@pytest.mark.parametrize("version", TARGET_VERSIONS)
def test_fixture_console_script_runs_the_target(tmp_path: Path, version: str) -> None:
    """The probe fixture, built by the target's hooks and installed through DESTDIR in one command."""
    python = require_interpreter(version)
    src = copy_fixture("probe", tmp_path)
    stage, prefix = tmp_path / "stage", "/opt/isobuild-test"

    result = run_isobuild(
        "install", str(src), "--python", python, "--prefix", prefix, "--destdir", str(stage), "--shebang-flags=-s"
    )  # argparse needs the = for a value that starts with -

    assert result.returncode == 0, result.stderr.decode(errors="replace")
    script = stage / prefix.lstrip("/") / "bin" / "probe-cli"
    assert script.read_bytes().split(b"\n", 1)[0] == f"#!{python} -s".encode()
    site = stage / prefix.lstrip("/") / "lib" / f"python{version}" / "site-packages"
    pyc = next((site / "probe" / "__pycache__").glob("__init__.cpython-*.pyc"))
    assert f"cpython-{version.replace('.', '')}" in pyc.name
    record = (site / "probe-1.0.dist-info" / "RECORD").read_text()
    assert f"probe/__pycache__/{pyc.name}," in record
    assert (site / "probe-1.0.dist-info" / "INSTALLER").read_text() == "isobuild\n"
    for path in stage.rglob("*"):
        if path.is_file():
            assert str(stage).encode() not in path.read_bytes(), path
    run = subprocess.run([str(script)], env=clean_env(PYTHONPATH=str(site)), capture_output=True)
    assert run.stdout == b"probe ok\n", run.stderr


def test_long_interpreter_path_uses_the_sh_trampoline(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", GOOD)
    real = Path(require_interpreter(VERSION))
    long_dir = tmp_path / ("d" * 60) / ("e" * 60) / "with space"
    long_dir.mkdir(parents=True)
    (long_dir / "python").symlink_to(real)
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--python", str(long_dir / "python"), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    script = prefix / "bin" / "demo-cli"
    assert script.read_bytes().startswith(b"#!/bin/sh\n'''exec' ")
    site = prefix / "lib" / f"python{VERSION}" / "site-packages"
    assert (
        subprocess.run([str(script)], env=clean_env(PYTHONPATH=str(site)), capture_output=True).stdout == b"demo ok\n"
    )


DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_python() -> str:
    if not os.path.exists(DEBIAN_PYTHON):
        pytest.skip("no /usr/bin/python3 here")
    schemes = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import sysconfig; print(sysconfig.get_scheme_names())"], capture_output=True, text=True
    ).stdout
    if "deb_system" not in schemes:
        pytest.skip("/usr/bin/python3 is not Debian's (no deb_system scheme)")
    return DEBIAN_PYTHON


@pytest.mark.parametrize(
    "scheme, expected", [(None, "lib/python{v}/site-packages"), ("deb_system", "lib/python3/dist-packages")]
)
def test_debian_python_schemes(tmp_path: Path, scheme: str | None, expected: str) -> None:
    python = _debian_python()
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    wheel = make_wheel(tmp_path / "w", GOOD)
    prefix = tmp_path / "P"
    args = ["--scheme", scheme] if scheme else []
    result = run_isobuild("install", str(wheel), "--python", python, "--prefix", str(prefix), *args)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert (prefix / expected.format(v=version) / "demo" / "__init__.py").is_file()
    assert (prefix / "bin" / "demo-cli").read_bytes().startswith(b"#!/usr/bin/python3\n")


def test_matches_python_m_installer(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        {
            **GOOD,
            "demo-1.0.data/data/share/demo.txt": b"data",
            "demo-1.0.data/scripts/tool": b"#!python\nprint('tool')\n",
        },
    )
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    assert run_isobuild("install", str(wheel), "--prefix", "/p", "--destdir", str(ours)).returncode == 0
    subprocess.run(
        [
            sys.executable,
            "-m",
            "installer",
            "--prefix",
            "/p",
            "--destdir",
            str(theirs),
            "--no-compile-bytecode",
            str(wheel),
        ],
        check=True,
    )

    def listing(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    a, b = listing(ours), listing(theirs)
    installer_file = "p/lib/python{}/site-packages/demo-1.0.dist-info/INSTALLER".format(VERSION)
    assert a.pop(installer_file) == b"isobuild\n"  # python -m installer writes none
    assert sorted(a) == sorted(b)
    for name in a:
        if not name.endswith(("RECORD", "INSTALLER")) and "/bin/" not in name:
            assert a[name] == b[name], name


def test_install_srcdir_builds_in_isolation_and_installs(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(src), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    site = prefix / "lib" / f"python{VERSION}" / "site-packages"
    assert result.stdout.decode().strip() == str(site / "probe-1.0.dist-info")
    assert (prefix / "bin" / "probe-cli").is_file() and (site / "probe" / "__init__.py").is_file()
    assert not (src / "dist").exists()


# A name the filesystem refuses (ENAMETOOLONG) only when it is written: a failure part-way.
UNWRITABLE = "demo/zz_" + "x" * 300 + ".py"


def test_existing_files_need_overwrite_and_failures_roll_back(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", GOOD)
    prefix = tmp_path / "prefix"
    site = prefix / "lib" / f"python{VERSION}" / "site-packages"
    (site / "demo").mkdir(parents=True)
    (site / "demo" / "__init__.py").write_text("mine\n")

    refused = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    assert refused.returncode == REFUSED and b"exists" in refused.stderr
    assert not (prefix / "bin").exists()

    failing = make_wheel(tmp_path / "failing", {**GOOD, UNWRITABLE: b"X = 1\n"})
    failed = run_isobuild("install", str(failing), "--prefix", str(prefix), "--overwrite")
    assert failed.returncode == INSTALL_FAILED, failed.stderr.decode(errors="replace")
    assert b"rolled back" in failed.stderr
    assert not (prefix / "bin").exists(), "the script written before the failure is removed"
    assert sorted(p.name for p in site.iterdir()) == ["demo"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_directory_where_a_file_must_go_is_refused_before_writing(tmp_path: Path, overwrite: list[str]) -> None:
    wheel = make_wheel(tmp_path / "w", GOOD)
    prefix = tmp_path / "prefix"
    site = prefix / "lib" / f"python{VERSION}" / "site-packages"
    (site / "demo" / "__init__.py").mkdir(parents=True)
    refused = run_isobuild("install", str(wheel), "--prefix", str(prefix), *overwrite)
    assert refused.returncode == REFUSED, refused.stderr.decode(errors="replace")
    assert b"would replace the directory" in refused.stderr
    assert not (prefix / "bin").exists() and sorted(p.name for p in site.iterdir()) == ["demo"]


def test_bytecode_options_installer_name_and_requested(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", GOOD)
    prefix = tmp_path / "prefix"
    result = run_isobuild(
        "install",
        str(wheel),
        "--prefix",
        str(prefix),
        "--optimize",
        "0,1,2",
        "-j",
        "2",
        "--invalidation-mode",
        "checked-hash",
        "--installer",
        "fedora-rpm",
        "--requested",
        "--interpreter",
        "/usr/bin/python3",
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    site = prefix / "lib" / f"python{VERSION}" / "site-packages"
    pycs = sorted((site / "demo" / "__pycache__").iterdir())
    assert len(pycs) == 3
    assert all(int.from_bytes(p.read_bytes()[4:8], "little") == 0b11 for p in pycs), "checked-hash pycs"
    record = (site / "demo-1.0.dist-info" / "RECORD").read_text()
    assert all(f"demo/__pycache__/{p.name}," in record for p in pycs)
    assert (site / "demo-1.0.dist-info" / "INSTALLER").read_text() == "fedora-rpm\n"
    assert (site / "demo-1.0.dist-info" / "REQUESTED").exists()
    assert (prefix / "bin" / "demo-cli").read_bytes().startswith(b"#!/usr/bin/python3\n")


def test_bad_optimize_levels(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", GOOD)
    for levels in ("3", "x"):
        result = run_isobuild("install", str(wheel), "--prefix", str(tmp_path / "p"), "--optimize", levels)
        assert result.returncode == BadInput.exit_code and b"--optimize" in result.stderr
    assert not (tmp_path / "p").exists()


PR_SET_CHILD_SUBREAPER = 36  # prctl(2): an orphan among our descendants becomes our child, not init's


def _children(pid: int) -> list[int]:
    """/proc/PID/task/TID/children of each of its threads."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # that thread, or the process, is gone
            found += [int(child) for child in children.read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, theirs, and so on."""
    return [pid, *(grandchild for child in _children(pid) for grandchild in _descendants(child))]


def _running(pid: int) -> str | None:
    """Its command line; None for a process that has exited (a zombie waiting for us included) or
    has a SIGKILL pending (it runs no more code of its own: it dies on leaving the call it is in)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    status = {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}
    killed = any(int(status.get(key, "0"), 16) & 1 << (signal.SIGKILL - 1) for key in ("SigPnd", "ShdPnd"))
    if killed or status.get("State", "Z")[:1] in ("Z", "X"):
        return None
    return argv.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


@contextlib.contextmanager
def _adopting() -> Iterator[Callable[[], list[str]]]:
    """What an isobuild started in this block leaves running becomes our child (we are its child
    subreaper), not init's: a test finds a compiler left behind among the processes it started, not
    among every process on the machine (other test runs compile too). Yields a function listing the
    command lines of what was started in the block and still runs; on the way out, kills and reaps it."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    before = set(_children(os.getpid()))
    assert prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())

    def ours() -> list[int]:
        return [pid for child in _children(os.getpid()) if child not in before for pid in _descendants(child)]

    try:
        yield lambda: [command for command in map(_running, ours()) if command is not None]
    finally:
        while ours():  # a killed process's own children are adopted when it dies: round again
            for pid in ours():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in ours():
                with contextlib.suppress(ChildProcessError):  # not our child (yet): the next round's
                    os.waitpid(pid, 0)
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def test_the_process_check_finds_what_a_command_leaves_running_and_only_that(tmp_path: Path) -> None:
    """A check that saw nothing could not fail: an orphan of a command run in the block is found (and
    killed on the way out); a process started outside the block, as another test run's, is not."""
    outside = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = tmp_path / "pid"
        with _adopting() as left_running:
            orphan = f"import subprocess; open({str(pidfile)!r}, 'w').write(str(subprocess.Popen(['sleep', '61']).pid))"
            subprocess.run([sys.executable, "-c", orphan], check=True, timeout=60)  # Popen returns once exec'd
            assert left_running() == ["sleep 61"]
        with pytest.raises(ProcessLookupError):
            os.kill(int(pidfile.read_text()), 0)
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()


def test_a_failed_install_rolls_back_the_bytecode_compiled_so_far(tmp_path: Path) -> None:
    """Sources are compiled while the wheel is unpacked: a failure after some were sent waits for
    the compiler, then removes its .pyc files and __pycache__ dirs too; nothing is written after exit."""
    files = {f"demo/m{i:03}.py": f"VALUE = {i}\n".encode() for i in range(80)}
    files[UNWRITABLE] = b"LATE = 1\n"  # last in the zip
    wheel = make_wheel(tmp_path / "w", files)
    prefix = tmp_path / "prefix"

    with _adopting() as left_running:
        failed = run_isobuild("install", str(wheel), "--prefix", str(prefix), "-j", "2")
        assert failed.returncode == INSTALL_FAILED, failed.stderr.decode(errors="replace")
        assert not left_running(), "the compiler was waited for"
        time.sleep(0.5)  # a compiler left running would write now
    assert not prefix.exists(), sorted(prefix.rglob("*"))  # every dir it made goes too


def _pycs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if ".pyc" in p.name or p.name == "__pycache__")


def test_a_compiler_that_fails_leaves_no_bytecode_behind(tmp_path: Path) -> None:
    """The compile process dies (a file where zz/__pycache__ must go): exit 8, and what it wrote goes too."""
    files = {f"aa/m{i:03}.py": f"VALUE = {i}\n".encode() for i in range(80)}
    files["zz/__pycache__"] = b"not a directory"
    files["zz/x.py"] = b"X = 1\n"
    wheel = make_wheel(tmp_path / "w", files, name="aa")
    prefix = tmp_path / "prefix"
    with _adopting() as left_running:
        failed = run_isobuild("install", str(wheel), "--prefix", str(prefix), "-j", "2")
        assert failed.returncode == INSTALL_FAILED, failed.stderr.decode(errors="replace")
        assert b"failed to compile bytecode" in failed.stderr
        assert not left_running()
    assert not prefix.exists() or _pycs(prefix) == []
    assert not prefix.exists() or [p for p in prefix.rglob("*") if p.is_file()] == []


def test_an_install_interrupted_twice_stops_the_compiler_and_rolls_everything_back(tmp_path: Path) -> None:
    body = "".join(f"def f{j}(x):\n    return [x * {j} for _ in range(3)]\n" for j in range(300)).encode()
    wheel = make_wheel(tmp_path / "w", {f"big/m{i:03}.py": body for i in range(300)}, name="big")
    prefix = tmp_path / "prefix"
    with _adopting() as left_running:
        proc = subprocess.Popen(
            [*isobuild_command(), "install", str(wheel), "--prefix", str(prefix)],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not any(prefix.rglob("*.pyc")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # a second one, while it rolls back
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            pytest.skip("the install finished before the interrupt reached it")
        assert proc.returncode == Interrupted.exit_code, err.decode(errors="replace")
        assert not left_running()
        time.sleep(0.5)  # a compiler left running would write now
    assert not prefix.exists() or [p for p in prefix.rglob("*") if p.is_file()] == []
    assert not prefix.exists() or _pycs(prefix) == []
