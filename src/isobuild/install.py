"""Wheels into a scheme of the *target* interpreter, with scripts that run the real interpreter.

pypa/installer does the wheel logic (RECORD validation, scheme of each member,
entry points, RECORD writing). This module adds what a pipeline needs on top:
scheme paths asked of the target interpreter, shebangs with flags, bytecode
compiled by the target (its magic number) and recorded in RECORD, refusal of a
hostile wheel before anything is written, and rollback of a failed install.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, BinaryIO

from installer import install as installer_install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing, parse_entrypoints, parse_wheel_filename
from packaging.utils import canonicalize_name

from .errors import BadInput, InstallFailed, InterpreterError, RefusedWheel
from .hookprocess import RUNNER

SCHEME_KEYS = ("purelib", "platlib", "headers", "scripts", "data")
_SHEBANG_MAX = 127  # Linux's limit on a shebang line, as installer and distlib assume


@dataclass(frozen=True)
class Target:
    """Where and for which interpreter to install."""

    python: str
    interpreter: str  # what scripts' shebangs run
    shebang_flags: str = ""
    prefix: str | None = None
    scheme: str | None = None
    destdir: str | None = None
    levels: tuple[int, ...] = (0,)
    invalidation_mode: str | None = None
    jobs: int = 0
    overwrite: bool = False
    installer_name: str = "isobuild"
    requested: bool = False


@dataclass
class Installed:
    wheel: str
    name: str
    version: str
    dist_info: str  # where it was written (inside DESTDIR when given)
    files: int
    scheme: dict[str, str] = field(default_factory=dict)


def scheme_paths(target: Target) -> tuple[str, dict[str, str]]:
    """The target's own sysconfig paths: posix_prefix under --prefix unless --scheme says otherwise."""
    argv = [target.python, "-S", "-s", RUNNER, "scheme", target.scheme or "", target.prefix or ""]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise InterpreterError(f"cannot run the target interpreter {target.python}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise InterpreterError(f"{target.python} could not report its install scheme", details=proc.stderr.strip())
    reply = json.loads(proc.stdout)
    if "error" in reply:
        raise BadInput(reply["error"])
    paths = reply["paths"]
    return reply["scheme"], {
        "purelib": paths["purelib"],
        "platlib": paths["platlib"],
        "scripts": paths["scripts"],
        "data": paths["data"],
        "headers": paths["include"],
    }


def shebang(interpreter: str, flags: str = "") -> bytes:
    """``#!interpreter flags``; the /bin/sh trampoline when that is too long or has a space in the path."""
    line = f"#!{interpreter}" + (f" {flags}" if flags else "")
    if " " not in interpreter and len(line) + 1 <= _SHEBANG_MAX:
        return line.encode() + b"\n"
    import shlex

    command = " ".join([shlex.quote(interpreter), *([flags] if flags else [])])
    return b"#!/bin/sh\n'''exec' " + command.encode() + b' "$0" "$@"\n' + b"' '''\n"


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


class _Destination(SchemeDictionaryDestination):
    """installer's destination, plus: our shebangs, a log of what was written, no in-process bytecode."""

    def __init__(self, scheme_dict: dict[str, str], target: Target, written: list[str]) -> None:
        super().__init__(scheme_dict, interpreter=target.interpreter, script_kind="posix")
        self.target = target
        self.written = written
        self.compiler = _Compiler(target)

    def final_path(self, scheme: Scheme, path: str) -> str:
        root = os.path.abspath(self.scheme_dict[scheme])
        final = os.path.abspath(os.path.join(root, path))
        if os.path.commonpath([root, final]) != root:
            raise InstallFailed(f"{path} would be written outside {root}")
        return final

    def staged(self, final: str) -> str:
        destdir = self.target.destdir
        return os.path.join(destdir, final.lstrip(os.sep)) if destdir else final

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool) -> RecordEntry:
        final = self.final_path(scheme, path)
        target = self.staged(final)
        if os.path.lexists(target) and not self.target.overwrite:
            raise InstallFailed(f"{target} exists", hint="pass --overwrite to replace it")
        missing = []
        parent = os.path.dirname(target)
        while not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        # Recorded before they are made, so that an interrupt in between leaves nothing
        # unrecorded; the rollback skips what does not exist. A directory in a file's
        # way is not recorded: open() fails on it, and it is not ours to remove.
        for directory in reversed(missing):
            self.written.append(directory)
            os.mkdir(directory)
        if not os.path.isdir(target):
            self.written.append(target)
        with open(target, "wb") as f:
            value, size = copyfileobj_with_hashing(stream, f, "sha256")
        if is_executable:
            mode = os.stat(target).st_mode
            os.chmod(target, mode | ((mode & 0o444) >> 2))
        if scheme in ("purelib", "platlib") and path.endswith(".py"):
            self.compiler.add(target, final)
        return RecordEntry(path, Hash("sha256", value), size)

    def write_file(self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO,
                   is_executable: bool) -> RecordEntry:
        if scheme == "scripts" and stream.read(8) == b"#!python":
            stream.readline()
            stream = io.BytesIO(shebang(self.target.interpreter, self.target.shebang_flags) + stream.read())
        stream.seek(0)
        return self.write_to_fs(scheme, os.fspath(path), stream, is_executable)

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        _, data = Script(name, module, attr, section).generate("/placeholder", "posix")
        body = data.split(b"\n", 1)[1]
        line = shebang(self.target.interpreter, self.target.shebang_flags)
        return self.write_to_fs(Scheme("scripts"), name, io.BytesIO(line + body), is_executable=True)

    def finalize_installation(self, scheme: Scheme, record_file_path: str,
                              records: Iterable[tuple[Scheme, RecordEntry]]) -> None:
        records = list(records)
        record_entry = records.pop()  # the RECORD's own entry, last, without hash
        for pyc, final in self.compiler.finish():
            self.written.append(pyc)
            with open(pyc, "rb") as f:
                value, size = copyfileobj_with_hashing(f, io.BytesIO(), "sha256")
            for key in ("purelib", "platlib"):
                root = os.path.abspath(self.scheme_dict[key])
                if os.path.commonpath([root, final]) == root:
                    rel = os.path.relpath(final, root).replace(os.sep, "/")
                    records.append((Scheme(key), RecordEntry(rel, Hash("sha256", value), size)))
                    break
        super().finalize_installation(scheme, record_file_path, [*records, record_entry])


