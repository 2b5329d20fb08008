"""A packager's first day (issue 24): -q hides progress only, familiar spellings are answered, failures
speak JSON, summaries, hints, --version, the man page and shell completion."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from isobuild.cli.options import REFUSED_COMMANDS, REFUSED_OPTIONS
from isobuild.errors import (
    BackendFailed,
    BackendUnavailable,
    BadInput,
    InterpreterError,
    IsobuildError,
    MissingDependencies,
    RefusedWheel,
)

from conftest import PYZ, REPO, apt_install, build_env, clean_env, copy_fixture, make_wheel, run_isobuild

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _typo_project(tmp_path: Path) -> Path:
    """As idna's pyproject.toml once had it: [build_system] for [build-system], a setup.py beside it."""
    src = tmp_path / "typo"
    src.mkdir()
    (src / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build_system]
        requires = ["flit_core >=3.2,<4"]
        build-backend = "flit_core.buildapi"
        """)
    )
    (src / "setup.py").write_text(
        'from setuptools import setup\nsetup(name="typo", version="1.0", py_modules=["typo"])\n'
    )
    (src / "typo.py").write_text("")
    return src


def test_quiet_still_warns_about_a_misspelt_build_system_table(tmp_path: Path) -> None:
    src = _typo_project(tmp_path)
    result = run_isobuild(
        "wheel", "-q", str(src), "-o", str(tmp_path / "out"), env=clean_env(PYTHONPATH=str(build_env(VERSION)))
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "warning:" in err and "[build_system] is not [build-system]: did you mean 'build-system'?" in err
    assert "hooks run by" not in err  # progress: silenced


def test_quiet_still_says_a_requirement_was_relaxed(tmp_path: Path) -> None:
    src = copy_fixture("setuptools-pyproject", tmp_path)
    result = run_isobuild(
        "requires", "-q", "--relax", "setuptools", str(src), env=clean_env(PYTHONPATH=str(build_env(VERSION)))
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "warning: relaxed: setuptools>=61" in err and "checked build-system.requires" not in err


def test_quiet_shows_the_backends_warnings_once(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", "-q", str(src), "-C", "requires-warn=careful-words", "-C", "warn=careful-words")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err.count("careful-words") == 1, err


# ---------------------------------------------------------------- habits answered


def _installed(stage: Path) -> list[str]:
    return sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())


@pytest.mark.parametrize("option", ["-d", "--root", "--destdir"])
def test_installers_and_pips_destdir_spellings_are_aliases(tmp_path: Path, option: str) -> None:
    wheel = make_wheel(tmp_path / "in", {"demo.py": b"x = 1\n"})
    stage = tmp_path / "stage"
    result = run_isobuild("install", str(wheel), "--prefix", "/opt/demo", option, str(stage), "--no-compile")
    assert result.returncode == 0, result.stderr.decode()
    assert any(path.startswith("opt/demo/") and path.endswith("/demo.py") for path in _installed(stage))


def test_installers_no_compile_bytecode_and_overwrite_existing_are_aliases(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "in", {"demo.py": b"x = 1\n"})
    prefix = tmp_path / "prefix"
    first = run_isobuild("install", str(wheel), "--prefix", str(prefix), "--no-compile-bytecode")
    assert first.returncode == 0, first.stderr.decode()
    assert not [p for p in _installed(prefix) if p.endswith(".pyc")]
    again = run_isobuild("install", str(wheel), "--prefix", str(prefix), "--no-compile-bytecode")
    assert again.returncode == RefusedWheel.exit_code
    replaced = run_isobuild(
        "install", str(wheel), "--prefix", str(prefix), "--no-compile-bytecode", "--overwrite-existing"
    )
    assert replaced.returncode == 0, replaced.stderr.decode()


def test_builds_no_isolation_is_accepted_and_says_it_changes_nothing(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    for option in ("-n", "--no-isolation"):
        result = run_isobuild("wheel", "-q", option, str(src), "-o", str(tmp_path / option))
        assert result.returncode == 0, result.stderr.decode()
        assert b"warning: -n/--no-isolation changes nothing: isobuild never installs anything" in result.stderr
        assert result.stdout.decode().strip().endswith(".whl")


def test_dash_capital_v_and_help_are_version_and_help() -> None:
    assert run_isobuild("-V").stdout == run_isobuild("--version").stdout != b""
    assert run_isobuild("help").stdout == run_isobuild("--help").stdout
    helped = run_isobuild("help", "install")
    assert helped.returncode == 0 and helped.stdout == run_isobuild("install", "--help").stdout


REFUSED = [(command, option) for names in REFUSED_OPTIONS for option in names for command in ("wheel", "install")]


@pytest.mark.parametrize("command, option", REFUSED + [(None, "-w"), (None, "-s")])
def test_other_frontends_options_are_refused_with_isobuilds_way(
    tmp_path: Path, command: str | None, option: str
) -> None:
    args = [command] if command else []
    result = run_isobuild(*args, option, "x", str(tmp_path / "missing"))
    err = result.stderr.decode()
    assert result.returncode == BadInput.exit_code, err
    hint = next(text for names, text in REFUSED_OPTIONS.items() if option in names)
    assert err.splitlines() == [f"ERROR {option} is not an isobuild option", f"hint: {hint}"]


@pytest.mark.parametrize("command", sorted(REFUSED_COMMANDS))
def test_gpep517s_commands_are_refused_with_isobuilds(tmp_path: Path, command: str) -> None:
    result = run_isobuild(command, "--wheel-dir", str(tmp_path), "x.whl")
    err = result.stderr.decode()
    assert result.returncode == BadInput.exit_code, err
    assert err.splitlines() == [
        f"ERROR {command} is not an isobuild command",
        f"hint: isobuild's is `{REFUSED_COMMANDS[command]}`",
    ]


# ---------------------------------------------------------------- --json, documented

JSON_DOC = REPO / "docs" / "json.md"


def _documented_keys() -> dict[str, set[str]]:
    """docs/json.md's tables: the keys (first column, in backquotes) under each `## Heading`."""
    tables: dict[str, set[str]] = {}
    heading = ""
    for line in JSON_DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        match = re.match(r"\| `([a-z_0-9]+)` \|", line)
        if match:
            tables.setdefault(heading, set()).add(match.group(1))
    return tables


