"""A packager's first day (issue 24): -q hides progress only, familiar spellings are answered, failures
speak JSON, summaries, hints, --version, the man page and shell completion."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from conftest import build_env, clean_env, copy_fixture, run_isobuild

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _typo_project(tmp_path: Path) -> Path:
    """As idna's pyproject.toml once had it: [build_system] for [build-system], a setup.py beside it."""
    src = tmp_path / "typo"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent("""\
        [build_system]
        requires = ["flit_core >=3.2,<4"]
        build-backend = "flit_core.buildapi"
        """))
    (src / "setup.py").write_text('from setuptools import setup\nsetup(name="typo", version="1.0", py_modules=["typo"])\n')
    (src / "typo.py").write_text("")
    return src


def test_quiet_still_warns_about_a_misspelt_build_system_table(tmp_path: Path) -> None:
    src = _typo_project(tmp_path)
    result = run_isobuild("wheel", "-q", str(src), "-o", str(tmp_path / "out"),
                          env=clean_env(PYTHONPATH=str(build_env(VERSION))))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "warning:" in err and "[build_system] is not [build-system]: did you mean 'build-system'?" in err
    assert "hooks run by" not in err  # progress: silenced


def test_quiet_still_says_a_requirement_was_relaxed(tmp_path: Path) -> None:
    src = copy_fixture("setuptools-pyproject", tmp_path)
    result = run_isobuild("requires", "-q", "--relax", "setuptools", str(src),
                          env=clean_env(PYTHONPATH=str(build_env(VERSION))))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "warning: relaxed: setuptools>=61" in err and "checked build-system.requires" not in err


def test_quiet_shows_the_backends_warnings_once(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", "-q", str(src), "-C", "requires-warn=careful-words", "-C", "warn=careful-words")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err.count("careful-words") == 1, err
