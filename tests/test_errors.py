"""Bad input: one clear message naming the culprit, its exit code, no traceback of isobuild's, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, BackendUnavailable, BadInput, InterpreterError, MissingDependencies

from conftest import FIXTURES, clean_env, copy_fixture, run_isobuild

BAD_INPUT, MISSING = BadInput.exit_code, MissingDependencies.exit_code
BACKEND_FAILED, BACKEND_UNAVAILABLE = BackendFailed.exit_code, BackendUnavailable.exit_code
INTERPRETER = InterpreterError.exit_code


def _project(root: Path, pyproject: bytes | None, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if pyproject is not None:
        (root / "pyproject.toml").write_bytes(pyproject)
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


INTREE = b'[build-system]\nrequires = []\nbuild-backend = "b"\nbackend-path = ["_b"]\n'
BACKEND_FILES = {"_b/b.py": "def build_wheel(d, c=None, m=None):\n    raise SystemExit('unreachable')\n"}

PYPROJECT_CASES = {
    "invalid-toml": (b'[build-system]\nrequires = ["setuptools"\n', {}, "is not valid TOML", "line 3"),
    "invalid-toml-midfile": (b"[build-system]\nrequires = [1 2]\n", {}, "is not valid TOML", "line 2"),
    "not-utf8": (b'[project]\nname = "caf\xe9"\n', {}, "is not UTF-8", "line 2, column 12"),
    "build-system-not-table": (b'build-system = "setuptools"\n', {}, "`build-system` must be a table", None),
    "requires-not-list": (
        b'[build-system]\nrequires = "setuptools"\n',
        {},
        "`requires` must be an array of strings",
        None,
    ),
    "requires-missing": (b'[build-system]\nbuild-backend = "x"\n', {}, "`requires` is a required property", None),
    "backend-not-string": (
        b"[build-system]\nrequires = []\nbuild-backend = 3\n",
        {},
        "`build-backend` must be a string",
        None,
    ),
    "invalid-requirement": (
        b'[build-system]\nrequires = ["setuptools >>= 1"]\nbuild-backend = "x"\n',
        {},
        "invalid requirement 'setuptools >>= 1'",
        None,
    ),
    "backend-path-absolute": (INTREE.replace(b'"_b"', b'"/tmp"'), BACKEND_FILES, "'/tmp' is absolute", None),
    "backend-path-outside": (
        INTREE.replace(b'"_b"', b'"../.."'),
        BACKEND_FILES,
        "points outside the source tree",
        None,
    ),
    "backend-path-missing": (INTREE.replace(b'"_b"', b'"nope"'), BACKEND_FILES, "'nope' does not exist", None),
}


def _assert_clean_failure(result, code: int, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    err = result.stderr.decode(errors="replace")
    assert result.returncode == code, err
    assert result.stdout == b"", "stdout carries results only"
    assert "ERROR " in err
    for fragment in fragments:
        assert fragment in err, err
    for own in (
        "isobuild/cli/",
        "isobuild/builder.py",
        "isobuild/runner.py",
        "isobuild/hookprocess.py",
        "isobuild/_inside/",
    ):
        assert own not in err, f"isobuild traceback: {err}"
    return err


@pytest.mark.parametrize("case", sorted(PYPROJECT_CASES))
def test_bad_pyproject(tmp_path: Path, case: str) -> None:
    content, files, message, position = PYPROJECT_CASES[case]
    src = _project(tmp_path / "src", content, files)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()

    result = run_isobuild("wheel", str(src), env=clean_env(TMPDIR=str(tmpdir)))

    err = _assert_clean_failure(result, BAD_INPUT, message, str(src / "pyproject.toml"))
    if position:
        assert position in err
    assert not (src / "dist").exists()
    assert list(tmpdir.iterdir()) == []


def test_no_project_files(tmp_path: Path) -> None:
    src = _project(tmp_path / "empty", None, {"README": "nothing"})
    result = run_isobuild("sdist", str(src))
    _assert_clean_failure(result, BAD_INPUT, "has neither pyproject.toml nor setup.py", str(src))


def test_missing_srcdir(tmp_path: Path) -> None:
    result = run_isobuild("wheel", str(tmp_path / "nowhere"))
    _assert_clean_failure(result, BAD_INPUT, f"source directory {tmp_path / 'nowhere'} does not exist")


def test_outdir_is_a_file(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    outdir = tmp_path / "out"
    outdir.write_text("not a dir")
    result = run_isobuild("wheel", str(src), "-o", str(outdir))
    _assert_clean_failure(result, BAD_INPUT, f"output directory {outdir} exists and is not a directory")
    assert outdir.read_text() == "not a dir"


@pytest.mark.parametrize(
    "args, message",
    [
        (["-C", "=x"], "the key is empty"),
        (["--config-json", "{nope"], "--config-json is not valid JSON"),
        (["--config-json", "[1]"], "--config-json must be a JSON object"),
        (["--path", "/definitely/not/here"], "--path /definitely/not/here: not a directory"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), *args)
    _assert_clean_failure(result, BAD_INPUT, message)
    assert not (src / "dist").exists()


def test_unknown_option_is_usage_error() -> None:
    result = run_isobuild("wheel", "--frobnicate")
    assert result.returncode == BAD_INPUT
    assert b"Traceback" not in result.stderr


def test_target_that_is_not_python(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "--python", "/bin/true")
    _assert_clean_failure(result, INTERPRETER, "/bin/true could not start isobuild's hook process")


@pytest.mark.parametrize(
    "content, mode, message",
    [
        (b"not a program\n", 0o755, "cannot run the target interpreter {}: Exec format error"),
        (b"#!/bin/sh\necho python\n", 0o644, "--python {}: not an interpreter (not executable)"),
        (b"#!/bin/sh\necho '{\"sys_path\": 1}'\n", 0o755, "{} answered the hook process setup with nonsense"),
    ],
)
def test_a_target_that_cannot_run_the_hooks_is_exit_6(tmp_path: Path, content: bytes, mode: int, message: str) -> None:
    python = tmp_path / "python3"
    python.write_bytes(content)
    python.chmod(mode)
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "--python", str(python))
    err = _assert_clean_failure(result, INTERPRETER, message.format(python))
    assert "Traceback" not in err and not (src / "dist").exists()


def test_a_target_that_hangs_is_exit_6_and_killed(tmp_path: Path) -> None:
    """An interpreter that never answers (a wrapper waiting on a lock, a hung NFS mount) gets
    HELLO_TIMEOUT seconds; then its whole process group is killed."""
    pidfile = tmp_path / "pid"
    python = tmp_path / "python3"
    python.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 600\n")
    python.chmod(0o755)
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "--python", str(python), timeout=120)
    _assert_clean_failure(result, INTERPRETER, f"{python} did not answer isobuild's hook process setup in 30 s")
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (src / "dist").exists()


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.7"])
def test_a_target_older_than_38_is_too_old_without_a_traceback(tmp_path: Path, version: str) -> None:
    from conftest import require_interpreter

    python = require_interpreter(version)
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "--python", python)
    err = _assert_clean_failure(result, INTERPRETER, f"{python} is too old: the hooks need Python 3.8 or newer")
    assert "Traceback" not in err and "SyntaxError" not in err
    assert not (src / "dist").exists()


BACKEND_CASES = {
    "backend-raises": (BACKEND_FAILED, ["raised RuntimeError: fixture backend failure: kaboom", "Traceback"]),
    "backend-exits": (BACKEND_FAILED, ["called sys.exit(3) in build_wheel"]),
    "backend-aborts": (BACKEND_FAILED, ["the hook process was killed by SIGABRT during build_wheel"]),
    "backend-bogus-return": (BACKEND_FAILED, ["returned 'ghost-1.0-py3-none-any.whl', but created no such file"]),
    "backend-missing-hooks": (BACKEND_UNAVAILABLE, ["has no build_wheel hook"]),
    "backend-unimportable": (BACKEND_UNAVAILABLE, ["cannot import backend no_such_backend_module"]),
    "backend-bad-object": (BACKEND_UNAVAILABLE, ["cannot import backend plain_backend:missing_object"]),
    "backend-partial-wheel": (BACKEND_FAILED, ["died after writing a partial wheel"]),
}


@pytest.mark.parametrize("fixture", sorted(BACKEND_CASES))
def test_backend_failures(tmp_path: Path, fixture: str) -> None:
    code, fragments = BACKEND_CASES[fixture]
    src = copy_fixture(fixture, tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()

    result = run_isobuild("wheel", str(src), env=clean_env(TMPDIR=str(tmpdir)))

    _assert_clean_failure(result, code, *fragments)
    assert not (src / "dist").exists(), list((src / "dist").iterdir())
    assert list(tmpdir.iterdir()) == []


def test_sdist_name_escaping_staging_dir(tmp_path: Path) -> None:
    src = copy_fixture("backend-bogus-return", tmp_path)
    result = run_isobuild("sdist", str(src))
    _assert_clean_failure(result, BACKEND_FAILED, "returned '../escape-1.0.tar.gz', which is not a file name")
    assert not (src / "dist").exists()


def test_failure_keeps_existing_outdir_contents(tmp_path: Path) -> None:
    src = copy_fixture("backend-partial-wheel", tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "keep.txt").write_text("mine")
    result = run_isobuild("wheel", str(src), "-o", str(outdir))
    assert result.returncode == BACKEND_FAILED
    assert sorted(os.listdir(outdir)) == ["keep.txt"]


def test_quiet_shows_backend_output_only_on_failure(tmp_path: Path) -> None:
    failing = run_isobuild("wheel", str(copy_fixture("backend-raises", tmp_path)), "-q")
    assert b"kaboom" in failing.stderr and b"Traceback" in failing.stderr
    ok = run_isobuild("wheel", str(copy_fixture("probe", tmp_path)), "-q", "-C", "echo=chatty-backend")
    assert ok.returncode == 0
    assert ok.stderr == b""


def test_fixtures_exist() -> None:
    for name in BACKEND_CASES:
        assert (FIXTURES / name / "pyproject.toml").is_file(), name
