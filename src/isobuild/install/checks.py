"""Every wheel checked before anything is written: hostile or broken ones are refused (exit 7)."""

from __future__ import annotations

import csv
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry, parse_record_file
from installer.sources import WheelFile
from installer.utils import parse_entrypoints
from packaging.tags import Tag
from packaging.utils import canonicalize_name

from ..errors import RefusedWheel
from ..wheelname import SHAPE, wheel_name

SCHEME_KEYS = ("purelib", "platlib", "headers", "scripts", "data")


def refuse(wheel: str, message: str) -> RefusedWheel:
    return RefusedWheel(f"refusing {os.path.basename(wheel)}: {message}", hint="nothing was written")


def _plain_member(name: str) -> bool:
    parts = name.split("/")
    return not (name.startswith("/") or "\\" in name or ":" in parts[0] or any(p in ("..", ".") for p in parts))


@dataclass(frozen=True)
class Checked:
    """A wheel that passed inspect(): what the rest of the install needs to know of it."""

    path: str
    name: str  # as METADATA spells it
    version: str
    dist_info: str
    root_scheme: str  # purelib or platlib
    tags: frozenset[Tag]
    scripts: tuple[tuple[str, str], ...]  # (name, section) of each entry point script
    notes: tuple[str, ...] = ()


def _wheel_version(path: str, dist_info: str, text: str) -> str | None:
    """The wheel spec: refuse a greater major version; a greater minor one deserves a warning."""
    try:
        major, minor = (int(part) for part in text.split("."))
    except ValueError:
        raise refuse(path, f"{dist_info}/WHEEL is malformed: no valid Wheel-Version ({text!r})") from None
    if major > 1:
        raise refuse(path, f"{dist_info}/WHEEL says Wheel-Version {text}: this installer knows 1.x")
    if major == 1 and minor > 0:
        return f"{os.path.basename(path)}: Wheel-Version {text} is newer than 1.0; installing it as 1.0"
    return None


def _headers(path: str, source: WheelFile, dist_info: str) -> dict[str, Message]:
    headers: dict[str, Message] = {}
    for filename in ("WHEEL", "METADATA"):
        try:
            text = source.read_dist_info(filename)
        except KeyError:
            raise refuse(path, f"{dist_info}/{filename} is missing") from None
        except UnicodeDecodeError:
            raise refuse(path, f"{dist_info}/{filename} is not UTF-8") from None
        headers[filename] = HeaderParser().parsestr(text)
    return headers


# What zipfile can read: no zstd (3.14+), no encryption.
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
# The wheel spec: sha256 or stronger; md5 and sha1 are not permitted.
_HASHES = {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}


def _control(text: str) -> bool:
    return any(ord(char) < 32 or ord(char) == 127 for char in text)


# Work-around: docs/upstream.md, "Member names"
def _members(path: str, zf: zipfile.ZipFile) -> None:
    """Every member name checked before installer sees it (installer loops forever on some)."""
    for info in zf.infolist():
        name = info.filename
        if info.orig_filename != name or _control(name):  # zipfile cuts a name at its NUL
            raise refuse(path, f"member {info.orig_filename!r} has a NUL or control character in its name")
        if not _plain_member(name.rstrip("/")):
            raise refuse(path, f"member {name!r} is absolute or escapes its directory")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise refuse(path, f"member {name!r} is a symlink")
        if info.compress_type not in _COMPRESSIONS or info.flag_bits & 0x1:
            raise refuse(path, f"member {name!r} is encrypted or compressed in a way zipfile cannot read")
        top, _, rest = name.partition("/")
        if not top.endswith(".data") or name.endswith("/"):
            continue
        key, _, sub = rest.partition("/")
        if not sub:
            raise refuse(path, f"member {name!r} names no scheme and file inside {top}/")
        if key not in SCHEME_KEYS:
            raise refuse(path, f"member {name!r} names an unknown scheme {key!r}")


