"""isobuild install, right for every target: venvs, headers, shebangs, launchers, clashes, Wheel-Version,
tags, hard-linked bytecode, INSTALLER; and file for file as pypa/installer and pip install a sound wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from isobuild.errors import RefusedWheel

from conftest import DEFAULT_TARGET, base_python, clean_env, make_wheel, require_interpreter, run_isobuild
from helpers import install_with_installer

REFUSED = RefusedWheel.exit_code
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SITE = f"lib/python{VERSION}/site-packages"
PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")


def _ok(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 0, err
    return err


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_a_venv_target_gets_the_venvs_own_scheme(tmp_path: Path) -> None:
    """Not the base interpreter's, which is what the venv's python reports under -S."""
    venv = tmp_path / "venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    pass\n",
            "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo-cli = demo:main\n",
        },
    )
    dest = tmp_path / "dest"
    _ok(run_isobuild("install", str(wheel), "--python", str(venv / "bin" / "python"), "--destdir", str(dest)))
    staged = Path(str(dest) + str(venv))
    assert (staged / SITE / "demo" / "__init__.py").is_file(), _files(dest)
    script = staged / "bin" / "demo-cli"
    assert script.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python'}"


def test_headers_go_under_the_projects_own_include_dir(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", {"demo/__init__.py": b"", "demo-1.0.data/headers/hdr.h": b"/* h */\n"})
    prefix = tmp_path / "prefix"
    _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix)))
    assert (prefix / "include" / f"python{VERSION}" / "demo" / "hdr.h").read_text() == "/* h */\n"


@pytest.mark.parametrize(
    "first, flags, expected",
    [
        (b"#!python -E", "", "-E"),
        (b"#!python -E", "-s", "-sE"),
        (b"#!python3.11 -I", "", "-I"),
        (b"#!pythonw", "-s", "-s"),
        (b"#!python", "", ""),
    ],
)
def test_a_python_script_keeps_the_rest_of_its_first_line(
    tmp_path: Path, first: bytes, flags: str, expected: str
) -> None:
    wheel = make_wheel(tmp_path / "w", {"demo/__init__.py": b"", "demo-1.0.data/scripts/tool": first + b"\nprint(1)\n"})
    prefix = tmp_path / "prefix"
    _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix), f"--shebang-flags={flags}"))
    line = (prefix / "bin" / "tool").read_text().splitlines()[0]
    assert line == f"#!{DEFAULT_TARGET}" + (f" {expected}" if expected else "")


def test_setuptools_launchers_and_wrappers_are_left_to_the_entry_points(tmp_path: Path) -> None:
    """pip's rule: t1.exe and t1-script.py beside a console script t1 are not installed; setuptools
    0.9.8's easy_install-2.6 (its launcher as a .data script, and a console script) is installed once."""
    entry_points = b"[console_scripts]\nt1 = demo:main\neasy_install-2.6 = demo:main\n"
    launcher = (
        b"#!python\n# EASY-INSTALL-ENTRY-SCRIPT: 'demo==1.0','console_scripts','easy_install-2.6'\n"
        b"__requires__ = 'demo==1.0'\nimport sys\nfrom pkg_resources import load_entry_point\n\n"
        b"if __name__ == '__main__':\n    sys.exit(\n"
        b"        load_entry_point('demo==1.0', 'console_scripts', 'easy_install-2.6')()\n    )\n"
    )
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    print('from the entry point')\n",
            "demo-1.0.dist-info/entry_points.txt": entry_points,
            "demo-1.0.data/scripts/t1.exe": b"MZ windows launcher",
            "demo-1.0.data/scripts/t1-script.py": b"#!python\n",
            "demo-1.0.data/scripts/easy_install-2.6": launcher,
            "demo-1.0.data/scripts/other-tool": b"#!python\nprint('kept')\n",
        },
    )
    prefix = tmp_path / "prefix"
    for overwrite in ([], ["--overwrite"]):
        _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix), *overwrite))
        assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["easy_install-2.6", "other-tool", "t1"]
        assert "demo" in (prefix / "bin" / "easy_install-2.6").read_text()  # generated: imports the entry point
        record = (prefix / SITE / "demo-1.0.dist-info" / "RECORD").read_text().splitlines()
        paths = [line.rsplit(",", 2)[0] for line in record]
        assert len(paths) == len(set(paths)), record
        assert not [p for p in paths if p.endswith((".exe", "-script.py"))]


def test_two_members_that_would_write_one_path_are_refused_naming_both(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", {"demo/x.py": b"A = 1\n", "demo-1.0.data/purelib/demo/x.py": b"B = 2\n"})
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    err = result.stderr.decode()
    assert result.returncode == REFUSED, err
    assert "'demo/x.py'" in err and "'demo-1.0.data/purelib/demo/x.py'" in err
    assert not prefix.exists()


@pytest.mark.parametrize(
    "wheel_version, code, note",
    [
        ("0.1", 0, None),
        ("1.0", 0, None),
        ("1.9", 0, "Wheel-Version 1.9 is newer than 1.0"),
        ("2.0", REFUSED, "Wheel-Version 2.0"),
    ],
)
def test_wheel_version_as_the_spec_says(tmp_path: Path, wheel_version: str, code: int, note: str | None) -> None:
    wheel_file = f"Wheel-Version: {wheel_version}\nGenerator: old\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    wheel = make_wheel(tmp_path / "w", {"demo/__init__.py": b"", "demo-1.0.dist-info/WHEEL": wheel_file.encode()})
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert note is None or note in err
    assert (prefix / SITE / "demo" / "__init__.py").exists() == (code == 0)


def _tagged(tmp_path: Path, tag: str) -> Path:
    wheel_file = f"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    return make_wheel(
        tmp_path / tag,
        {"demo/__init__.py": b"", "demo-1.0.dist-info/WHEEL": wheel_file},
        wheel_name=f"demo-1.0-{tag}.whl",
    )


