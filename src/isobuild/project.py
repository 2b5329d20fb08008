"""The project's build configuration: pyproject.toml's [build-system], validated up front.

The checks and messages are build's (ProjectBuilder's table validation, its
legacy default), plus what it leaves to chance: the position of bad TOML or
of bytes that are not UTF-8, and backend-path entries that are absolute,
outside the tree or missing. build itself is not imported: its import alone
costs more than isobuild's whole start-up (benchmarks/, and the README's figures).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from .errors import BadInput
from .scratch import inside

# Imported where used (lazy): a command that does not reach that code does not pay for it.
#   tomllib (tomli before 3.11): only where there is a pyproject.toml to read
#   difflib: only for a key that is unknown (a typo's suggestion)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# PEP 517's fallback, with pip's and build's requirement for it.
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ["setuptools >= 40.8.0"]


# NamedTuples, as builder.py's records: the setup the hook process waits for is sent once the project is
# read, and dataclasses' import (inspect) would come before it.
class BuildSystem(NamedTuple):
    """[build-system] as build validates it, with the warnings it gives (a typo, an unknown key)."""

    requires: list[str]
    backend: str
    backend_path: list[str]  # as written: relative to the source tree
    warnings: list[str]


class Project(NamedTuple):
    """The project's build configuration, checked."""

    srcdir: str
    requires: list[str]
    backend: str
    backend_path: list[str]  # absolute
    warnings: tuple[str, ...] = ()
    dependency_groups: Mapping[str, Any] = MappingProxyType({})  # PEP 735's [dependency-groups], as written

    @property
    def display(self) -> str:
        return os.path.join(self.srcdir, "pyproject.toml")


MAX_SIZE = 1 << 20  # pyproject.toml files are a few KiB; a link to /dev/zero must not read without end


def _read_regular(path: str) -> bytes:
    """The file's bytes, if it is a regular file of sane size (O_NONBLOCK: a FIFO must not hang the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"{path} is not a regular file (a FIFO, a device or a directory)")
        if info.st_size > MAX_SIZE:
            raise BadInput(f"{path} is {info.st_size} bytes; isobuild reads at most {MAX_SIZE}")
        try:
            return f.read(MAX_SIZE + 1)
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None


def _load_toml(path: str) -> Mapping[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # lazy: see the top
    else:
        import tomli as tomllib  # lazy: see the top
    raw = _read_regular(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BadInput(
            f"{path} is not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column}",
            hint="TOML files must be encoded as UTF-8",
        ) from None
    try:
        data: Mapping[str, Any] = tomllib.loads(text)
    except RecursionError:
        raise BadInput(f"{path} is not valid TOML: it nests too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        where = "" if "line" in str(exc) else f" (line {text.count(chr(10)) + 1} is the end of the file)"
        raise BadInput(f"{path} is not valid TOML: {exc}{where}") from None
    return data


def _check_backend_path(srcdir: str, entries: list[str]) -> list[str]:
    where = os.path.join(srcdir, "pyproject.toml")
    absolute = []
    for entry in entries:
        if "\0" in entry:
            raise BadInput(f"{where}: build-system.backend-path entry {entry!r} contains a NUL character")
        if os.path.isabs(entry):
            raise BadInput(
                f"{where}: build-system.backend-path entry {entry!r} is absolute; it must be relative to {srcdir}"
            )
        path = os.path.normpath(os.path.join(srcdir, entry))
        if not inside(srcdir, path):
            raise BadInput(
                f"{where}: build-system.backend-path entry {entry!r} points outside the source tree {srcdir}"
            )
        if not os.path.isdir(path):
            raise BadInput(f"{where}: build-system.backend-path entry {entry!r} does not exist or is not a directory")
        absolute.append(path)
    return absolute


def _is_backend(text: str) -> bool:
    """PEP 517's form: a dotted module path, optionally ``:`` and a dotted object path."""
    module, colon, obj = text.partition(":")
    parts = module.strip().split(".") + (obj.strip().split(".") if colon else [])
    return all(part.isidentifier() for part in parts)


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