class _Compiler:
    """The target interpreter byte-compiling (its magic number) each source as soon as it is written.

    Unpacking and compiling overlap: while this process writes the wheel's
    files, the compiler and its pool use the other cores.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # not a pipe: compile warnings could fill it while we write
        self.sent: list[str] = []

    def add(self, written: str, final: str) -> None:
        """``final`` is the path without DESTDIR, recorded in the .pyc."""
        if not self.target.levels:
            return
        if self.proc is None:
            try:  # its own session: a Ctrl-C meant for isobuild must not cut off what the rollback needs
                self.proc = subprocess.Popen([self.target.python, "-S", "-s", RUNNER, "compile"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=self.log, start_new_session=True)
            except OSError as exc:
                raise InterpreterError(f"cannot run the target interpreter {self.target.python}: {exc.strerror}") from None
            self._send({"levels": list(self.target.levels), "mode": self.target.invalidation_mode,
                        "jobs": self.target.jobs or os.cpu_count() or 1})
        self._send([written, final])
        self.sent.append(written)

    def _send(self, item: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(item).encode() + b"\n")
        except BrokenPipeError:
            pass  # finish() says how it ended

    def finish(self) -> list[tuple[str, str]]:
        """Wait for the last source; return (written pyc, final pyc) pairs."""
        if self.proc is None:
            self.log.close()
            return []
        try:
            out, _ = self.proc.communicate()
        except BrokenPipeError:  # its stdin, closed by communicate(): it is gone already
            out = b""
            self.proc.wait()
        self.log.seek(0)
        errors = self.log.read().decode(errors="replace").strip()
        self.log.close()
        if self.proc.returncode != 0:
            raise InstallFailed(f"{self.target.python} failed to compile bytecode", details=errors)
        destdir = self.target.destdir
        written: list[str] = [pyc for pyc, _source in json.loads(out)]
        return [(pyc, "/" + os.path.relpath(pyc, destdir) if destdir else pyc) for pyc in written]

    def abandon(self) -> list[str]:
        """After a failure: stop it at once (its own session: kill the group) and list, for the
        rollback, every .pyc it may have written for the sources it was sent."""
        if self.proc is not None and self.proc.returncode is None:
            import signal

            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.log.close()
        found = []
        for source in self.sent:
            cache = os.path.join(os.path.dirname(source), "__pycache__")
            stem = os.path.basename(source)[:-3] + "."
            try:  # NAME.TAG[.opt-N].pyc, and py_compile's temp files NAME.TAG[.opt-N].pyc.NNN
                found += [os.path.join(cache, n) for n in os.listdir(cache) if n.startswith(stem) and ".pyc" in n]
            except OSError:
                pass
        return found


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait (blocked, not lost) until the block ends; in the main thread only."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _rollback(written: list[str]) -> None:
    for path in reversed(written):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
            if os.path.basename(os.path.dirname(path)) == "__pycache__":
                os.rmdir(os.path.dirname(path))  # made by the compiler, unless other .pyc files are left in it
        except OSError:
            pass


def parse_levels(text: str, no_compile: bool) -> tuple[int, ...]:
    try:
        levels = () if no_compile else tuple(sorted({int(x) for x in text.split(",")}))
    except ValueError:
        raise BadInput(f"--optimize {text!r}: give levels such as 0,1,2") from None
    if any(level not in (0, 1, 2) for level in levels):
        raise BadInput(f"--optimize {text!r}: levels are 0, 1 and 2")
    return levels


def install_paths(paths: Sequence[str], target: Target, build: Callable[[str], str]) -> list[Installed]:
    """Install wheel files, or build the one source directory's wheel (``build(outdir)``) and install that."""
    with tempfile.TemporaryDirectory(prefix="isobuild-install-") as built:
        if os.path.isdir(paths[0]):
            if len(paths) > 1:
                raise BadInput("install takes either one SRCDIR or wheel files")
            paths = [build(built)]
        for wheel in paths:
            if not os.path.isfile(wheel):
                raise BadInput(f"{wheel}: no such wheel file or source directory")
        return install(paths, target)


