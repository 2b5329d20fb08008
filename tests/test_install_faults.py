"""install under attack and under load: nothing that existed is changed or removed by a failed, refused
or interrupted install, nothing is written through links, and hostile wheels are refused in bounded time."""

from __future__ import annotations

import os
import struct
import sys
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import InstallFailed, RefusedWheel

from conftest import digest, make_wheel, run_isobuild, snapshot
from helpers import all_succeed_at_once

REFUSED, INSTALL_FAILED = RefusedWheel.exit_code, InstallFailed.exit_code
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
SITE = f"lib/python{VERSION}/site-packages"
GOOD = {"demo/__init__.py": b"NEW = 1\n"}
UNWRITABLE = "demo/zz_" + "x" * 300 + ".py"  # the filesystem refuses it (ENAMETOOLONG): a failure part-way


@pytest.mark.parametrize("kind", ["file", "dangling symlink"])
def test_a_users_file_where_a_directory_must_go_is_refused_and_kept(tmp_path: Path, kind: str) -> None:
    prefix = tmp_path / "prefix"
    site = prefix / SITE
    site.mkdir(parents=True)
    if kind == "file":
        (site / "demo").write_text("the user's\n")
    else:
        (site / "demo").symlink_to(tmp_path / "nowhere")
    before = snapshot(prefix)
    for overwrite in ([], ["--overwrite"]):
        result = run_isobuild("install", str(make_wheel(tmp_path / "w", GOOD)), "--prefix", str(prefix), *overwrite)
        assert result.returncode == REFUSED, result.stderr.decode(errors="replace")
        assert b"needs the directory" in result.stderr
        assert snapshot(prefix) == before


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_overwrite_replaces_a_link_and_never_writes_through_it(tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("OUTSIDE = 1\n")
    prefix = tmp_path / "prefix"
    (prefix / SITE / "demo").mkdir(parents=True)
    installed = prefix / SITE / "demo" / "__init__.py"
    if link == "symlink":
        installed.symlink_to(outside)
    else:
        os.link(outside, installed)
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", GOOD)), "--prefix", str(prefix), "--overwrite")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert outside.read_text() == "OUTSIDE = 1\n"
    assert not installed.is_symlink() and installed.read_text() == "NEW = 1\n"


def test_directory_symlinks_in_the_prefix_are_followed(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "lib64").mkdir(parents=True)
    (prefix / "lib").symlink_to("lib64")
    result = run_isobuild("install", str(make_wheel(tmp_path / "w", GOOD)), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert (prefix / "lib64" / f"python{VERSION}" / "site-packages" / "demo" / "__init__.py").read_text() == "NEW = 1\n"
    assert (prefix / "lib").is_symlink()


def test_a_failed_overwrite_puts_back_every_file_it_replaced(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    old = make_wheel(
        tmp_path / "old",
        {
            "demo/__init__.py": b"OLD = 1\n",
            "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo = demo:x\n",
        },
    )
    assert run_isobuild("install", str(old), "--prefix", str(prefix)).returncode == 0
    before = snapshot(prefix)
    failing = make_wheel(
        tmp_path / "new",
        {
            "demo/__init__.py": b"NEW = 1\n",
            UNWRITABLE: b"X = 1\n",
            "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo = demo:y\n",
        },
    )
    result = run_isobuild("install", str(failing), "--prefix", str(prefix), "--overwrite")
    assert result.returncode == INSTALL_FAILED, result.stderr.decode(errors="replace")
    assert snapshot(prefix) == before  # sources, .pyc files, scripts, RECORD: all as they were


def test_concurrent_installs_into_one_new_prefix_all_succeed(tmp_path: Path) -> None:
    prefix = tmp_path / "deep" / "new" / "prefix"
    wheels = [make_wheel(tmp_path / f"w{i}", {f"pkg{i}/__init__.py": b"X = 1\n"}, name=f"pkg{i}") for i in range(6)]
    all_succeed_at_once([["install", str(w), "--prefix", str(prefix), "-q"] for w in wheels])
    assert sorted(p.name for p in (prefix / SITE).iterdir() if p.name.startswith("pkg") and "." not in p.name) == [
        f"pkg{i}" for i in range(6)
    ]


# ---------------------------------------------------------------- hostile wheels, refused in bounded time


def _with_raw_name(tmp_path: Path, raw: str) -> Path:
    """A wheel whose member name has a NUL (zipfile itself cuts such names when it reads them)."""
    files = {"demo/__init__.py": b""}
    wheel = make_wheel(tmp_path / "nul", files)
    with zipfile.ZipFile(wheel, "a") as zf:
        info = zipfile.ZipInfo("placeholder")
        info.filename = raw  # past ZipInfo's own truncation
        zf.writestr(info, b"import os\n")
    return wheel


def _with_method(tmp_path: Path, method: int, flag_bits: int = 0) -> Path:
    """A wheel whose member says it is compressed with ``method`` (zstd is 93) or is encrypted."""
    wheel = make_wheel(tmp_path / f"m{method}-{flag_bits}", {"demo/__init__.py": b"X = 1\n"})
    data = bytearray(wheel.read_bytes())
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("demo/__init__.py")
    struct.pack_into("<HH", data, info.header_offset + 6, flag_bits, method)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + name_length]) == b"demo/__init__.py":
            struct.pack_into("<HH", data, central + 8, flag_bits, method)
        central = data.find(b"PK\x01\x02", central + 4)
    wheel.write_bytes(bytes(data))
    return wheel


def _hostile(tmp_path: Path, key: str) -> Path:
    base = {"demo/__init__.py": b"X = 1\n"}
    record = None
    if key == "data-dir-as-file":
        files = {**base, "demo-1.0.data": b"x"}
    elif key == "data-key-as-file":
        files = {**base, "demo-1.0.data/scripts": b"x"}
    elif key == "record-md5":
        files = base
        record = "demo/__init__.py,md5=abc,6\ndemo-1.0.dist-info/RECORD,,\n"
    elif key == "record-twice":
        files = base
        row = f"demo/__init__.py,{digest(base['demo/__init__.py'])},6"
        record = f"{row}\n{row}\ndemo-1.0.dist-info/RECORD,,\n"
    elif key == "script-nul":
        files = {**base, "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\nde\x00mo = demo:x\n"}
    elif key == "nul-member":
        return _with_raw_name(tmp_path, "demo/abc.pth\x00txt")
    elif key == "zstd-member":
        return _with_method(tmp_path, 93)
    elif key == "encrypted-member":
        return _with_method(tmp_path, zipfile.ZIP_STORED, flag_bits=0x1)
    elif key == "bad-version":
        return make_wheel(
            tmp_path / key, base, version="1.0.not.a.version", wheel_name="demo-1.0.not.a.version-py3-none-any.whl"
        )
    elif key == "bad-name":
        return make_wheel(tmp_path / key, base, name="de$mo")
    else:
        raise AssertionError(key)
    return make_wheel(tmp_path / key, files, record=record)


HOSTILE = {
    "data-dir-as-file": "names no scheme and file",
    "data-key-as-file": "names no scheme and file",
    "record-md5": "with md5",
    "record-twice": "twice",
    "script-nul": "is not a plain file name",
    "nul-member": "NUL or control character",
    "zstd-member": "compressed in a way",
    "encrypted-member": "encrypted",
    "bad-version": "file name is not",
    "bad-name": "file name is not",
}


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_a_hostile_wheel_is_refused_in_bounded_time_with_nothing_written(tmp_path: Path, key: str) -> None:
    wheel = _hostile(tmp_path, key)
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(wheel), "--prefix", str(prefix), timeout=60)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == REFUSED, err
    assert HOSTILE[key] in err and "Traceback" not in err and "internal error" not in err
    assert not prefix.exists()