def test_a_wheel_for_another_platform_is_refused_unless_no_tag_check(tmp_path: Path) -> None:
    wheel = _tagged(tmp_path, "cp311-fakeabi-fakeplat")
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    err = result.stderr.decode()
    assert result.returncode == REFUSED, err
    assert "its tags (cp311-fakeabi-fakeplat) are not supported by" in err and DEFAULT_TARGET in err
    assert not prefix.exists()
    _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix), "--no-tag-check"))
    assert (prefix / SITE / "demo" / "__init__.py").exists()


def test_tags_are_the_target_interpreters(tmp_path: Path) -> None:
    """A cp38 wheel installs for a 3.8 target and is refused for this 3.x one."""
    python38 = require_interpreter("3.8")
    wheel = _tagged(tmp_path, f"cp38-cp38-{PLATFORM}")
    _ok(run_isobuild("install", str(wheel), "--python", python38, "--prefix", str(tmp_path / "p38")))
    assert (tmp_path / "p38" / "lib" / "python3.8" / "site-packages" / "demo" / "__init__.py").exists()
    if VERSION != "3.8":
        assert run_isobuild("install", str(wheel), "--prefix", str(tmp_path / "here")).returncode == REFUSED


def test_hardlink_dupes_links_identical_bytecode_of_several_levels(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w", {"demo/__init__.py": b"VALUE = 1\n", "demo/doc.py": b'"""A docstring, gone at level 2."""\n'}
    )
    prefix = tmp_path / "prefix"
    _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix), "--optimize", "0,1,2", "--hardlink-dupes"))
    cache = prefix / SITE / "demo" / "__pycache__"
    inodes = {p.name: p.stat().st_ino for p in cache.iterdir()}
    tag = sys.implementation.cache_tag
    assert inodes[f"__init__.{tag}.pyc"] == inodes[f"__init__.{tag}.opt-1.pyc"] == inodes[f"__init__.{tag}.opt-2.pyc"]
    assert inodes[f"doc.{tag}.pyc"] == inodes[f"doc.{tag}.opt-1.pyc"] != inodes[f"doc.{tag}.opt-2.pyc"]
    record = (prefix / SITE / "demo-1.0.dist-info" / "RECORD").read_text()
    assert record.count(".pyc,sha256=") == 6


def test_no_installer_file(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", {"demo/__init__.py": b""})
    prefix = tmp_path / "prefix"
    _ok(run_isobuild("install", str(wheel), "--prefix", str(prefix), "--no-installer-file"))
    info = prefix / SITE / "demo-1.0.dist-info"
    assert not (info / "INSTALLER").exists() and "INSTALLER" not in (info / "RECORD").read_text()


SOUND = {
    "sound/__init__.py": b"def main():\n    print('sound')\n",
    "sound/data.txt": b"package data\n",
    "sound-1.0.data/scripts/plain-tool": b"#!python\nprint('tool')\n",
    "sound-1.0.data/scripts/shell-tool": b"#!/bin/sh\necho tool\n",
    "sound-1.0.data/data/share/sound/readme": b"data file\n",
    "sound-1.0.dist-info/entry_points.txt": (
        b"[console_scripts]\nsound-cli = sound:main\n\n[gui_scripts]\nsound-gui = sound:main\n"
    ),
}
ASIDE = ("INSTALLER", "REQUESTED", "direct_url.json")  # what each installer writes of its own


def _record(root: Path) -> set[str]:
    rows = (root / SITE / "sound-1.0.dist-info" / "RECORD").read_text().splitlines()
    return {row for row in rows if not row.split(",")[0].endswith(ASIDE) and ".pyc" not in row}


def test_a_sound_wheel_installs_file_for_file_as_installer_and_pip_install_it(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "w", SOUND, name="sound")
    ours, theirs, pips = tmp_path / "isobuild", tmp_path / "installer", tmp_path / "pip"
    argv = ["install", str(wheel), "--prefix", "/usr", "--destdir", str(ours), "--no-compile"]
    _ok(run_isobuild(*argv, "--python", sys.executable))  # the interpreter installer and pip write into shebangs
    install_with_installer(wheel, theirs, "/usr")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--prefix",
            "/usr",
            "--root",
            str(pips),
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
    )
    ours_root, theirs_root, pips_root = ours / "usr", theirs / "usr", pips / "usr"
    aside = [f for f in _files(ours_root) if f.endswith(ASIDE)]
    kept = [f for f in _files(ours_root) if f not in aside]
    assert kept == [f for f in _files(theirs_root) if not f.endswith(ASIDE)]
    assert kept == [f for f in _files(pips_root) if not f.endswith(ASIDE)]
    for name in kept:  # installer's content to the byte (RECORD's rows as a set)
        if not name.endswith("RECORD"):
            assert (ours_root / name).read_bytes() == (theirs_root / name).read_bytes(), name
    assert _record(ours_root) == _record(theirs_root)
    for name in ("sound/__init__.py", "sound/data.txt", "bin/plain-tool", "bin/shell-tool", "share/sound/readme"):
        path = name if name.startswith(("bin", "share")) else f"{SITE}/{name}"
        assert (ours_root / path).read_bytes() == (pips_root / path).read_bytes(), name
    for script in ("plain-tool", "sound-cli", "sound-gui", "shell-tool"):
        assert os.access(ours_root / "bin" / script, os.X_OK)
