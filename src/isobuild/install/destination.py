"""installer's destination with isobuild's shebangs, bytecode and a log of what was written, and the rollback."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.utils import Scheme, copyfileobj_with_hashing

from ..errors import InstallFailed
from .bytecode import Compiler
from .journal import Journal
from .scheme import merge_flags, shebang
from .target import Target


class Destination(SchemeDictionaryDestination):
    """installer's destination, plus: our shebangs, a journal of what was written, bytecode by the target."""

    def __init__(self, scheme_dict: dict[str, str], target: Target, journal: Journal) -> None:
        super().__init__(scheme_dict, interpreter=target.interpreter, script_kind="posix")
        self.target = target
        self.journal = journal
        self.compiler = Compiler(target, journal)

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
        """A new file by exclusive create; an existing one (--overwrite) replaced by rename (journal.py)."""
        final = self.final_path(scheme, path)
        target = self.staged(final)
        self.journal.makedirs(os.path.dirname(target))
        replacing = os.path.lexists(target)
        if replacing and not self.target.overwrite:  # planned against, but another process was faster
            raise InstallFailed(f"{target} exists", hint="pass --overwrite to replace it")
        fd, temp = self.journal.open_replacement(target) if replacing else (self.journal.create(target), "")
        with os.fdopen(fd, "wb") as f:
            value, size = copyfileobj_with_hashing(stream, f, "sha256")
            if is_executable or scheme == "scripts":  # as pip: whatever the zip says, a script is run
                mode = os.fstat(f.fileno()).st_mode
                os.fchmod(f.fileno(), mode | ((mode & 0o444) >> 2))
        if replacing:
            self.journal.commit_replacement(temp, target)
        if scheme in ("purelib", "platlib") and path.endswith(".py"):
            self.compiler.add(target, final)
        return RecordEntry(path, Hash("sha256", value), size)

    def write_file(self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO,
                   is_executable: bool) -> RecordEntry:
        """A ``#!python`` script gets the real interpreter, keeping the rest of its line (``-E``)."""
        if scheme == "scripts" and stream.read(8) == b"#!python":
            rest = stream.readline().decode("utf-8", "replace")
            own = rest.lstrip("w").lstrip("0123456789.").strip()  # #!pythonw, #!python3.11 -E: as distlib reads it
            line = shebang(self.target.interpreter, merge_flags(self.target.shebang_flags, own))
            stream = io.BytesIO(line + stream.read())
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
            with open(pyc, "rb") as f:
                value, size = copyfileobj_with_hashing(f, io.BytesIO(), "sha256")
            for key in ("purelib", "platlib"):
                root = os.path.abspath(self.scheme_dict[key])
                if os.path.commonpath([root, final]) == root:
                    rel = os.path.relpath(final, root).replace(os.sep, "/")
                    records.append((Scheme(key), RecordEntry(rel, Hash("sha256", value), size)))
                    break
        super().finalize_installation(scheme, record_file_path, [*records, record_entry])
