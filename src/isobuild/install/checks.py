"""Every wheel checked before anything is written: hostile or broken ones are refused (exit 7)."""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from email.message import Message
from email.parser import HeaderParser

from installer.exceptions import InstallerError
from installer.sources import WheelFile
from installer.utils import Scheme, parse_entrypoints, parse_wheel_filename
from packaging.utils import canonicalize_name

from ..errors import InstallFailed, RefusedWheel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .destination import Destination


SCHEME_KEYS = ("purelib", "platlib", "headers", "scripts", "data")


def _refuse(wheel: str, message: str) -> RefusedWheel:
    return RefusedWheel(f"refusing {os.path.basename(wheel)}: {message}", hint="nothing was written")


def _plain_member(name: str) -> bool:
    parts = name.split("/")
    return not (name.startswith("/") or "\\" in name or ":" in parts[0] or any(p in ("..", ".") for p in parts))


def inspect(path: str) -> tuple[str, str, str]:
    """Refuse a hostile or broken wheel; return (name, version, dist-info dir). Reads every member."""
    try:
        parsed = parse_wheel_filename(os.path.basename(path))
    except (InstallerError, ValueError):
        raise _refuse(path, "the file name is not NAME-VERSION(-BUILD)-PY-ABI-PLATFORM.whl") from None
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"not a readable zip file ({exc})") from None
    with zf:
        for info in zf.infolist():
            if not _plain_member(info.filename.rstrip("/")):
                raise _refuse(path, f"member {info.filename!r} is absolute or escapes its directory")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(path, f"member {info.filename!r} is a symlink")
        source = WheelFile(zf)
        try:
            dist_info = source.dist_info_dir
            source.validate_record(validate_contents=True)
        except InstallerError as exc:
            issues = getattr(exc, "issues", None) or [str(exc)]
            raise _refuse(path, "; ".join(i.replace(f"In {path}, ", "") for i in issues)) from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise _refuse(path, f"corrupt or truncated zip ({exc})") from None
        expected = f"{parsed.distribution}-{parsed.version}.dist-info"
        info_name, _, info_version = dist_info[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(info_name) != canonicalize_name(parsed.distribution) or info_version != parsed.version:
            raise _refuse(path, f"its .dist-info directory {dist_info!r} does not match the file name ({expected})")
        headers: dict[str, Message] = {}
        for filename in ("WHEEL", "METADATA"):
            try:
                text = source.read_dist_info(filename)
            except KeyError:
                raise _refuse(path, f"{dist_info}/{filename} is missing") from None
            except UnicodeDecodeError:
                raise _refuse(path, f"{dist_info}/{filename} is not UTF-8") from None
            headers[filename] = HeaderParser().parsestr(text)
        wheel_version = headers["WHEEL"].get("Wheel-Version", "")
        if not wheel_version.startswith("1.") or headers["WHEEL"].get("Root-Is-Purelib") not in ("true", "false"):
            raise _refuse(path, f"{dist_info}/WHEEL is malformed (Wheel-Version 1.x and Root-Is-Purelib required)")
        meta = headers["METADATA"]
        if canonicalize_name(meta.get("Name") or "") != canonicalize_name(parsed.distribution) or \
                (meta.get("Version") or "") != parsed.version:
            raise _refuse(path, f"{dist_info}/METADATA names {meta.get('Name')} {meta.get('Version')}, "
                                f"not the file name's {parsed.distribution} {parsed.version}")
        for name in zf.namelist():
            top, _, rest = name.partition("/")
            if top.endswith(".data") and rest:
                key = rest.split("/", 1)[0]
                if key not in SCHEME_KEYS:
                    raise _refuse(path, f"member {name!r} names an unknown scheme {key!r}")
        if "entry_points.txt" in source.dist_info_filenames:
            try:
                scripts = [entry[0] for entry in parse_entrypoints(source.read_dist_info("entry_points.txt"))]
            except Exception as exc:  # configparser's or the decoder's complaint, whatever its class
                raise _refuse(path, f"{dist_info}/entry_points.txt is malformed: {exc}") from None
            for script in scripts:
                if not _plain_member(script) or "/" in script or not script:
                    raise _refuse(path, f"console script name {script!r} is not a plain file name")
        return meta["Name"], parsed.version, dist_info


def precheck_collisions(wheel: str, destination: Destination) -> None:
    """Refuse before writing when a file exists (without --overwrite) or a member escapes its scheme dir."""
    with zipfile.ZipFile(wheel) as zf:
        source = WheelFile(zf)
        root = "purelib" if HeaderParser().parsestr(source.read_dist_info("WHEEL")).get(
            "Root-Is-Purelib") == "true" else "platlib"
        targets = []
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            top, _, rest = name.partition("/")
            if top.endswith(".data") and rest:
                key, _, sub = rest.partition("/")
                scheme, sub_path = Scheme(key), sub
            else:
                scheme, sub_path = Scheme(root), name
            try:
                targets.append(destination.staged(destination.final_path(scheme, sub_path)))
            except InstallFailed:
                raise _refuse(wheel, f"member {name!r} escapes its scheme directory") from None
        if "entry_points.txt" in source.dist_info_filenames:
            for script, *_ in parse_entrypoints(source.read_dist_info("entry_points.txt")):
                targets.append(destination.staged(destination.final_path(Scheme("scripts"), script)))
    if not destination.target.overwrite:
        for path in targets:
            if os.path.lexists(path):
                raise RefusedWheel(f"refusing {os.path.basename(wheel)}: {path} exists",
                                   hint="pass --overwrite to replace existing files; nothing was written")
