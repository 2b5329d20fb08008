"""Where an install may write: never out of DESTDIR (or the prefix, or the scheme's dirs) whatever the
links; a .data script that is not setuptools' launcher never silently dropped; modes as installer
gives them under any umask; concurrent installs into one new deep prefix never refuse one another."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from installer.utils import Scheme

from isobuild.errors import RefusedWheel
from isobuild.install.destination import Destination
from isobuild.install.journal import Journal
from isobuild.install.target import Target

from conftest import base_python, clean_env, isobuild_command, make_wheel, run_isobuild, snapshot
from helpers import all_succeed_at_once, install_with_installer

REFUSED = RefusedWheel.exit_code
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SITE = f"lib/python{VERSION}/site-packages"
ENTRY_POINTS = b"[console_scripts]\ndemo-cli = demo:main\n"
FULL = {  # a member for every scheme: purelib, scripts, headers, data, and a console script
    "demo/__init__.py": b"def main():\n    pass\n",
    "demo-1.0.data/scripts/tool": b"#!/bin/sh\necho tool\n",
    "demo-1.0.data/headers/demo.h": b"/* h */\n",
    "demo-1.0.data/data/share/demo/readme": b"data\n",
    "demo-1.0.dist-info/entry_points.txt": ENTRY_POINTS,
}


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / f"python{VERSION}" / "site-packages").mkdir(parents=True)
    (outside / "the-users-file").write_text("keep\n")
    return outside


def _link(at: Path, to: str | Path) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(to)


# ---------------------------------------------------------------- never leave DESTDIR, the prefix, the scheme


LINKS_OUT = {  # where, under DESTDIR/usr, a link leads out of DESTDIR
    "lib (absolute)": "lib",
    "site-packages/demo (deeper)": f"{SITE}/demo",
    "demo/__pycache__ (bytecode)": f"{SITE}/demo/__pycache__",
    "bin (scripts)": "bin",
    "include (headers)": "include",
    "share (data)": "share",
}


@pytest.mark.parametrize("where", sorted(LINKS_OUT))
def test_a_link_out_of_destdir_is_refused_naming_it_and_nothing_is_written(tmp_path: Path, where: str) -> None:
    outside, dest = _outside(tmp_path), tmp_path / "dest"
    link = dest / "usr" / LINKS_OUT[where]
    _link(link, outside)
    if where.startswith("demo/"):
        (outside / "stale.pyc").write_bytes(b"old")
    before, outside_before = snapshot(dest), snapshot(outside)
    for overwrite in ([], ["--overwrite"]):
        result = run_isobuild(
            "install", str(make_wheel(tmp_path / "w", FULL)), "--prefix", "/usr", "--destdir", str(dest), *overwrite
        )
        err = result.stderr.decode(errors="replace")
        assert result.returncode == REFUSED, err
        assert str(link) in err and "Traceback" not in err
        assert snapshot(dest) == before and snapshot(outside) == outside_before


def test_a_relative_link_that_climbs_out_of_destdir_is_refused(tmp_path: Path) -> None:
    outside, dest = _outside(tmp_path), tmp_path / "dest"
    _link(dest / "usr" / "lib", "../../outside")
    before = snapshot(outside)
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", FULL)), "--prefix", "/usr", "--destdir", str(dest))
    assert result.returncode == REFUSED, result.stderr.decode(errors="replace")
    assert str(dest / "usr" / "lib") in result.stderr.decode(errors="replace")
    assert snapshot(outside) == before


@pytest.mark.parametrize("kind", ["relative", "absolute, to a dir inside DESTDIR"])
def test_links_inside_destdir_are_followed(tmp_path: Path, kind: str) -> None:
    dest = tmp_path / "dest"
    (dest / "usr" / "lib64").mkdir(parents=True)
    _link(dest / "usr" / "lib", "lib64" if kind == "relative" else dest / "usr" / "lib64")
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", FULL)), "--prefix", "/usr", "--destdir", str(dest))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    site = dest / "usr" / "lib64" / f"python{VERSION}" / "site-packages"
    assert (site / "demo" / "__init__.py").is_file() and (site / "demo" / "__pycache__").is_dir()
    assert (dest / "usr" / "lib").is_symlink()


def test_a_link_out_of_the_prefix_is_refused(tmp_path: Path) -> None:
    outside, prefix = _outside(tmp_path), tmp_path / "prefix"
    _link(prefix / "lib", outside)
    before = snapshot(outside)
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", FULL)), "--prefix", str(prefix))
    assert result.returncode == REFUSED, result.stderr.decode(errors="replace")
    assert str(prefix / "lib") in result.stderr.decode(errors="replace")
    assert snapshot(outside) == before and sorted(os.listdir(prefix)) == ["lib"]


def test_without_prefix_or_destdir_a_link_out_of_a_scheme_dir_is_refused(tmp_path: Path) -> None:
    """A venv's site-packages is the destination: a package dir in it that links elsewhere is not followed."""
    venv, outside = tmp_path / "venv", _outside(tmp_path)
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    _link(site / "demo", outside)
    before, venv_before = snapshot(outside), snapshot(venv)
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", FULL)), "--python", str(venv / "bin" / "python"))
    assert result.returncode == REFUSED, result.stderr.decode(errors="replace")
    assert str(site / "demo") in result.stderr.decode(errors="replace")
    assert snapshot(outside) == before and snapshot(venv) == venv_before


