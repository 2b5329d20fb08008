"""Hostile input (issue 20): sdists whose links lead out of the tree however they are chained (the
CVE-2025-4517 pattern and its variants), archive headers that claim absurd sizes or depths, RECORD rows
of the wrong width, and artifact names a backend should not return. Each is one ERROR line naming the
culprit and its documented exit code; nothing is written outside, nothing is left behind.

The sdist cases run with the frontend on this venv's Python, on CPython 3.9 and on 3.12 (pyenv's 3.9.18
and 3.12.1 here, whose tarfile "data" filters predate the CVE's fix): isobuild must hold on each."""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import subprocess
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from isobuild.errors import BackendFailed, BadInput, RefusedWheel

from conftest import (
    CACHE,
    PYZ,
    REPO,
    base_python,
    clean_env,
    copy_fixture,
    isobuild_command,
    make_wheel,
    require_interpreter,
    run_isobuild,
)

PYPROJECT = b'[build-system]\nrequires = []\nbuild-backend = "never_imported"\n'
FRONTENDS = ["venv", "3.9", "3.12"]


def _frontend(kind: str) -> list[str]:
    """isobuild as run by this venv's Python, or from this checkout's src/ by pyenv's CPython 3.12 (with this
    venv's dependencies: pure Python) or 3.9 (with test_cli's cache of them for 3.9, installer 0.7.0 among them)."""
    if kind == "venv":
        return isobuild_command()
    python = require_interpreter(kind)
    if PYZ:
        return isobuild_command(python)
    deps = CACHE / "isobuild-deps-3.9" if kind == "3.9" else Path(sysconfig.get_path("purelib"))
    if not (kind != "3.9" or (deps / ".complete").exists()):
        pytest.skip(f"no {deps}: tests/test_cli.py::test_isobuild_runs_on_python_3_9 makes it")
    paths = [str(REPO / "src"), str(deps)]
    code = f"import runpy, sys; sys.path[:0] = {paths!r}; runpy.run_module('isobuild', run_name='__main__')"
    return [python, "-c", code]


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _dir(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, b""


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A .tar.gz of ``members`` after a pyproject.toml at its top (the tree is the archive's root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in [_file("pyproject.toml", PYPROJECT), *members]:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _wheel_from(
    archive: Path, tmp_path: Path, frontend: str = "venv", preexec_fn: Callable[[], None] | None = None
) -> tuple[int, str]:
    """``isobuild wheel ARCHIVE`` with a TMPDIR of its own, which must be empty afterwards."""
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    result = subprocess.run(
        [*_frontend(frontend), "wheel", str(archive), "-o", str(tmp_path / "out")],
        env=clean_env(TMPDIR=str(scratch)),
        capture_output=True,
        timeout=300,
        preexec_fn=preexec_fn,
    )
    err: str = result.stderr.decode(errors="replace")
    assert "internal error" not in err, err
    assert os.listdir(scratch) == [], "the unpacked tree was left behind"
    return result.returncode, err


def _witness(tmp_path: Path) -> Path:
    flag = tmp_path / "flag"
    flag.write_text("original")
    return flag


def _untouched(tmp_path: Path) -> None:
    assert (tmp_path / "flag").read_text() == "original"
    assert sorted(os.listdir(tmp_path)) == ["flag", "in", "tmp"], "something was written outside the tree"


def _cve_2025_4517(tmp_path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """CPython's own test of the CVE, aimed at tmp_path: 16 links, each to a long dir name, so that the
    path through them fits PATH_MAX but the path they resolve to does not, and a last link ``lll`` back
    to the top that realpath() then never follows; ``escape`` climbs to / through it, on paper inside."""
    steps = "abcdefghijklmnop"
    top = len(str(tmp_path / "tmp")) + len(f"/isobuild-{os.uname().nodename}-1234567-12345678/isobuild-sdist-12345678")
    # the 16 dirs leave 128 bytes of PATH_MAX (room for an error in ``top``), less than "/lll..." takes
    component = "d" * ((os.pathconf("/", "PC_PATH_MAX") - 1 - top - 128) // len(steps) - 1)
    members, path = [], ""
    for step in steps:
        members += [_dir(os.path.join(path, component)), _link(os.path.join(path, step), component)]
        path = os.path.join(path, component)
    linkpath = os.path.join(*steps, "l" * 254)
    members.append(_link(linkpath, os.path.join(*[".."] * len(steps))))
    members.append(_link("escape", os.path.join(linkpath, *[".."] * (len(steps) + 1))))
    outside = str(tmp_path).lstrip("/")
    members += [
        _link("flaglink", f"escape/{outside}/flag", tarfile.LNKTYPE),
        _file("flaglink", b"overwrite"),
        _file(f"escape/{outside}/newfile", b"new"),
    ]
    return members


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_the_cve_2025_4517_link_chain_is_refused_on_every_python(tmp_path: Path, frontend: str) -> None:
    _witness(tmp_path)
    code, err = _wheel_from(_tar(tmp_path / "in" / "chain.tar.gz", _cve_2025_4517(tmp_path)), tmp_path, frontend)
    _untouched(tmp_path)
    assert code == BadInput.exit_code, err
    assert "ERROR refusing chain.tar.gz: member '" in err


def _via() -> str:
    """A path through the link ``s/.../s/up`` (to the top): inside the tree as text, at / for real."""
    return "/".join(["s"] * 20 + ["up"] + [".."] * 20)


def _variants(tmp_path: Path) -> dict[str, tuple[str, list[tuple[tarfile.TarInfo, bytes]]]]:
    """Archives whose every name and link target stays inside the tree as text: (the member refused, members)."""
    outside = str(tmp_path).lstrip("/")
    up = _link("/".join(["s"] * 20 + ["up"]), "/".join([".."] * 20))
    return {
        "dotdot-through-a-link": (f"{_via()}/{outside}/flag", [up, _file(f"{_via()}/{outside}/flag", b"overwrite")]),
        "file-under-a-dir-link": ("l", [up, _link("l", f"{_via()}/{outside}"), _file("l/newfile")]),
        "hard-link-via-a-link": (
            "h",
            [up, _link("h", f"{_via()}/{outside}/flag", tarfile.LNKTYPE), _file("h", b"overwrite")],
        ),
        "link-replaced-by-a-later-link": (
            "l",
            [_dir("d"), _link("l", "d"), _file("l/ok"), up, _link("l", f"{_via()}/{outside}"), _file("l/newfile")],
        ),
        # a, inside when made, leads out once x (a link to the top) exists: x/.. is then above the top
        "link-redirected-later": ("a", [_link("a", f"x/../{outside}"), _link("x", ".")]),
    }


@pytest.mark.parametrize("frontend", FRONTENDS)
@pytest.mark.parametrize(
    "variant",
    [
        "dotdot-through-a-link",
        "file-under-a-dir-link",
        "hard-link-via-a-link",
        "link-replaced-by-a-later-link",
        "link-redirected-later",
    ],
)
def test_links_that_lead_out_only_for_real_are_refused(tmp_path: Path, frontend: str, variant: str) -> None:
    _witness(tmp_path)
    member, members = _variants(tmp_path)[variant]
    code, err = _wheel_from(_tar(tmp_path / "in" / "variant.tar.gz", members), tmp_path, frontend)
    _untouched(tmp_path)
    assert code == BadInput.exit_code, err
    assert f"ERROR refusing variant.tar.gz: member {member!r}" in err, err


@pytest.mark.parametrize("suffix, mode", [("tar", "w"), ("tgz", "w:gz"), ("tar.bz2", "w:bz2"), ("tar.xz", "w:xz")])
def test_every_compression_goes_through_the_same_checks(tmp_path: Path, suffix: str, mode: str) -> None:
    archive = tmp_path / "in" / f"redirect.{suffix}"
    archive.parent.mkdir()
    with tarfile.open(archive, mode) as tar:  # type: ignore[call-overload]
        for info, data in [_file("pyproject.toml", PYPROJECT), _link("a", "x/../elsewhere"), _link("x", ".")]:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    code, err = _wheel_from(archive, tmp_path)
    assert code == BadInput.exit_code, err
    assert f"ERROR refusing redirect.{suffix}: member 'a' is a symlink that leads out of the tree once unpacked" in err


def test_bootstrap_unpacks_with_the_same_checks(tmp_path: Path) -> None:
    """tools/bootstrap.py unpacks the frontend's dependencies itself, packaging first: the CVE's chain there
    is refused as `isobuild wheel` refuses it (the other sdists are never opened)."""
    _witness(tmp_path)
    sdists = tmp_path / "in"
    _tar(sdists / "packaging-1.0.tar.gz", _cve_2025_4517(tmp_path))
    for name in ("flit_core", "pyproject_hooks", "installer", "dependency_groups", "tomli", "isobuild"):
        (sdists / f"{name}-1.0.tar.gz").write_bytes(b"")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [base_python(), str(REPO / "tools" / "bootstrap.py"), str(sdists), "--prefix", str(tmp_path / "prefix")],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(TMPDIR=str(scratch)),
    )
    _untouched(tmp_path)
    assert result.returncode == BadInput.exit_code, result.stderr
    assert result.stderr.startswith("bootstrap: ERROR refusing packaging-1.0.tar.gz: member '"), result.stderr
    assert os.listdir(scratch) == []


TREE_BACKEND = """
import json, os, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    seen = {}
    for top, dirs, files in os.walk("."):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # this backend's own bytecode, not the archive's
        for name in dirs + files:
            path = os.path.join(top, name)[2:]
            if os.path.islink(path):
                seen[path] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                seen[path] = open(path).read()
    with open(config_settings["report"], "w") as f:
        json.dump(seen, f)
    name = "tree-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        zf.writestr("tree-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
        zf.writestr("tree-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: tree\\nVersion: 1.0\\n")
        zf.writestr("tree-1.0.dist-info/RECORD", "")
    return name
"""


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_links_inside_the_tree_are_unpacked_as_tar_does(tmp_path: Path, frontend: str) -> None:
    """Links that stay inside are kept, files are written through a link to a dir, a hard link is a file,
    and a member of the name of an earlier link replaces the link (its old target is not written to)."""
    pyproject = b'[build-system]\nrequires = []\nbuild-backend = "tree_backend"\nbackend-path = ["_backend"]\n'
    archive = tmp_path / "in" / "tree-1.0.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in [
            _file("tree-1.0/pyproject.toml", pyproject),
            _file("tree-1.0/_backend/tree_backend.py", TREE_BACKEND.encode()),
            _file("tree-1.0/docs/a.txt", b"a"),
            _link("tree-1.0/to-docs", "docs"),
            _file("tree-1.0/to-docs/b.txt", b"b"),
            _link("tree-1.0/c.txt", "to-docs/a.txt"),
            _link("tree-1.0/hard.txt", "tree-1.0/docs/a.txt", tarfile.LNKTYPE),
            _link("tree-1.0/replaced.txt", "docs/a.txt"),
            _file("tree-1.0/replaced.txt", b"new"),
        ]:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    report = tmp_path / "report.json"
    result = subprocess.run(
        [*_frontend(frontend), "wheel", str(archive), "-o", str(tmp_path / "out"), "-C", f"report={report}"],
        env=clean_env(TMPDIR=str(tmp_path)),
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    seen = json.loads(report.read_text())
    assert {
        path: seen[path] for path in ("docs/a.txt", "docs/b.txt", "to-docs", "c.txt", "hard.txt", "replaced.txt")
    } == {
        "docs/a.txt": "a",
        "docs/b.txt": "b",
        "to-docs": "-> docs",
        "c.txt": "-> to-docs/a.txt",
        "hard.txt": "a",
        "replaced.txt": "new",
    }


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # what a machine of 4 GiB, or a CI limit, allows


def test_a_header_that_claims_8_gib_is_refused_without_allocating_it(tmp_path: Path) -> None:
    """114 bytes of tar.gz whose pax header claims 8 GiB: tarfile reads a pax header whole, in one read."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, 8 << 30
    archive = tmp_path / "in" / "huge-1.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024)))
    code, err = _wheel_from(archive, tmp_path, preexec_fn=_limit_memory)
    assert code == BadInput.exit_code, err
    assert "ERROR refusing huge-1.0.tar.gz: a header in it claims 8589934592 bytes, over 16 MiB" in err


@pytest.mark.parametrize(
    "depth, why", [(2100, "has a name of 4213 characters, over 4096"), (1200, "is nested deeper than 256 directories")]
)
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_a_member_nested_too_deep_is_refused(tmp_path: Path, kind: str, depth: int, why: str) -> None:
    name = "deep-1.0/" + "a/" * depth + "f.py"
    archive = tmp_path / "in" / f"deep-1.0.{kind}"
    if kind == "zip":
        archive.parent.mkdir()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("deep-1.0/pyproject.toml", PYPROJECT)
            zf.writestr(name, b"")
    else:
        _tar(archive, [_file(name)])
    code, err = _wheel_from(archive, tmp_path)
    assert code == BadInput.exit_code, err
    assert f"ERROR refusing deep-1.0.{kind}: member 'deep-1.0/a/a/a/" in err and why in err, err


def test_a_zip_member_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """zipfile would write a link member as a file holding its target; a zip sdist has no business with links."""
    archive = tmp_path / "in" / "linked-1.0.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("linked-1.0/pyproject.toml", PYPROJECT)
        link = zipfile.ZipInfo("linked-1.0/link")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "../../outside")
    code, err = _wheel_from(archive, tmp_path)
    assert code == BadInput.exit_code, err
    assert "ERROR refusing linked-1.0.zip: member 'linked-1.0/link' is a symlink or a special file" in err


def test_links_that_lead_deeper_than_the_limit_are_refused(tmp_path: Path) -> None:
    """Each name is shallow, but through links the tree would nest deeper than shutil.rmtree can recurse."""
    members = [_dir("/".join(["d"] * 200))]
    members += [_link("l", "/".join(["d"] * 200)), _file("/".join(["l"] + ["e"] * 100) + "/f.py")]
    code, err = _wheel_from(_tar(tmp_path / "in" / "links.tar.gz", members), tmp_path)
    assert code == BadInput.exit_code, err
    assert "leads deeper than 256 directories through links" in err


def _install(wheel: Path, tmp_path: Path, frontend: str) -> tuple[int, str]:
    result = subprocess.run(
        [*_frontend(frontend), "install", str(wheel), "--prefix", str(tmp_path / "prefix")],
        env=clean_env(TMPDIR=str(tmp_path)),
        capture_output=True,
        timeout=300,
    )
    err: str = result.stderr.decode(errors="replace")
    assert "internal error" not in err and not (tmp_path / "prefix").exists(), err
    return result.returncode, err


RECORD_TAIL = "demo-1.0.dist-info/METADATA,,\ndemo-1.0.dist-info/WHEEL,,\ndemo-1.0.dist-info/RECORD,,\n"


@pytest.mark.parametrize("frontend", ["venv", "3.9"])  # installer 1.x here, 0.7.0 in the cache for 3.9
def test_a_record_row_of_four_columns_is_a_refused_wheel(tmp_path: Path, frontend: str) -> None:
    """installer (0.7 and 1.x) raises InvalidRecordEntry, which is no InstallerError, for a row of 4 columns."""
    row = "demo/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0,extra"
    wheel = make_wheel(tmp_path / "in", {"demo/__init__.py": b""}, record=f"{row}\n{RECORD_TAIL}")
    code, err = _install(wheel, tmp_path, frontend)
    assert code == RefusedWheel.exit_code, err
    assert f"ERROR refusing demo-1.0-py3-none-any.whl: demo-1.0.dist-info/RECORD has a malformed row {row!r}" in err


@pytest.mark.parametrize("frontend", ["venv", "3.9"])
def test_a_record_with_a_nul_is_a_refused_wheel(tmp_path: Path, frontend: str) -> None:
    """csv raises csv.Error on a NUL before Python 3.11 (no ValueError, no InstallerError)."""
    row = "demo/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0"
    wheel = make_wheel(tmp_path / "in", {"demo/__init__.py": b""}, record=f"{row}\n\0{RECORD_TAIL}")
    code, err = _install(wheel, tmp_path, frontend)
    assert code == RefusedWheel.exit_code, err
    assert "ERROR refusing demo-1.0-py3-none-any.whl: " in err


@pytest.mark.parametrize(
    "fixture, message",
    [
        ("backend-newline-name", "returned 'newline-1.0-py3-none-any\\n.whl', which is not a file name"),
        ("backend-symlink-wheel", "returned 'symlinked-1.0-py3-none-any.whl', which is a symlink, not the file itself"),
    ],
)
def test_an_artifact_name_that_is_no_plain_file_is_the_backends_failure(
    tmp_path: Path, fixture: str, message: str
) -> None:
    """Checked before anything is printed or placed: a newline would print as two lines, a relative link
    renamed into OUTDIR would dangle there."""
    src = copy_fixture(fixture, tmp_path)
    out = tmp_path / "out"
    result = run_isobuild("wheel", str(src), "-o", str(out), env=clean_env(TMPDIR=str(tmp_path)))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BackendFailed.exit_code, err
    assert f"ERROR build_wheel of backend {fixture.split('-')[1]}_backend {message}" in err, err
    assert result.stdout == b"" and not out.exists()