def install(wheels: Sequence[str], target: Target) -> list[Installed]:
    """Check every wheel first; then install them all, or (on any failure) none of them."""
    checked = [(wheel, *inspect(wheel)) for wheel in wheels]
    scheme_name, scheme = scheme_paths(target)
    written: list[str] = []
    results = []
    destination: _Destination | None = None
    try:
        for wheel, name, version, dist_info in checked:
            destination = _Destination(scheme, target, written)
            _precheck_collisions(wheel, destination)
            extra = {"INSTALLER": f"{target.installer_name}\n".encode()}
            if target.requested:
                extra["REQUESTED"] = b""
            before = len(written)
            with WheelFile.open(Path(wheel)) as source:
                installer_install(source, destination, extra)
            info_dir = next(p for p in written[before:] if p.endswith(f"{dist_info}/RECORD"))
            results.append(Installed(wheel, name, version, os.path.dirname(info_dir),
                                     sum(1 for p in written[before:] if not os.path.isdir(p)),
                                     {"scheme": scheme_name, **scheme}))
    except BaseException as exc:
        with _signals_deferred():  # a second Ctrl-C must not cut the rollback short
            if destination is not None:
                written.extend(destination.compiler.abandon())
            _rollback(written)
        if isinstance(exc, OSError):
            raise InstallFailed(f"install failed and was rolled back: {exc}") from None
        raise
    return results


def _precheck_collisions(wheel: str, destination: _Destination) -> None:
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