def test_a_link_loop_where_a_directory_must_go_is_refused_naming_it(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _link(dest / "usr" / "lib", "lib")
    before = snapshot(dest)
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", FULL)), "--prefix", "/usr", "--destdir", str(dest))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == REFUSED, err
    assert f"needs the directory {dest / 'usr' / 'lib'}, where a link that leads to no directory is" in err
    assert snapshot(dest) == before


def test_a_link_made_after_the_plan_is_not_followed_out_at_write_time(tmp_path: Path) -> None:
    """What a racing process could do between the plan and the write: the destination itself refuses."""
    outside, dest = _outside(tmp_path), tmp_path / "dest"
    target = Target(python=sys.executable, interpreter=sys.executable, prefix="/usr", destdir=str(dest), levels=())
    scheme_dict = {key: f"/usr/{SITE}" for key in ("purelib", "platlib")}
    scheme_dict.update(scripts="/usr/bin", data="/usr", headers=f"/usr/include/python{VERSION}/demo")
    journal = Journal()
    destination = Destination(scheme_dict, target, journal)
    destination.write_file(Scheme("purelib"), "demo/__init__.py", io.BytesIO(b"X = 1\n"), False)
    _link(dest / "usr" / "bin", outside)  # made after the first file, as another process could
    before = snapshot(outside)
    with pytest.raises(RefusedWheel, match=str(dest / "usr" / "bin")):
        destination.write_file(Scheme("scripts"), "tool", io.BytesIO(b"#!/bin/sh\n"), True)
    with pytest.raises(RefusedWheel, match=str(dest / "usr" / "bin")):
        destination.write_script("demo-cli", "demo", "main", "console")
    journal.rollback()
    assert snapshot(outside) == before
    assert not (dest / "usr" / "lib").exists()


# ---------------------------------------------------------------- a .data script named like an entry point

LAUNCHER = (
    b"#!python\n# EASY-INSTALL-ENTRY-SCRIPT: 'demo==1.0','%s','demo-cli'\n__requires__ = 'demo==1.0'\n"
    b"import sys\nfrom pkg_resources import load_entry_point\n\nif __name__ == '__main__':\n"
    b"    sys.exit(load_entry_point('demo==1.0', '%s', 'demo-cli')())\n"
)


@pytest.mark.parametrize("section", ["console", "gui"])
def test_a_data_script_that_clashes_with_an_entry_point_is_refused(tmp_path: Path, section: str) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    pass\n",
            "demo-1.0.data/scripts/demo-cli": b"#!/bin/sh\necho the wheel's own\n",
            "demo-1.0.dist-info/entry_points.txt": f"[{section}_scripts]\ndemo-cli = demo:main\n".encode(),
        },
    )
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == REFUSED, err
    assert f"{section} script 'demo-cli'" in err and "'demo-1.0.data/scripts/demo-cli'" in err
    assert not prefix.exists()


