"""installer's destination with isobuild's shebangs, bytecode and a log of what was written, and the rollback."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable
from typing import Any, BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.scripts import Script
from installer.utils import Scheme, copyfileobj_with_hashing

from ..errors import InstallFailed, RefusedWheel
from ..scratch import inside
from .bytecode import Compiler
from .journal import Journal
from .scheme import merge_flags, shebang
from .target import Target, scheme_path


class Destination(SchemeDictionaryDestination):
    """installer's destination, plus: our shebangs, a journal of what was written, bytecode by the target."""

    def __init__(self, scheme_dict: dict[str, str], target: Target, journal: Journal) -> None:
        super().__init__(scheme_dict, interpreter=target.interpreter, script_kind="posix")
        self.target = target
        self.journal = journal
        self.compiler = Compiler(target, journal)

    def final_path(self, scheme: Scheme, path: str) -> str:
        final = scheme_path(self.scheme_dict[scheme], path)
        if final is None:
            raise InstallFailed(f"{path} would be written outside {self.scheme_dict[scheme]}")
        return final

    def confine(self, scheme: Scheme, directory: str) -> None:
        """The plan's rule (target.py) again, as the tree stands now: a link another process made
        since the plan is not followed out of the destination."""
        escape = self.target.escape(self.scheme_dict[scheme], directory)
        if escape is not None:
            raise RefusedWheel(
                f"{escape}: refusing to write into {directory}",
                hint="the link was made during the install; what it wrote was rolled back",
            )

    # Work-around: docs/upstream.md, "Writing files"
    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool) -> RecordEntry:
        """A new file by exclusive create; an existing one (--overwrite) replaced by rename (journal.py)."""
        final = self.final_path(scheme, path)
        target = self.target.staged(final)
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            self.confine(scheme, directory)  # mkdir must not follow a link out either
            self.journal.makedirs(directory)
        self.confine(scheme, directory)  # right before the create: a link made since the plan is not followed out
        replacing = os.path.lexists(target)
        if replacing and not self.target.overwrite:  # planned against, but another process was faster
            raise InstallFailed(f"{target} exists", hint="pass --overwrite to replace it")
        fd, temp = self.journal.open_replacement(target) if replacing else (self.journal.create(target), "")
        with os.fdopen(fd, "wb") as f:
            value, size = copyfileobj_with_hashing(stream, f, "sha256")
            if is_executable or scheme == "scripts":  # every script is made executable, whatever the zip says
                # installer's 0o777 & ~umask | 0o111: the file was made 0o666 & ~umask, so add 0o111
                os.fchmod(f.fileno(), stat.S_IMODE(os.fstat(f.fileno()).st_mode) | 0o111)
        if replacing:
            self.journal.commit_replacement(temp, target)
        if scheme in ("purelib", "platlib") and path.endswith(".py") and self.target.levels:
            self.confine(scheme, os.path.join(directory, "__pycache__"))  # where the compiler writes
            self.compiler.add(target, final)
        return RecordEntry(path, Hash("sha256", value), size)

    # Work-around: docs/upstream.md, "Script first lines"
    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        """A ``#!python`` script gets the real interpreter, keeping the rest of its line (``-E``)."""
        if scheme == "scripts" and stream.read(8) == b"#!python":
            rest = stream.readline().decode("utf-8", "replace")
            own = rest.lstrip("w").lstrip("0123456789.").strip()  # #!pythonw, #!python3.11 -E: as distlib reads it
            line = shebang(self.target.interpreter, merge_flags(self.target.shebang_flags, own))
            stream = io.BytesIO(line + stream.read())
        stream.seek(0)
        return self.write_to_fs(scheme, os.fspath(path), stream, is_executable)

    # Work-around: docs/upstream.md, "Entry-point scripts"
    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        """installer's script, generated for ``python``: its ``#!python`` line is the wheel spec's own
        placeholder, which write_file() turns into the target's line as for a wheel's own scripts."""
        _, data = Script(name, module, attr, section).generate("python", "posix")
        return self.write_file(Scheme("scripts"), name, io.BytesIO(data), is_executable=True)

    # Work-around: docs/upstream.md, "Bytecode in RECORD"
    def finalize_installation(
        self, scheme: Scheme, record_file_path: str, records: Iterable[tuple[Scheme, RecordEntry]]
    ) -> None:
        records = list(records)
        record_entry = records.pop()  # the RECORD's own entry, last, without hash
        for pyc, final in self.compiler.finish():
            with open(pyc, "rb") as f:
                value, size = copyfileobj_with_hashing(f, io.BytesIO(), "sha256")
            for key in ("purelib", "platlib"):
                root = os.path.abspath(self.scheme_dict[key])
                if inside(root, final):
                    rel = os.path.relpath(final, root).replace(os.sep, "/")
                    records.append((Scheme(key), RecordEntry(rel, Hash("sha256", value), size)))
                    break
        super().finalize_installation(scheme, record_file_path, [*records, record_entry])