# Work-around: docs/upstream.md, "RECORD rows"
def _record(path: str, source: WheelFile, dist_info: str) -> None:
    """RECORD as the spec has it: each path once, hashes sha256 or stronger (installer checks the rest)."""
    try:
        rows = list(parse_record_file(source.read_dist_info("RECORD").splitlines()))
    except InvalidRecordEntry as exc:  # not an InstallerError, in installer 0.7 and 1.x alike
        row = ",".join(exc.elements)
        raise refuse(path, f"{dist_info}/RECORD has a malformed row {row!r} ({'; '.join(exc.issues)})") from None
    except csv.Error as exc:  # a NUL in RECORD, before Python 3.11
        raise refuse(path, f"{dist_info}/RECORD is not CSV: {exc}") from None
    except (KeyError, UnicodeDecodeError, InstallerError, ValueError):
        return  # validate_record() says what is wrong
    seen = set()
    for row_path, row_hash, _ in rows:
        if row_path in seen:
            raise refuse(path, f"{dist_info}/RECORD lists {row_path!r} twice")
        seen.add(row_path)
        algorithm = row_hash.partition("=")[0] if row_hash else ""
        if algorithm and algorithm not in _HASHES:
            raise refuse(
                path,
                f"{dist_info}/RECORD hashes {row_path!r} with {algorithm}: the wheel spec wants sha256 or stronger",
            )


def _scripts(path: str, source: WheelFile, dist_info: str) -> tuple[tuple[str, str], ...]:
    if "entry_points.txt" not in source.dist_info_filenames:
        return ()
    # Work-around: docs/upstream.md, "entry_points.txt"
    try:
        entries = [
            (name, section) for name, _, _, section in parse_entrypoints(source.read_dist_info("entry_points.txt"))
        ]
    except Exception as exc:  # configparser's or the decoder's complaint, whatever its class
        raise refuse(path, f"{dist_info}/entry_points.txt is malformed: {exc}") from None
    for name, _ in entries:
        if not _plain_member(name) or "/" in name or not name or _control(name):
            raise refuse(path, f"console script name {name!r} is not a plain file name")
    return tuple(entries)


def inspect(path: str) -> Checked:
    """Refuse a hostile or broken wheel before anything is written. Reads every member."""
    parsed = wheel_name(path)
    if parsed is None:
        raise refuse(path, f"the file name is not {SHAPE}")
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise refuse(path, f"not a readable zip file ({exc})") from None
    with zf:
        _members(path, zf)
        source = WheelFile(zf)
        try:
            dist_info = source.dist_info_dir
            _record(path, source, dist_info)
            source.validate_record(validate_contents=True)
        except InstallerError as exc:
            issues = getattr(exc, "issues", None) or [str(exc)]
            raise refuse(path, "; ".join(i.replace(f"In {path}, ", "") for i in issues)) from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise refuse(path, f"corrupt or truncated zip ({exc})") from None
        expected = f"{parsed.project}-{parsed.version}.dist-info"
        if not parsed.names(dist_info):
            raise refuse(path, f"its .dist-info directory {dist_info!r} does not match the file name ({expected})")
        headers = _headers(path, source, dist_info)
        note = _wheel_version(path, dist_info, headers["WHEEL"].get("Wheel-Version", "").strip())
        root = headers["WHEEL"].get("Root-Is-Purelib", "").strip().lower()
        if root not in ("true", "false"):
            raise refuse(path, f"{dist_info}/WHEEL is malformed (Root-Is-Purelib must be true or false)")
        meta = headers["METADATA"]
        if canonicalize_name(meta.get("Name") or "") != parsed.name or (meta.get("Version") or "") != parsed.version:
            raise refuse(
                path,
                f"{dist_info}/METADATA names {meta.get('Name')} {meta.get('Version')}, "
                f"not the file name's {parsed.project} {parsed.version}",
            )
        scripts = _scripts(path, source, dist_info)
    return Checked(
        path,
        str(meta["Name"]),
        parsed.version,
        dist_info,
        "purelib" if root == "true" else "platlib",
        parsed.tags,
        scripts,
        (note,) if note else (),
    )


def check_tags(checked: Checked, supported: set[Tag], python: str) -> None:
    """Refuse a wheel none of whose tags the target supports (packaging's rules; see scheme.py)."""
    if not checked.tags & supported:
        shown = ", ".join(sorted(str(tag) for tag in checked.tags))
        raise RefusedWheel(
            f"refusing {os.path.basename(checked.path)}: its tags ({shown}) are not supported by {python}",
            hint="pass --no-tag-check to install it anyway (cross-builds, staging); nothing was written",
        )
