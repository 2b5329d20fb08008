"""The command line itself: console script, output channels, colour, isobuild on its oldest Python."""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from isobuild.cli import main
from isobuild.cli.options import parser
from isobuild.console import Console
from isobuild.errors import BadInput, OutputFailed

from conftest import (
    CACHE,
    REPO,
    clean_env,
    copy_fixture,
    isobuild_command,
    require_interpreter,
    run_isobuild,
)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty, no_color, coloured", [(True, None, True), (True, "1", False), (False, None, False)])
def test_colour_only_on_a_tty_without_no_color(
    monkeypatch: pytest.MonkeyPatch, tty: bool, no_color: str | None, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    stream = _Stream(tty)
    console = Console(quiet=False, verbose=False, stream=stream)
    console.progress("step")
    console.error(BadInput("broken", hint="fix it"))
    assert ("\033[" in stream.getvalue()) is coloured
    assert "ERROR" in stream.getvalue() and "fix it" in stream.getvalue()


def test_main_returns_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wheel", str(tmp_path / "missing")]) == BadInput.exit_code
    assert "ERROR source directory" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert main(["wheel", "--no-such-option"]) == BadInput.exit_code


def test_console_script_and_no_temp_left_on_success(tmp_path: Path) -> None:
    script = shutil.which("isobuild", path=os.path.dirname(sys.executable))
    assert script is not None, "the isobuild console script is installed next to the interpreter"
    src = copy_fixture("probe", tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    result = subprocess.run([script, "wheel", str(src)], env=clean_env(TMPDIR=str(tmpdir)), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == str(src / "dist" / "probe-1.0-py3-none-any.whl")
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in (src / "dist").iterdir()) == ["probe-1.0-py3-none-any.whl"]


def test_progress_lines_have_times(tmp_path: Path) -> None:
    result = run_isobuild("wheel", str(copy_fixture("probe", tmp_path)))
    lines = [line for line in result.stderr.decode().splitlines() if line.startswith("isobuild: ")]
    assert any(
        line.startswith("isobuild: build_wheel: probe-1.0-py3-none-any.whl (") and line.endswith(" s)")
        for line in lines
    ), lines


@pytest.mark.slow
def test_isobuild_runs_on_python_3_9(tmp_path: Path) -> None:
    """isobuild itself supports 3.9: its dependencies resolve there and its code parses and runs there."""
    python = require_interpreter("3.9")
    deps = CACHE / "isobuild-deps-3.9"
    if not (deps / ".complete").exists():
        shutil.rmtree(deps, ignore_errors=True)
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, "--target", str(deps), str(REPO)], check=True, env=clean_env(PIP_ROOT_USER_ACTION="ignore")
        )
        (deps / ".complete").touch()
    src = copy_fixture("probe", tmp_path)
    result = subprocess.run(
        [*isobuild_command(python), "wheel", str(src), "--json"],
        env=clean_env(PYTHONPATH=str(deps)),
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b'"python_version": "3.9.' in result.stdout


DOCUMENTED_COMMANDS = ["wheel", "sdist", "editable", "metadata", "requires", "install", "check", "env"]


def _subcommands(top: argparse.ArgumentParser) -> list[str]:
    """The names the parser's subparsers answer to (argparse offers no public way to list them)."""
    (subparsers,) = [action for action in top._actions if isinstance(action, argparse._SubParsersAction)]
    return list(subparsers.choices)


def test_help_lists_every_command_and_each_command_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command the parser has is a line of --help's command list (not a word of some description),
    and the parser has every documented command: one gone or one undocumented fails."""
    commands = _subcommands(parser())
    assert sorted(commands) == sorted(DOCUMENTED_COMMANDS)
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out.split("\n  COMMAND\n", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^    (\S+)  ", listing, re.MULTILINE) == commands, listing
    assert main(["install", "--help"]) == 0
    assert "--prefix" in capsys.readouterr().out
    assert main(["requires", "--help"]) == 0
    assert "--for" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["full disk", "closed pipe"])
def test_a_result_that_cannot_be_written_is_an_error(tmp_path: Path, where: str) -> None:
    """/dev/full fails the write itself; a closed pipe fails only the flush at exit."""
    src = copy_fixture("probe", tmp_path)
    if where == "full disk":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full here")
        stdout = os.open("/dev/full", os.O_WRONLY)
    else:
        read_end, stdout = os.pipe()
        os.close(read_end)
    try:
        result = subprocess.run(
            [*isobuild_command(), "wheel", str(src), "-q"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=clean_env(),
            timeout=300,
        )
    finally:
        os.close(stdout)
    err = result.stderr.decode()
    assert result.returncode == OutputFailed.exit_code, err
    assert "ERROR cannot write the result to stdout" in err and "Traceback" not in err


def test_the_readmes_exit_codes_are_the_error_classes() -> None:
    """One source of truth: the classes in errors.py; the README's table and --help follow them."""
    from isobuild.errors import exit_codes

    from conftest import REPO

    text = (REPO / "README.md").read_text()
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip().replace("`", "") for cell in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            rows[int(cells[0])] = cells[1]
    assert rows == exit_codes()
