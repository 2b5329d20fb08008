"""What a backend hands back is checked in one place (runner.py): a bad value is the backend's failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, BackendUnavailable

from conftest import copy_fixture, run_isobuild

BACKEND_FAILED, BACKEND_UNAVAILABLE = BackendFailed.exit_code, BackendUnavailable.exit_code


def _clean(result, code: int) -> str:  # type: ignore[no-untyped-def]
    err = result.stderr.decode(errors="replace")
    assert result.returncode == code, err
    assert "internal error" not in err and "Traceback" not in err and "report it" not in err, err
    assert result.stdout == b""
    return err


@pytest.mark.parametrize(
    "command, hook, value",
    [
        ("wheel", "build_wheel", None),
        ("wheel", "build_wheel", 42),
        ("wheel", "build_wheel", ["probe-1.0-py3-none-any.whl"]),
        ("sdist", "build_sdist", {"name": "x.tar.gz"}),
        ("metadata", "prepare_metadata_for_build_wheel", None),
    ],
)
def test_a_build_hook_returning_no_file_name_is_the_backends_failure(
    tmp_path: Path, command: str, hook: str, value: object
) -> None:
    src = copy_fixture("backend-bad-values", tmp_path)
    result = run_isobuild(command, str(src), "-C", f"return={json.dumps(value)}")
    err = _clean(result, BACKEND_FAILED)
    assert f"ERROR {hook} of backend badvalues_backend returned {value!r}, not a " in err
    assert not (src / "dist").exists()


@pytest.mark.parametrize("value", [[1], None, "setuptools", [["nested"]]])
def test_get_requires_returning_no_list_of_strings_is_the_backends_failure(tmp_path: Path, value: object) -> None:
    src = copy_fixture("backend-bad-values", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "hook=get_requires", "-C", f"return={json.dumps(value)}")
    err = _clean(result, BACKEND_FAILED)
    assert (
        f"ERROR get_requires_for_build_wheel of backend badvalues_backend returned {value!r}, "
        "not a list of requirement strings"
    ) in err


@pytest.mark.parametrize(
    "fixture, code, message",
    [
        (
            "backend-bogus-return",
            BACKEND_FAILED,
            "build_wheel of backend bogus_backend returned 'ghost-1.0-py3-none-any.whl', but created no such file",
        ),
        ("backend-missing-hooks", BACKEND_UNAVAILABLE, "backend hookless_backend has no build_wheel hook"),
    ],
)
def test_metadata_without_prepare_reports_what_wheel_reports(
    tmp_path: Path, fixture: str, code: int, message: str
) -> None:
    """The fallback is a wheel build: its failure has the wheel's culprit and exit code, not a staging-dir path."""
    src = copy_fixture(fixture, tmp_path)
    for command in ("wheel", "metadata"):
        err = _clean(run_isobuild(command, str(src)), code)
        assert f"ERROR {message}" in err, err
        assert ".isobuild-" not in err and "FileNotFoundError" not in err
    assert not (src / "dist").exists()


def test_without_config_settings_the_hooks_get_an_empty_dict(tmp_path: Path) -> None:
    """As build passes them; a backend that calls config_settings.get() would break on None."""
    src = copy_fixture("backend-dict-settings", tmp_path)
    for command in (["wheel"], ["requires"], ["wheel", "-x"]):
        result = run_isobuild(*command, str(src))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    with_setting = run_isobuild("wheel", str(src), "-C", "marker=set")
    assert with_setting.returncode == 0, with_setting.stderr.decode(errors="replace")


@pytest.mark.parametrize(
    "command, artifact", [("wheel", "fullpath-1.0-py3-none-any.whl"), ("sdist", "fullpath-1.0.tar.gz")]
)
def test_a_path_to_the_artifact_in_the_output_dir_is_taken_with_a_warning(
    tmp_path: Path, command: str, artifact: str
) -> None:
    """pypa/build's test-no-prepare returns the wheel's full path; build and pip join it with the output dir."""
    src = copy_fixture("backend-full-path", tmp_path)
    result = run_isobuild(command, str(src), "-q")
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    assert result.stdout.decode().strip() == str(src / "dist" / artifact)
    assert sorted(p.name for p in (src / "dist").iterdir()) == [artifact]
    assert f"warning: build_{command} of backend fullpath_backend returned the path " in err, err
    assert f"taken as {artifact!r}" in err


def test_a_path_to_an_artifact_outside_the_output_dir_stays_the_backends_failure(tmp_path: Path) -> None:
    src = copy_fixture("backend-full-path", tmp_path)
    err = _clean(run_isobuild("wheel", str(src), "-C", "outside=1"), BACKEND_FAILED)
    assert "ERROR build_wheel of backend fullpath_backend returned '/" in err and "which is not a file name" in err
    assert not (src / "dist").exists()
