"""An sdist archive (.tar.gz and other tars, legacy .zip) as a source tree: checked, then unpacked into a
temp dir that is always removed, whose name is fixed (``unpacked``).

Every name is first checked as text, for the whole archive: no absolute path, no ``..`` out of the
tree, no device or FIFO, no name longer than PATH_MAX or deeper than ``_MAX_DEPTH`` dirs. The first
member that breaks a rule is named (exit 2) before anything is written.

Text is not enough once an archive holds links: a chain of them, each inside the tree "on paper", can
lead anywhere (CVE-2025-4517), and tarfile's "data" filter before CPython's fix of 2025 resolves paths
with a realpath() that quietly stops following links past PATH_MAX. So a tar is unpacked here, one
member at a time: its path is resolved one component at a time against the tree as it stands (the
links made so far included), any error but "no such file" refuses it, and it is written at the place
found, never through a link at its last component (an earlier entry of that name is replaced, as tar
does). A link is made only if it leads inside the tree, and every link is resolved once more at the
end, as a later member can change where an earlier one leads.

Sizes are bounded as well as paths: tarfile reads a pax or GNU long-name header whole, in one read of
the size the header claims (a 114-byte archive can claim 8 GiB), so it reads the decompressed stream
through ``_Bounded``, which refuses any one read over 16 MiB; no tree is deeper than ``_MAX_DEPTH``
dirs, so that neither os.makedirs nor shutil.rmtree (recursive before 3.13) runs out of stack.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import BadInput

_MAX_NAME = 4096  # characters, PATH_MAX on Linux: a longer name cannot be opened anyway
_MAX_DEPTH = 256  # dirs: beyond any project, and within the recursion of shutil.rmtree (before 3.13)
_MAX_LINKS = 40  # links followed in one path, as Linux follows before ELOOP
_MAX_READ = 16 << 20  # one read of the tar stream: a header claiming more is refused, not allocated
_CHUNK = 1 << 20

_OPENERS: dict[bytes, Callable[[str], io.BufferedIOBase]] = {b"\x1f\x8b": gzip.GzipFile}
_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, OSError, zlib.error)
try:  # bz2 and lzma are optional in a Python build; tarfile too does without them
    import bz2

    _OPENERS[b"BZh"] = bz2.BZ2File
except ImportError:  # pragma: no cover
    pass
try:
    import lzma

    _OPENERS[b"\xfd7zXZ\x00"] = lzma.LZMAFile
    _ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass


def _inside(name: str) -> bool:
    """A relative path that stays in the tree once normalized."""
    if not name or name.startswith("/") or "\0" in name or (len(name) > 1 and name[1] == ":"):
        return False
    normal = posixpath.normpath(name)
    return normal != ".." and not normal.startswith("../")


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _refuse(archive: str, member: str, why: str) -> BadInput:
    shown = member if len(member) < 200 else f"{member[:80]}...{member[-80:]}"
    return BadInput(
        f"refusing {os.path.basename(archive)}: member {shown!r} {why}", hint="nothing unpacked from it was kept"
    )


def _check_name(archive: str, name: str) -> None:
    if not _inside(name):
        raise _refuse(archive, name, "is absolute or leads out of the tree")
    if len(name) > _MAX_NAME:
        raise _refuse(archive, name, f"has a name of {len(name)} characters, over {_MAX_NAME}")
    if len(_parts(name)) > _MAX_DEPTH:
        raise _refuse(archive, name, f"is nested deeper than {_MAX_DEPTH} directories")


def _check_tar(archive: str, members: list[tarfile.TarInfo]) -> None:
    """The rules that text can tell, for every member before anything is written."""
    for member in members:
        _check_name(archive, member.name)
        if member.issym() or member.islnk():
            if len(member.linkname) > _MAX_NAME:
                raise _refuse(archive, member.name, f"is a link to a name over {_MAX_NAME} characters")
        if member.issym():
            target = posixpath.join(posixpath.dirname(member.name), member.linkname)
            if member.linkname.startswith("/") or not _inside(target):
                raise _refuse(archive, member.name, f"is a symlink out of the tree ({member.linkname})")
        elif member.islnk():
            if not _inside(member.linkname):
                raise _refuse(archive, member.name, f"is a hard link out of the tree ({member.linkname})")
        elif not (member.isreg() or member.isdir()):
            raise _refuse(archive, member.name, "is a device, a FIFO or another special file")


def _resolve(archive: str, root: str, start: list[str], path: str, member: str) -> list[str] | None:
    """Where ``path``, taken from the dir ``start`` (components below ``root``), leads in the tree as it
    stands, every link followed: its components below ``root``, or None if it leaves the tree. Past a
    component that does not exist yet the rest is taken as written (it can hold no link). Any other
    error (a name too long, a file where a dir must be) refuses ``member``: never guessed past."""
    resolved = list(start)
    todo = _parts(path)[::-1]
    followed = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        here = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(here) if stat.S_ISLNK(os.lstat(here).st_mode) else None
        except FileNotFoundError:
            target = None
        except OSError as exc:
            raise _refuse(archive, member, f"cannot be resolved in the tree: {exc.strerror or exc}") from None
        if target is None:
            resolved.append(part)
        elif target.startswith("/"):  # never made here; no link is followed out of the tree
            return None
        else:
            followed += 1
            if followed > _MAX_LINKS:
                raise _refuse(archive, member, f"goes through more than {_MAX_LINKS} links")
            todo.extend(_parts(target)[::-1])
        if len(resolved) > _MAX_DEPTH:
            raise _refuse(archive, member, f"leads deeper than {_MAX_DEPTH} directories through links")
    return resolved


def _make_parents(root: str, parent: list[str]) -> None:
    """The dirs a member's resolved parent still lacks, as tar makes them (no recursion: see _MAX_DEPTH)."""
    if os.path.isdir(os.path.join(root, *parent)):
        return
    for depth in range(1, len(parent) + 1):
        try:
            os.mkdir(os.path.join(root, *parent[:depth]), 0o755)
        except FileExistsError:
            pass  # an existing dir; a file there fails the member's own write, with its name


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, place: str) -> None:
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover: a regular member always has a file object
        raise tarfile.ExtractError(f"no data for {member.name}")
    fd = os.open(place, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with source, os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            out.write(chunk)
        out.flush()
        os.fchmod(out.fileno(), (member.mode or 0o644) & 0o755 | 0o600)  # as the "data" filter: no set-id bits
        try:
            os.utime(out.fileno(), (member.mtime, member.mtime))  # backends stamp wheels with it
        except (OSError, OverflowError, ValueError):
            pass  # an mtime the filesystem cannot hold: the file's own is as good


def _destination(archive: str, root: str, member: tarfile.TarInfo, parts: list[str]) -> tuple[list[str], str | None]:
    """Where the member goes (its parent dir's components, resolved) and, for a hard link, the file it
    links to; a member whose path or link target leads out of the tree is refused."""
    parent = _resolve(archive, root, [], "/".join(parts[:-1]), member.name)
    if parent is None:
        raise _refuse(archive, member.name, "leads out of the tree through a link")
    if member.issym() and _resolve(archive, root, parent, member.linkname, member.name) is None:
        raise _refuse(archive, member.name, f"is a symlink out of the tree ({member.linkname})")
    if not member.islnk():
        return parent, None
    target = _resolve(archive, root, [], member.linkname, member.name)
    if target is None:
        raise _refuse(archive, member.name, f"is a hard link out of the tree ({member.linkname})")
    source = os.path.join(root, *target)
    if not (os.path.lexists(source) and stat.S_ISREG(os.lstat(source).st_mode)):
        raise _refuse(archive, member.name, f"is a hard link to {member.linkname!r}, not to a file unpacked before it")
    return parent, source


def _unpack_member(
    archive: str, tar: tarfile.TarFile, member: tarfile.TarInfo, root: str, links: list[tuple[str, list[str]]]
) -> None:
    """One member at the place its name resolves to; links are recorded in ``links`` for the last check."""
    parts = _parts(member.name)
    if not parts:  # "./": the tree itself
        if member.isdir():
            return
        raise _refuse(archive, member.name, "is the tree itself")
    try:
        parent, source = _destination(archive, root, member, parts)
        _make_parents(root, parent)
        place = os.path.join(root, *parent, parts[-1])
        if member.isdir() and os.path.isdir(place) and not os.path.islink(place):
            return
        if os.path.lexists(place):
            os.unlink(place)  # an earlier member of that name, never written through (a dir: EISDIR)
        if member.isdir():
            os.mkdir(place, 0o755)
        elif member.issym():
            os.symlink(member.linkname, place)
            links.append((member.name, [*parent, parts[-1]]))
        elif source is not None:
            os.link(source, place, follow_symlinks=False)
        else:
            _write_file(tar, member, place)
    except OSError as exc:
        raise _refuse(archive, member.name, f"cannot be unpacked: {exc.strerror or exc}") from None


class _Bounded:
    """The decompressed tar stream for tarfile, refusing any one read over _MAX_READ: tarfile reads a pax or
    GNU long-name header whole, in one read of the size the header claims, before it can tell it is absurd."""

    def __init__(self, archive: str, stream: io.BufferedIOBase) -> None:
        self._archive = archive
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > _MAX_READ:
            raise BadInput(
                f"refusing {os.path.basename(self._archive)}: a header in it claims "
                f"{size} bytes, over {_MAX_READ >> 20} MiB",
                hint="nothing unpacked from it was kept",
            )
        return self._stream.read(size)

    def write(self, data: bytes) -> int:
        raise OSError(f"{self._archive} is open for reading")

    def tell(self) -> int:
        return self._stream.tell()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def close(self) -> None:
        self._stream.close()


@contextmanager
def _open_tar(archive: str) -> Iterator[tarfile.TarFile]:
    """The archive as a TarFile reading through _Bounded; the compression told by its first bytes."""
    with open(archive, "rb") as file:
        head = file.read(8)
    opener = next((opener for magic, opener in _OPENERS.items() if head.startswith(magic)), None)
    with opener(archive) if opener else open(archive, "rb") as stream:
        with tarfile.open(fileobj=_Bounded(archive, stream), mode="r:") as tar:
            yield tar


def _unpack_tar(archive: str, into: str) -> None:
    try:
        with _open_tar(archive) as tar:
            members = tar.getmembers()
            _check_tar(archive, members)
            links: list[tuple[str, list[str]]] = []
            for member in members:
                _unpack_member(archive, tar, member, into, links)
            for name, location in links:  # where each link leads now that every member is in place
                if _resolve(archive, into, [], "/".join(location), name) is None:
                    raise _refuse(archive, name, "is a symlink that leads out of the tree once unpacked")
    except _ERRORS as exc:
        raise BadInput(f"{archive} is not a readable sdist archive: {exc}") from None


def _unpack_zip(archive: str, into: str) -> None:
    """zipfile.extractall, once every name passed the checks: a zip member here is never a link."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.orig_filename != info.filename:
                    raise _refuse(archive, info.orig_filename, "is absolute or leads out of the tree")
                _check_name(archive, info.filename)
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


def _make_numbered(base: str, archive: str) -> str:
    """BASE, else BASE-2, BASE-3, ...: the first that mkdir can make."""
    for number in range(1, 1000):
        into = base if number == 1 else f"{base}-{number}"
        try:
            os.mkdir(into, 0o700)
            return into
        except FileExistsError:
            continue
        except OSError as exc:
            raise BadInput(f"cannot make a temp dir to unpack {archive}: {exc.strerror or exc}") from None
    raise BadInput(f"cannot make a temp dir to unpack {archive}: {base} to {base}-999 exist")


@contextmanager
def unpacked(archive: str) -> Iterator[str]:
    """The project dir of the archive unpacked into TMPDIR/sdist, removed when the block ends, however it ends.
    A fixed name: TMPDIR is the command's own dir (scratch.py), named by its inputs alone, and the backend
    sees this path (and may record it: a C extension's debug info does). One unpacked while another is
    still there (tools/bootstrap.py holds several) goes to sdist-2, sdist-3, ...: the same on every run."""
    into = _make_numbered(os.path.join(tempfile.gettempdir(), "sdist"), archive)
    try:
        (_unpack_zip if archive.lower().endswith(".zip") else _unpack_tar)(archive, into)
        yield _project_root(archive, into)
    finally:
        shutil.rmtree(into, ignore_errors=True)
