"""Two artifacts (wheels or sdists) compared member by member, with the likely cause of each difference.

``compare(first, second)`` answers whether the two files are byte-identical and, when they are not,
which members differ (name, size, sha256 on each side), what differs in the archive itself (member
order, timestamps, permissions, compression, the gzip header), and for each member a cause where a
common one can be told from the bytes alone: a build path recorded in it (a C extension's debug info,
a .pyc's source path), a timestamp (in METADATA, RECORD or PKG-INFO, or any text), the same lines in
another order, or else some other value (a random one, or one that follows the hash seed). The
stdlib only (zipfile, tarfile, hashlib): what a packager would otherwise run diffoscope for.
Used by ``--check-reproducible`` and meant for any caller that compares two builds.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import zipfile
from dataclasses import asdict, dataclass

_TIMESTAMP = re.compile(
    rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\b1[0-9]{9}\b|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d? \w{3} \d{4}"
)
_MAX_LINES = 3  # differing lines quoted per member


@dataclass(frozen=True)
class Member:
    """One member of an archive: its content and the archive's own record of it."""

    name: str
    size: int
    sha256: str
    mtime: str  # as the archive holds it: a zip's date_time, a tar's mtime
    mode: int  # permission bits (a zip's external_attr >> 16, a tar's mode)
    compression: str  # a zip's compress_type; "" in a tar
    owner: str = ""  # a tar's uid:gid uname:gname; "" in a zip


@dataclass(frozen=True)
class MemberDifference:
    """A member whose content differs, or that only one side has (its Member on the other side is None)."""

    name: str
    first: Member | None
    second: Member | None
    cause: str  # "build-path", "timestamp", "ordering", "content", "follows" (RECORD), "missing"
    hint: str
    lines: tuple[tuple[str, str], ...] = ()  # for text: the first differing lines, (first, second)


@dataclass(frozen=True)
class Comparison:
    """The answer: ``identical`` alone decides; the rest says where and why not."""

    first: str
    second: str
    identical: bool
    first_sha256: str
    second_sha256: str
    members: tuple[MemberDifference, ...]
    archive: tuple[str, ...]  # differences in the archive itself, one sentence each


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip_members(path: str) -> tuple[list[Member], dict[str, bytes], list[str]]:
    members, data, extra = [], {}, []
    with zipfile.ZipFile(path) as zf:
        if zf.comment:
            extra.append(f"comment {zf.comment!r}")
        for info in zf.infolist():
            content = zf.read(info)
            data[info.filename] = content
            members.append(
                Member(
                    info.filename,
                    len(content),
                    _sha256(content),
                    "%04d-%02d-%02d %02d:%02d:%02d" % info.date_time,
                    (info.external_attr >> 16) & 0o7777,
                    str(info.compress_type),
                )
            )
    return members, data, extra


def _tar_members(path: str) -> tuple[list[Member], dict[str, bytes], list[str]]:
    members, data, extra = [], {}, []
    with open(path, "rb") as f:
        head = f.read(10)
    if head[:2] == b"\x1f\x8b":  # the gzip header: its mtime (bytes 4-8) and the file name it may carry
        extra.append(f"gzip header mtime {int.from_bytes(head[4:8], 'little')}, flags {head[3]}")
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            source = tar.extractfile(info) if info.isreg() else None
            content = source.read() if source is not None else info.linkname.encode()
            data[info.name] = content
            owner = f"{info.uid}:{info.gid} {info.uname}:{info.gname}"
            members.append(
                Member(info.name, len(content), _sha256(content), str(info.mtime), info.mode & 0o7777, "", owner)
            )
    return members, data, extra


def _read(path: str) -> tuple[list[Member], dict[str, bytes], list[str]]:
    return _zip_members(path) if zipfile.is_zipfile(path) else _tar_members(path)


def _differing_lines(first: bytes, second: bytes) -> tuple[tuple[str, str], ...]:
    a, b = first.splitlines(), second.splitlines()
    pairs = [(x, y) for x, y in zip(a, b) if x != y]
    if len(a) != len(b):
        pairs.append((b"(%d lines)" % len(a), b"(%d lines)" % len(b)))
    return tuple(
        (x.decode("utf-8", "replace")[:200], y.decode("utf-8", "replace")[:200]) for x, y in pairs[:_MAX_LINES]
    )


def _is_text(data: bytes) -> bool:
    return b"\0" not in data[:8192]


