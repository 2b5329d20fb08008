"""An sdist archive (.tar.gz and other tars, legacy .zip) as a source tree: checked whole, then
unpacked into a temp dir that is always removed.

The checks are tarfile's "data" filter, on every supported Python (3.9 to 3.11 may lack it):
no absolute path, no ``..``, no link that leads out of the tree, no device or FIFO. The first
member that breaks one is named (exit 2) before anything is written.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import BadInput

def _inside(name: str) -> bool:
    """A relative path that stays in the tree once normalized."""
    if not name or name.startswith("/") or "\0" in name or (len(name) > 1 and name[1] == ":"):
        return False
    normal = posixpath.normpath(name)
    return normal != ".." and not normal.startswith("../")


def _refuse(archive: str, member: str, why: str) -> BadInput:
    return BadInput(f"refusing {os.path.basename(archive)}: member {member!r} {why}", hint="nothing was unpacked")


def _check_tar(archive: str, members: list[tarfile.TarInfo]) -> None:
    for member in members:
        if not _inside(member.name):
            raise _refuse(archive, member.name, "is absolute or leads out of the tree")
        if member.issym():
            target = posixpath.join(posixpath.dirname(member.name), member.linkname)
            if member.linkname.startswith("/") or not _inside(target):
                raise _refuse(archive, member.name, f"is a symlink out of the tree ({member.linkname})")
        elif member.islnk():
            if not _inside(member.linkname):
                raise _refuse(archive, member.name, f"is a hard link out of the tree ({member.linkname})")
        elif not (member.isreg() or member.isdir()):
            raise _refuse(archive, member.name, "is a device, a FIFO or another special file")


def _unpack_tar(archive: str, into: str) -> None:
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_tar(archive, members)
            for member in members:  # as the data filter leaves them: no set-id bits, owner's write and read
                member.mode = 0o755 if member.isdir() else (member.mode or 0o644) & 0o755 | 0o600
                member.uid = member.gid = 0
                member.uname = member.gname = ""
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, members, filter="data")
            else:
                tar.extractall(into, members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadInput(f"{archive} is not a readable sdist archive: {exc}") from None


def _unpack_zip(archive: str, into: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not _inside(info.filename) or info.orig_filename != info.filename:
                    raise _refuse(archive, info.orig_filename, "is absolute or leads out of the tree")
                kind = (info.external_attr >> 16) & 0o170000
                if kind not in (0, 0o100000, 0o040000):
                    raise _refuse(archive, info.filename, "is a symlink or a special file")
            zf.extractall(into)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{archive} is not a readable sdist archive: {exc}") from None


def _project_root(archive: str, into: str) -> str:
    """The one top-level directory that holds the project, as sdists are laid out (or the root itself)."""
    markers = ("pyproject.toml", "setup.py")
    if any(os.path.exists(os.path.join(into, marker)) for marker in markers):
        return into
    tops = [os.path.join(into, name) for name in os.listdir(into)]
    dirs = [top for top in tops if os.path.isdir(top) and not os.path.islink(top)]
    if len(dirs) == 1 and any(os.path.exists(os.path.join(dirs[0], marker)) for marker in markers):
        return dirs[0]
    raise BadInput(f"{archive} holds no project: no NAME-VERSION/ dir with pyproject.toml or setup.py")


@contextmanager
def unpacked(archive: str) -> Iterator[str]:
    """The project dir of the unpacked archive; the temp dir goes when the block ends, however it ends."""
    try:
        into = tempfile.mkdtemp(prefix="isobuild-sdist-")
    except OSError as exc:
        raise BadInput(f"cannot make a temp dir to unpack {archive}: {exc.strerror or exc}") from None
    try:
        (_unpack_zip if archive.lower().endswith(".zip") else _unpack_tar)(archive, into)
        yield _project_root(archive, into)
    finally:
        shutil.rmtree(into, ignore_errors=True)