@pytest.mark.parametrize("section", ["console", "gui"])
def test_setuptools_own_launcher_for_the_entry_point_is_left_out(tmp_path: Path, section: str) -> None:
    group = f"{section}_scripts".encode()
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    pass\n",
            "demo-1.0.data/scripts/demo-cli": LAUNCHER % (group, group),
            "demo-1.0.dist-info/entry_points.txt": f"[{section}_scripts]\ndemo-cli = demo:main\n".encode(),
        },
    )
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    script = (prefix / "bin" / "demo-cli").read_text()
    assert "from demo import main" in script and "EASY-INSTALL" not in script


def test_a_launcher_for_another_entry_point_is_no_launcher_of_this_one(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    pass\n",
            "demo-1.0.data/scripts/demo-cli": LAUNCHER.replace(b"'demo-cli'", b"'other'")
            % (b"console_scripts", b"console_scripts"),
            "demo-1.0.dist-info/entry_points.txt": ENTRY_POINTS,
        },
    )
    result = run_isobuild("install", str(wheel), "--prefix", str(tmp_path / "prefix"))
    assert result.returncode == REFUSED, result.stderr.decode(errors="replace")


# ---------------------------------------------------------------- modes, as installer gives them


def _executable_member(wheel: Path, member: str) -> None:
    """Rewrite the wheel with ``member``'s zip mode 0o755 (make_wheel writes none)."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        items = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(wheel, "w") as zf:
        for info, data in items:
            if info.filename == member:
                info.external_attr = (0o100755) << 16
            zf.writestr(info, data)


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mode & 0o7777
        for p in root.rglob("*")
        if p.is_file() and ".dist-info" not in str(p)
    }


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o002])
def test_modes_are_installers_under_any_umask(tmp_path: Path, umask: int) -> None:
    wheel = make_wheel(
        tmp_path / "w",
        {
            "demo/__init__.py": b"def main():\n    pass\n",
            "demo/run.sh": b"#!/bin/sh\n",
            "demo-1.0.data/scripts/tool": b"#!/bin/sh\necho tool\n",
            "demo-1.0.data/data/share/demo/readme": b"x\n",
            "demo-1.0.dist-info/entry_points.txt": ENTRY_POINTS + b"[gui_scripts]\ndemo-gui = demo:main\n",
        },
    )
    _executable_member(wheel, "demo/run.sh")
    _executable_member(wheel, "demo-1.0.data/scripts/tool")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    umasked = ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh"]
    argv = ["install", str(wheel), "--prefix", "/usr", "--destdir", str(ours), "--no-compile", "-q"]
    subprocess.run([*umasked, *isobuild_command(), *argv], check=True, env=clean_env(), timeout=300)
    install_with_installer(wheel, theirs, "/usr", wrapper=umasked)
    assert _modes(ours) == _modes(theirs)
    assert _modes(ours)["usr/bin/demo-cli"] == (0o777 & ~umask) | 0o111


# ---------------------------------------------------------------- concurrent installs, one new deep prefix


def test_concurrent_installs_that_create_one_deep_prefix_never_refuse_one_another(tmp_path: Path) -> None:
    prefix = "/" + "/".join(f"p{i}" for i in range(60))
    files = {f"pkg{{i}}/m{j}/__init__.py": b"X = 1\n" for j in range(20)}
    wheels = [
        make_wheel(tmp_path / f"w{i}", {k.format(i=i): v for k, v in files.items()}, name=f"pkg{i}") for i in range(8)
    ]
    for round_ in range(3):
        dest = tmp_path / f"dest{round_}"
        all_succeed_at_once(
            [["install", str(w), "--prefix", prefix, "--destdir", str(dest), "--no-compile", "-q"] for w in wheels],
            timeout=300,
        )
        site = Path(str(dest) + prefix) / SITE
        assert sorted(p.name for p in site.iterdir() if "." not in p.name) == [f"pkg{i}" for i in range(8)]
