"""Seeded fuzzing of pyproject.toml and of the command line: whatever comes in, isobuild answers with a
documented exit code in bounded time, never an internal error (exit 1), a signal, or a traceback of its
own code, and a failed build leaves no staging dir behind. The seed is fixed: a failure reruns exactly."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import isobuild
from isobuild.errors import (
    BackendFailed,
    BackendUnavailable,
    BadInput,
    InstallFailed,
    InterpreterError,
    MissingDependencies,
    OutputFailed,
    RefusedWheel,
)

from conftest import clean_env, copy_fixture, isobuild_command, make_wheel
from helpers import own_traceback

DOCUMENTED = {0} | {
    error.exit_code
    for error in (
        BadInput,
        MissingDependencies,
        BackendFailed,
        BackendUnavailable,
        InterpreterError,
        RefusedWheel,
        InstallFailed,
        OutputFailed,
    )
}
TOKENS = [
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b'"',
    b"'",
    b"\n",
    b"\\",
    b"\\u0000",
    b"\x00",
    b"#",
    b"\xff\xfe",
    b"requires = 1",
    b'build-backend = ""',
    b'backend-path = ["/etc"]',
    b'backend-path = ["../.."]',
    b"[build-system]",
    b"[[build-system]]",
    b"requires = [\"a; python_version ~= '3'\"]",
    b"\xc3\xa9",
    b'requires = ["\\u0000"]',
    b'build-backend = "os:path"',
    b"x = " + b"[" * 300 + b"]" * 300,
    b"build-backend = 'probe_backend:nothing'",
    b'requires = ["probe_backend>=99"]',
    b"\r",
    b"\t",
]


def _mutant(base: bytes, rng: random.Random) -> bytes:
    data = bytearray(base)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data) + 1)
        operation = rng.randrange(4)
        if operation == 0 and data:
            del data[at : at + rng.randint(1, 12)]
        elif operation == 1:
            data[at:at] = rng.choice(TOKENS)
        elif operation == 2:
            lines = bytes(data).split(b"\n")
            line = rng.randrange(len(lines))
            lines.insert(line, lines[line])
            data = bytearray(b"\n".join(lines))
        elif data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
    return bytes(data)


def _check(argv: list[str], cwd: Path, own: Path | None = None) -> str | None:
    """None if isobuild answered as documented; else what went wrong."""
    try:
        result = subprocess.run([*isobuild_command(), *argv], cwd=cwd, env=clean_env(), capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"{argv}: no answer in 60 s"
    err = result.stderr.decode(errors="replace")
    if result.returncode not in DOCUMENTED or own_traceback(err) or "internal error" in err:
        return f"{argv}: exit {result.returncode}\n{err[-2000:]}"
    leftovers = [p for p in (own or cwd).rglob(".isobuild-*")]  # runs in parallel: only this run's dirs
    if result.returncode != 0 and leftovers:
        return f"{argv}: exit {result.returncode} left {leftovers}"
    return None


def test_hundreds_of_mutated_pyproject_files(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    base = (copy_fixture("probe", tmp_path / "base") / "pyproject.toml").read_bytes()
    cases = []
    for number in range(300):
        src = copy_fixture("probe", tmp_path / f"m{number:03}")
        (src / "pyproject.toml").write_bytes(_mutant(base, rng))
        command = rng.choice(["wheel", "wheel", "sdist", "requires", "metadata", "env"])
        cases.append(([command, str(src), "-q"] if command != "env" else [command, str(src)], src, src))
    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = [p for p in pool.map(lambda case: _check(*case), cases) if p]
    assert not problems, "\n\n".join(problems[:5])


def _argv(rng: random.Random, tmp_path: Path, src: Path, wheel: Path) -> list[str]:
    """A random command line; what it could write stays under ``tmp_path`` (its own dir of it)."""
    values = [
        "",
        ".",
        "..",
        "/nonexistent",
        str(src),
        str(wheel),
        str(src / "pyproject.toml"),
        "-",
        "--",
        "x" * 300,
        "é",
        "0",
        "-1",
        "99999999999",
        "0,1,2,3",
        "a=b",
        "=",
        "{}",
        "[]",
        '{"a":',
        "/bin/true",
        "/bin/false",
        sys.executable,
        "\t",
        " ",
        "python3",
        "-sP",
        "-s -E",
        "posix_prefix",
        "nope_scheme",
        "checked-hash",
    ]
    options = [
        "-C",
        "--config-setting",
        "--config-json",
        "--python",
        "--path",
        "--optimize",
        "-j",
        "--scheme",
        "--interpreter",
        "--invalidation-mode",
        "--for",
        "--installer",
        "--shebang-flags",
    ]
    flags = [
        "-x",
        "-q",
        "-v",
        "--json",
        "--system-site",
        "--overwrite",
        "--no-compile",
        "--requested",
        "--help",
        "--no-tag-check",
        "--hardlink-dupes",
        "--no-installer-file",
        "--frobnicate",
        "--version",
    ]
    command = rng.choice(["wheel", "sdist", "editable", "metadata", "requires", "env", "install", "install", "bogus"])
    argv = [command] + ([rng.choice([str(src), str(wheel), rng.choice(values)])] if rng.random() < 0.9 else [])
    for _ in range(rng.randint(0, 4)):
        if rng.random() < 0.5:
            argv.append(rng.choice(flags))
        else:
            option = rng.choice(options)
            value = rng.choice(values)
            argv += [f"{option}={value}"] if option == "--shebang-flags" else [option, value]
    argv += ["--destdir", str(tmp_path / "dest"), "--prefix", "/p"] if command == "install" else []
    argv += ["-o", str(tmp_path / "out")] if command in ("wheel", "sdist", "editable", "metadata") else []
    return argv


def test_hundreds_of_random_command_lines(tmp_path: Path) -> None:
    rng = random.Random(1202)
    src = copy_fixture("probe", tmp_path)
    wheel = make_wheel(tmp_path / "wheels", {"demo/__init__.py": b"X = 1\n"})
    cases = [(_argv(rng, tmp_path / f"run{i:03}", src, wheel), tmp_path, tmp_path / f"run{i:03}") for i in range(200)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = [p for p in pool.map(lambda case: _check(*case), cases) if p]
    assert not problems, "\n\n".join(problems[:5])


def test_the_traceback_check_goes_by_isobuilds_frames_not_by_directory_names() -> None:
    """A backend's traceback from a checkout or venv under a directory called isobuild/ is not isobuild's;
    one with a frame of isobuild's own code is, wherever that code lives."""
    cli = os.path.join(os.path.dirname(isobuild.__file__), "cli", "__init__.py")
    ours = f'Traceback (most recent call last):\n  File "{cli}", line 1, in main\nTypeError: x\n'
    backend = (
        'Traceback (most recent call last):\n  File "/tmp/x/isobuild/isobuild/.venv/lib/python3.11/'
        'site-packages/pyproject_hooks/_in_process/_in_process.py", line 406, in <module>\n    main()\n'
        "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/isobuild/output.json'\n"
    )
    assert own_traceback(ours) and not own_traceback(backend)
    assert not own_traceback("ERROR /home/isobuild/isobuild/_inside/pyproject.toml: 'x' is not a table\n")


@pytest.mark.parametrize("seed", [7])
def test_the_mutator_makes_varied_files(seed: int) -> None:
    """A fuzz test that mutates nothing could not fail: the mutants differ from the base and from each other."""
    rng = random.Random(seed)
    base = b'[build-system]\nrequires = []\nbuild-backend = "probe_backend"\n'
    mutants = {_mutant(base, rng) for _ in range(50)}
    assert len(mutants) > 40 and base not in mutants