BUILD_SYSTEM_KEYS = ("requires", "build-backend", "backend-path")


def _misspelt(found: Any, wanted: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, what it looks like a misspelling of): as build warns "did you mean 'build-system'?"."""
    unknown = [key for key in found if isinstance(key, str) and key not in wanted]
    if not unknown:
        return []
    import difflib  # lazy: see the top

    pairs = []
    for key in unknown:
        near = difflib.get_close_matches(key.replace("_", "-").lower(), wanted, n=1, cutoff=0.75)
        if near:
            pairs.append((key, near[0]))
    return pairs


def _build_system(path: str, data: Mapping[str, Any]) -> BuildSystem:
    """[build-system] as build validates it."""
    if "build-system" not in data:
        notes = [
            f"{path}: [{key}] is not [build-system]: did you mean 'build-system'? (building as a legacy "
            "setuptools project)"
            for key, _ in _misspelt(data, ("build-system",))
        ]
        return BuildSystem(list(LEGACY_REQUIRES), LEGACY_BACKEND, [], notes)
    table = data["build-system"]
    if not isinstance(table, dict):
        raise BadInput(f"{path}: `build-system` must be a table")
    if "requires" not in table:
        near = [key for key, wanted in _misspelt(table, BUILD_SYSTEM_KEYS) if wanted == "requires"]
        raise BadInput(
            f"{path}: `requires` is a required property of [build-system]",
            hint=f"[build-system] has {near[0]!r}: did you mean 'requires'?" if near else None,
        )
    if not _is_strings(table["requires"]):
        raise BadInput(f"{path}: `requires` must be an array of strings")
    backend = table.get("build-backend", LEGACY_BACKEND)
    if not isinstance(backend, str):
        raise BadInput(f"{path}: `build-backend` must be a string")
    if not _is_backend(backend):
        raise BadInput(f"{path}: `build-backend` {backend!r} is not MODULE or MODULE:OBJECT (dotted Python names)")
    backend_path = table.get("backend-path", [])
    if not _is_strings(backend_path):
        raise BadInput(f"{path}: `backend-path` must be an array of strings")
    unknown = sorted(set(table) - set(BUILD_SYSTEM_KEYS))
    notes = [f"{path}: unknown [build-system] keys ignored: {', '.join(unknown)}"] if unknown else []
    notes += [
        f"{path}: [build-system] key {key!r}: did you mean {near!r}?"
        for key, near in _misspelt(table, BUILD_SYSTEM_KEYS)
    ]
    return BuildSystem(list(table["requires"]), backend, backend_path, notes)


def require_srcdir(srcdir: str) -> None:
    if not os.path.isdir(srcdir):
        what = "does not exist" if not os.path.exists(srcdir) else "is not a directory"
        raise BadInput(f"source directory {srcdir} {what}")


def load(srcdir: str) -> Project:
    """Read and check SRCDIR's configuration; requirement strings are checked by the dependency check."""
    require_srcdir(srcdir)
    srcdir = os.path.abspath(srcdir)
    pyproject_path = os.path.join(srcdir, "pyproject.toml")
    if os.path.exists(pyproject_path):
        data = _load_toml(pyproject_path)
    elif os.path.exists(os.path.join(srcdir, "setup.py")):
        data = {}
    else:
        raise BadInput(
            f"{srcdir} has neither pyproject.toml nor setup.py",
            hint="point isobuild at the directory that holds the project's pyproject.toml",
        )
    system = _build_system(pyproject_path, data)
    groups = data.get("dependency-groups", {})
    if not isinstance(groups, dict):
        raise BadInput(f"{pyproject_path}: `dependency-groups` must be a table")
    return Project(
        srcdir,
        system.requires,
        system.backend,
        _check_backend_path(srcdir, system.backend_path),
        tuple(system.warnings),
        groups,
    )