def _json_failure(result: subprocess.CompletedProcess[bytes], error: type[IsobuildError]) -> dict[str, object]:
    assert result.returncode == error.exit_code, result.stderr.decode()
    info = json.loads(result.stdout)  # one object, nothing else
    assert info["schema"] == 1 and info["exit_code"] == error.exit_code and info["error"] == error.__name__
    assert f"ERROR {info['message']}" in result.stderr.decode()
    return info


def _edited(tmp_path: Path, fixture: str, pattern: str, replacement: str) -> Path:
    """A copy of ``fixture`` whose pyproject.toml has ``pattern`` (a regex) replaced."""
    src = copy_fixture(fixture, tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(re.sub(pattern, replacement, pyproject.read_text()))
    return src


def test_a_bad_input_failure_is_one_documented_json_object(tmp_path: Path) -> None:
    info = _json_failure(run_isobuild("wheel", "--json", str(tmp_path / "missing")), BadInput)
    assert set(info) == _documented_keys()["Failure"]
    refused = _json_failure(run_isobuild("wheel", "--json", "-w", str(tmp_path)), BadInput)
    assert set(refused) == _documented_keys()["Failure"] and refused["hint"]


def test_a_missing_requirement_is_one_documented_json_object(tmp_path: Path) -> None:
    src = _edited(tmp_path, "probe", r"requires = \[\]", "requires = ['isobuild-no-such-dist>=1']")
    info = _json_failure(run_isobuild("wheel", "--json", "-q", str(src)), MissingDependencies)
    assert set(info) == _documented_keys()["Failure"] and "isobuild-no-such-dist" in str(info["details"])
    keys = _documented_keys()
    listed = _json_failure(run_isobuild("requires", "--json", "-q", str(src)), MissingDependencies)
    assert set(listed) == keys["Build"] | keys["Failure"]
    assert all(set(status) == keys["Requirement"] for status in listed["requirements"])  # type: ignore[union-attr]


def test_a_backend_failure_is_one_documented_json_object(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    info = _json_failure(run_isobuild("wheel", "--json", "-q", str(src), "-C", "fail=broken-words"), BackendFailed)
    assert set(info) == _documented_keys()["Failure"] and "broken-words" in str(info["message"])


def test_an_install_refusal_is_one_documented_json_object_and_success_is_documented_too(tmp_path: Path) -> None:
    keys = _documented_keys()
    wheel = make_wheel(tmp_path / "in", {"demo.py": b"x = 1\n"})
    prefix = tmp_path / "prefix"
    first = run_isobuild("install", "--json", str(wheel), "--prefix", str(prefix))
    assert first.returncode == 0, first.stderr.decode()
    installed = json.loads(first.stdout)
    assert set(installed) == keys["Install"] and set(installed["installed"][0]) == keys["Installed"]
    info = _json_failure(run_isobuild("install", "--json", str(wheel), "--prefix", str(prefix)), RefusedWheel)
    assert set(info) == keys["Failure"]
    checked = json.loads(run_isobuild("check", "--json", str(wheel)).stdout)
    assert set(checked) == keys["Check"]


def test_builds_and_env_print_the_documented_keys(tmp_path: Path) -> None:
    keys = _documented_keys()
    src = copy_fixture("probe", tmp_path)
    built = run_isobuild("wheel", "--json", "-q", str(src))
    assert built.returncode == 0 and set(json.loads(built.stdout)) == keys["Build"] | keys["What the build used"]
    env = run_isobuild("env", "--json", "-q", str(src))
    assert env.returncode == 0 and set(json.loads(env.stdout)) == keys["Env"]


# ---------------------------------------------------------------- summaries


def test_install_says_what_it_wrote_in_one_line_and_v_in_readable_lines(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "in", {"demo.py": b"x = 1\n", "demo-1.0.data/scripts/demo-tool": b"#!python\nprint(1)\n"}
    )
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix), "-v")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    purelib = Path(result.stdout.decode().strip()).parent
    assert f"isobuild: installed demo 1.0: 6 files, 1 script, 1 bytecode file in {purelib}\n" in err
    assert f"isobuild:   scripts: {prefix / 'bin'}\n" in err and "{" not in err
    quiet = run_isobuild("install", str(wheel), "--prefix", str(tmp_path / "other"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_check_tallies_and_shows_marker_excluded_requirements_only_with_v(tmp_path: Path) -> None:
    metadata = (
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: setuptools\n"
        "Requires-Dist: isobuild-never; python_version < '3'\n"
    )
    wheel = make_wheel(tmp_path / "in", {"demo.py": b"", "demo-1.0.dist-info/METADATA": metadata.encode()})
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    plain = run_isobuild("check", str(wheel), env=env)
    assert plain.returncode == 0, plain.stderr.decode()
    assert [line.split("\t")[1] for line in plain.stdout.decode().splitlines()] == ["setuptools"]
    assert b"isobuild: check: 1 satisfied, 0 missing, 1 not applicable (marker or --remove)\n" in plain.stderr
    verbose = run_isobuild("check", "-v", str(wheel), env=env)
    assert len(verbose.stdout.decode().splitlines()) == 2 and b"not needed (marker)" in verbose.stdout


# ---------------------------------------------------------------- hints


def _backend_named(tmp_path: Path, backend: str, backend_path: bool) -> Path:
    """probe (whose backend is in backend-path) or setuptools-pyproject (on PYTHONPATH), naming ``backend``."""
    fixture = "probe" if backend_path else "setuptools-pyproject"
    return _edited(tmp_path, fixture, r'build-backend = "[^"]*"', f'build-backend = "{backend}"')


@pytest.mark.parametrize(
    "backend, backend_path, says",
    [
        (
            "setuptool.build_meta",
            False,
            "no distribution in the hooks' sys.path provides 'setuptool' (did you mean 'setuptools'?)",
        ),
        ("setuptools.build_met", False, "'setuptools' is there (setuptools "),
        (
            "probe_backnd",
            True,
            "no distribution in the hooks' backend-path provides 'probe_backnd' (did you mean 'probe_backend'?)",
        ),
    ],
)
def test_a_backend_that_is_not_there_gets_a_hint_not_a_traceback(
    tmp_path: Path, backend: str, backend_path: bool, says: str
) -> None:
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    result = run_isobuild("wheel", "-q", str(_backend_named(tmp_path, backend, backend_path)), env=env)
    err = result.stderr.decode()
    assert result.returncode == BackendUnavailable.exit_code, err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"ERROR cannot import backend {backend}: no module named"), err
    assert lines[1].startswith("hint: ") and says in lines[1] and str(build_env(VERSION)) in lines[1], err
    if backend == "setuptools.build_met":
        assert "but not 'setuptools.build_met' (did you mean 'setuptools.build_meta'?)" in lines[1]


@pytest.mark.parametrize(
    "python, why", [("/usr/bin", "a directory"), ("python9", "not found on PATH"), ("/usr/bin/python9", "no such file")]
)
def test_an_interpreter_that_is_not_one_is_one_exit_code_and_one_message(tmp_path: Path, python: str, why: str) -> None:
    for command in ("wheel", "env", "install"):
        result = run_isobuild(command, "--python", python, str(copy_fixture("probe", tmp_path / command)))
        assert result.returncode == InterpreterError.exit_code, result.stderr.decode()
        assert result.stderr.decode().splitlines() == [
            f"ERROR --python {python}: not an interpreter ({why})",
            "hint: name a Python 3.8 or newer, by path or on PATH: --python /usr/bin/python3",
        ]


# ---------------------------------------------------------------- --version, man page, completion

PINS = REPO / "tools" / "pyz-requirements.txt"
LIBRARIES = ("pyproject-hooks", "packaging", "installer")


def _pinned() -> dict[str, str]:
    pairs = [line.split("==") for line in PINS.read_text().splitlines() if "==" in line and not line.startswith("#")]
    return {name.strip(): version.strip() for name, version in pairs}


def _versions(output: bytes) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in output.decode().splitlines()}