def _cause(name: str, first: bytes, second: bytes, paths: tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[str, str]:
    """The likeliest cause of a member's difference, and the hint that goes with it."""
    for mine, data in ((paths[0], first), (paths[1], second)):
        found = [path for path in mine if path and path.encode() in data]
        if found:
            return "build-path", (
                f"it records the build path {found[0]} (a C extension's debug info, a .pyc's "
                "source path): `strings` finds it; for C, CFLAGS=-ffile-prefix-map=PATH=. drops it"
            )
    if _is_text(first) and _is_text(second):
        lines = _differing_lines(first, second)
        if sorted(first.splitlines()) == sorted(second.splitlines()):
            return "ordering", (
                "the same lines in another order: the backend writes them in the order a directory "
                "lists or a set iterates (PYTHONHASHSEED); sorting them fixes it"
            )
        if any(_TIMESTAMP.search(x.encode()) or _TIMESTAMP.search(y.encode()) for x, y in lines):
            return "timestamp", (
                "a timestamp differs: the backend writes the time of the build instead of SOURCE_DATE_EPOCH"
            )
    return "content", (
        "a value differs that is neither a path nor a time: a random value, or one that follows "
        "the hash seed (PYTHONHASHSEED), the locale, the time zone or the umask"
    )


def _record_follows(name: str, first: bytes, second: bytes, a: dict[str, Member], b: dict[str, Member]) -> bool:
    """A RECORD whose differing rows are all those of members that differ themselves."""
    if not name.endswith(".dist-info/RECORD"):
        return False
    rows = set(first.splitlines()) ^ set(second.splitlines())
    paths = {row.split(b",")[0].decode("utf-8", "replace") for row in rows}
    return all(path in a and path in b and a[path].sha256 != b[path].sha256 for path in paths)


def _member_differences(
    first: tuple[dict[str, Member], dict[str, bytes]],
    second: tuple[dict[str, Member], dict[str, bytes]],
    paths: tuple[tuple[str, ...], tuple[str, ...]],
) -> list[MemberDifference]:
    found: list[MemberDifference] = []
    for name in sorted(first[0].keys() | second[0].keys()):
        a, b = first[0].get(name), second[0].get(name)
        if a is not None and b is not None and a.sha256 == b.sha256:
            continue
        if a is None or b is None:
            found.append(
                MemberDifference(
                    name,
                    a,
                    b,
                    "missing",
                    f"only the {'second' if a is None else 'first'} "
                    "build has it: the backend's choice of files depends on the build",
                )
            )
            continue
        cause, hint = _cause(name, first[1][name], second[1][name], paths)
        if cause == "content" and _record_follows(name, first[1][name], second[1][name], first[0], second[0]):
            cause, hint = "follows", "RECORD holds the other members' hashes: it differs because they do"
        lines = _differing_lines(first[1][name], second[1][name]) if cause != "build-path" else ()
        found.append(MemberDifference(name, a, b, cause, hint, lines))
    return found


_RECORDED = (  # what an archive records of a member besides its bytes, and the usual cause of a difference
    (
        "timestamps",
        "mtime",
        "the backend stamps members with the build's time or the files' mtimes, not SOURCE_DATE_EPOCH",
    ),
    ("owners", "owner", "the backend records the user who builds: a fixed 0:0 root:root does not vary"),
    ("permissions", "mode", "the backend takes the modes of files the build made, which follow the umask"),
    ("compression", "compression", "the backend chooses the compression by something that varies"),
)


def _archive_differences(first: list[Member], second: list[Member], extra: tuple[list[str], list[str]]) -> list[str]:
    found = []
    common = [m.name for m in first if m.name in {n.name for n in second}]
    if common != [m.name for m in second if m.name in set(common)]:
        found.append("member order differs: the backend adds files in the order a directory lists")
    by_name = {m.name: m for m in second}
    for label, field, why in _RECORDED:
        names = [m.name for m in first if m.name in by_name and getattr(m, field) != getattr(by_name[m.name], field)]
        if names:
            a, b = getattr(next(m for m in first if m.name == names[0]), field), getattr(by_name[names[0]], field)
            shown = (oct(a), oct(b)) if field == "mode" else (a, b)
            found.append(f"{label} differ for {len(names)} member(s), e.g. {names[0]}: {shown[0]} vs {shown[1]}: {why}")
    if extra[0] != extra[1]:
        found.append(
            f"the archive's header differs: {'; '.join(extra[0]) or 'none'} vs {'; '.join(extra[1]) or 'none'}"
        )
    return found


def compare(
    first: str, second: str, first_paths: tuple[str, ...] = (), second_paths: tuple[str, ...] = ()
) -> Comparison:
    """Compare two artifacts of one kind (wheels are zips, sdists tars). ``first_paths`` and ``second_paths``
    are the paths each build ran at (its tree, its TMPDIR), looked for in the members' bytes.
    Raises OSError, zipfile.BadZipFile or tarfile.TarError for a file that is not such an artifact."""
    with open(first, "rb") as f:
        first_bytes = f.read()
    with open(second, "rb") as f:
        second_bytes = f.read()
    hashes = _sha256(first_bytes), _sha256(second_bytes)
    if first_bytes == second_bytes:
        return Comparison(first, second, True, *hashes, (), ())
    a_members, a_data, a_extra = _read(first)
    b_members, b_data, b_extra = _read(second)
    members = _member_differences(
        ({m.name: m for m in a_members}, a_data), ({m.name: m for m in b_members}, b_data), (first_paths, second_paths)
    )
    archive = _archive_differences(a_members, b_members, (a_extra, b_extra))
    if not members and not archive:
        archive = [
            "the archives differ in bytes that no member's record shows (its own structure: headers, extra fields)"
        ]
    return Comparison(first, second, False, *hashes, tuple(members), tuple(archive))


def render(comparison: Comparison) -> str:
    """The report as text, one line a fact, for ``details`` of the error."""
    lines = [
        f"first:  {comparison.first} sha256 {comparison.first_sha256}",
        f"second: {comparison.second} sha256 {comparison.second_sha256}",
    ]
    for diff in comparison.members:
        sides = [f"{m.size} bytes, sha256 {m.sha256[:16]}" if m else "absent" for m in (diff.first, diff.second)]
        lines.append(f"  member {diff.name}: {sides[0]} vs {sides[1]}; cause: {diff.cause}")
        lines.append(f"    hint: {diff.hint}")
        lines += [f"    - {a}\n    + {b}" for a, b in diff.lines]
    lines += [f"  archive: {text}" for text in comparison.archive]
    return "\n".join(lines)


def as_json(comparison: Comparison) -> dict[str, object]:
    """The report for --json: every field of the dataclasses, Members as dicts."""
    return asdict(comparison)


__all__ = ["Comparison", "Member", "MemberDifference", "as_json", "compare", "render"]