def test_version_names_isobuild_python_and_the_libraries_it_runs_on() -> None:
    from importlib.metadata import version

    from isobuild import __version__

    result = run_isobuild("--version")
    assert result.returncode == 0, result.stderr.decode()
    found = _versions(result.stdout)
    assert found["isobuild"] == __version__ and found["Python"] == sys.version.split()[0]
    expected = _pinned() if PYZ else {name: version(name) for name in LIBRARIES}
    assert {name: found[name] for name in LIBRARIES} == {name: expected[name] for name in LIBRARIES}
    assert run_isobuild("-V").stdout == result.stdout


def test_version_from_the_pyz_names_its_vendored_libraries(pyz: Path) -> None:
    result = subprocess.run([sys.executable, str(pyz), "--version"], capture_output=True, env=clean_env(), timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    found, pinned = _versions(result.stdout), _pinned()
    assert {name: found[name] for name in LIBRARIES} == {name: pinned[name] for name in LIBRARIES}
    assert all(f"({pyz}" in line for line in result.stdout.decode().splitlines()[2:]), result.stdout.decode()


DATA = REPO / "data" / "share"
MAN_PAGE = DATA / "man" / "man1" / "isobuild.1"
BASH = DATA / "bash-completion" / "completions" / "isobuild"
ZSH = DATA / "zsh" / "site-functions" / "_isobuild"


def test_the_committed_man_page_and_completion_are_what_the_tool_writes_now(tmp_path: Path) -> None:
    tool = [sys.executable, str(REPO / "tools" / "make_manpage.py")]
    fresh = subprocess.run([*tool, "-o", str(tmp_path)], capture_output=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr.decode()
    for committed in (MAN_PAGE, BASH, ZSH):
        assert (tmp_path / committed.relative_to(REPO / "data")).read_bytes() == committed.read_bytes(), (
            f"{committed} is stale: run python3 tools/make_manpage.py"
        )
    assert subprocess.run([*tool, "--check"], capture_output=True, timeout=120).returncode == 0


def _renderer() -> list[str]:
    """`man -l` (man-db) if there is one, else groff; apt-get installs them only where ISOBUILD_TEST_APT=1 asks."""
    if os.environ.get("ISOBUILD_TEST_APT") == "1":
        apt_install(("man-db", "groff-base"), "render the man page")
    if shutil.which("man"):
        return ["man", "--warnings", "-l"]
    if shutil.which("groff"):
        return ["groff", "-man", "-Tutf8", "-ww"]
    pytest.skip("neither man nor groff here (ISOBUILD_TEST_APT=1 lets the test apt-get install them)")


def test_the_man_page_renders(tmp_path: Path) -> None:
    command = _renderer()
    result = subprocess.run(
        [*command, str(MAN_PAGE)],
        capture_output=True,
        timeout=120,
        env=clean_env(MANPAGER="cat", PAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8"),
    )
    text = re.sub(r".\x08", "", result.stdout.decode())  # overstrike bold, where the renderer uses it
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()
    assert "isobuild - PEP 517 build frontend for packaging pipelines" in text
    for section in ("SYNOPSIS", "COMMANDS", "OPTIONS", "EXIT STATUS", "--destdir", "--no-isolation"):
        assert section in text, section
    assert "--wheel-dir" not in text  # a refused spelling is not an option


def _complete(*words: str) -> list[str]:
    """What bash offers for ``isobuild WORDS`` (the last word is the one being completed)."""
    script = (
        f'source "$1"; shift; COMP_WORDS=(isobuild "$@"); COMP_CWORD={len(words)}; _isobuild; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", str(BASH), *words], capture_output=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()
    return sorted(filter(None, result.stdout.decode().splitlines()))


def test_bash_completion_offers_the_commands_and_their_options() -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash here")
    assert _complete("") == sorted(
        [
            "wheel",
            "sdist",
            "editable",
            "metadata",
            "requires",
            "install",
            "check",
            "env",
            "-h",
            "--help",
            "-V",
            "--version",
        ]
    )
    assert _complete("in") == ["install"]
    assert _complete("install", "--over") == ["--overwrite", "--overwrite-existing"]
    assert _complete("requires", "--for", "") == ["editable", "sdist", "wheel"]
    assert "--extra" in _complete("check", "--") and "--outdir" not in _complete("check", "--")
    assert _complete("wheel", "--wh") == []  # refused spellings are not offered


def test_zsh_completion_is_valid_zsh() -> None:
    if shutil.which("zsh") is None:
        apt_install(("zsh",), "parse the zsh completion file")  # skips unless ISOBUILD_TEST_APT=1 asks
    result = subprocess.run(["zsh", "-n", str(ZSH)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
