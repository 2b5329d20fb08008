"""What a build's hooks used: the files they loaded, mapped to the distributions that own them.

The hook process reports, after each hook, the files of the modules it loaded
(_inside/loaded.py); every Python child of the hooks' own interpreter appends
its own at exit (the _shim sitecustomize). Each file is mapped here, in the
frontend, to the distribution whose file list holds it: RECORD; for an
.egg-info without one (Debian's, setup.py install's), installed-files.txt,
else top_level.txt (a file whose first component, or module name, is a top-level
name). Names are never guessed from module names: ``_distutils_hack`` and
``pkg_resources`` are setuptools', ``pyximport`` Cython's. Only the metadata
dirs in a sys.path entry holding a loaded file are read, each once.

The stdlib, the source tree and backend-path are no distributions; a file owned
by none (under no sys.path entry, or in no file list) is reported with its path.
Comparing with the declared closure (dependencies.py) gives what was used
without being declared, and what was declared but not seen used: use without
import (CMake reading a package's config files) is invisible, so "unused" is a
hint, never a verdict.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # with -x the dependency check, and packaging with it, is never imported
    from .dependencies import Resolved

IMPORT, CHILD = "import", "child process"  # and "entry point GROUP" (_inside/loaded.py)
LOADED_SUFFIX = ".loaded"  # beside the file _ISOBUILD_HOOK_PATH names: the children's reports (the shim)


@dataclass(frozen=True)
class Used:
    """A distribution the hooks used (``how``), or one declared and not seen used (``how`` None)."""

    name: str  # canonical
    version: str
    location: str  # the sys.path entry its metadata is in
    how: str | None


@dataclass(frozen=True)
class Usage:
    """What a build used; ``undeclared`` and ``unused`` are None when nothing was checked (-x)."""

    used: tuple[Used, ...]
    unowned: tuple[tuple[str, str], ...]  # (file, how): loaded, but in no distribution's file list
    undeclared: tuple[Used, ...] | None
    unused: tuple[Used, ...] | None


@dataclass(frozen=True)
class Owner:
    info: str  # the metadata dir
    location: str  # the sys.path entry it is in


class _Entry:
    """The distributions whose metadata is in one sys.path entry: each file they list, and the
    top-level names of those that list no files. Read lazily, until a file is found: the one whose
    name is the file's first component first (a guess that orders the reading, never decides it), so
    that a build reads a few file lists, not every one in a large site-packages. The files are read
    as the files they are (importlib.metadata's pathlib objects cost more than the reading itself)."""

    def __init__(self, entry: str) -> None:
        self.entry = entry
        self.files: dict[str, Owner] = {}
        self.tops: dict[str, Owner] = {}
        try:
            names = sorted(os.listdir(entry))
        except OSError:  # a zip, a file, a dir gone or unreadable: nothing to map
            names = []
        self.unread = {
            canonical(name.rsplit(".", 1)[0].split("-")[0]) + "\0" + name: name
            for name in names
            if name.endswith((".dist-info", ".egg-info"))
        }

    def _add(self, owner: Owner) -> None:
        files, tops = listed(owner)
        for path in files:
            self.files.setdefault(path, owner)
        for top in tops:
            self.tops.setdefault(top, owner)

    def _found(self, path: str, first: str) -> Owner | None:
        found = self.files.get(path)
        if found is None and self.tops:
            found = self.tops.get(first) or self.tops.get(first.partition(".")[0])
        return found

    def owner(self, path: str) -> Owner | None:
        first = path[len(self.entry.rstrip(os.sep)) + 1 :].split(os.sep)[0]
        guess = canonical(first.partition(".")[0]) + "\0"
        while True:
            found = self._found(path, first)
            if found is not None or not self.unread:
                return found
            key = next((key for key in self.unread if key.startswith(guess)), next(iter(self.unread)))
            try:
                self._add(Owner(os.path.join(self.entry, self.unread.pop(key)), self.entry))
            except (OSError, ValueError, csv.Error):  # unreadable or undecodable metadata: it owns nothing
                pass


def listed(owner: Owner) -> tuple[list[str], list[str]]:
    """The files a distribution lists (RECORD, else installed-files.txt), as paths; listing none, its
    top-level names (top_level.txt). Raises OSError, ValueError or csv.Error for unreadable metadata."""
    record = _text(owner.info, "RECORD")
    if record is not None:  # paths relative to the entry
        return [_joined(owner.location, row[0]) for row in csv.reader(record.splitlines()) if row], []
    installed = _text(owner.info, "installed-files.txt")
    if installed is not None:  # paths relative to the .egg-info dir
        return [_joined(owner.info, line.strip()) for line in installed.splitlines() if line.strip()], []
    return [], (_text(owner.info, "top_level.txt") or "").split()


def _text(info: str, name: str) -> str | None:
    """A metadata file's text; None if there is none (an .egg-info may be a file: PKG-INFO itself)."""
    try:
        with open(os.path.join(info, name), encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _joined(base: str, relative: str) -> str:
    """``base``/``relative`` as a loaded module's path is spelt: normalized only where it has to be."""
    if os.sep == "/" and not relative.startswith(("./", "../", "/")) and "/." not in relative and "//" not in relative:
        return base + "/" + relative  # as os.path.join, for the common case, at a fraction of its cost
    return os.path.normpath(os.path.join(base, relative))


def _within(path: str, directory: str) -> bool:
    """scratch.inside's rule as a prefix test on text: it runs for every file a build loaded, against every
    sys.path entry (thousands of calls a build), where os.path.commonpath would dominate the record's cost."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _entries_of(path: str, entries: Sequence[str]) -> list[str]:
    """The sys.path entries ``path`` is in, the innermost first: a site-packages inside the stdlib's dir
    is not the stdlib."""
    return sorted((entry for entry in entries if _within(path, entry)), key=len, reverse=True)


def children_report(hook_path_file: str) -> tuple[list[str], list[str]]:
    """What the Python children reported (one JSON line each): the files they loaded, and what
    --only-declared refused them; the report file is removed once read."""
    name = hook_path_file + LOADED_SUFFIX
    try:
        with open(name, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
        os.unlink(name)
    except OSError:  # no child of the hooks' interpreter ran (or reported)
        return [], []
    files: list[str] = []
    refused: list[str] = []
    for line in lines:
        try:
            report = json.loads(line)
            files += [f for f in report["files"] if isinstance(f, str)]
            refused += [r for r in report.get("refused", []) if isinstance(r, str)]
        except (ValueError, KeyError, TypeError, AttributeError):  # a child killed mid-write leaves half a line
            continue
    return files, refused


def name_and_version(owner: Owner) -> tuple[str, str]:
    """Name (canonical) and version from the metadata's headers (METADATA, or an .egg-info's PKG-INFO)."""
    headers: dict[str, str] = {}
    try:
        text = _text(owner.info, "METADATA") or _text(owner.info, "PKG-INFO") or ""
    except (OSError, ValueError) as exc:
        text = f"Version: (unreadable metadata: {exc})"
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version"):
            headers.setdefault(key, value.strip())
    name = headers.get("Name") or os.path.basename(owner.info).rsplit(".", 1)[0].split("-")[0]
    return canonical(name), headers.get("Version", "(unknown)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503, as packaging's canonicalize_name


def _rank(how: str) -> int:
    """A distribution loaded several ways is reported by the most direct: import, entry point, child."""
    return 0 if how == IMPORT else 2 if how == CHILD else 1


def used(
    loaded: Iterable[tuple[str, str]], entries: Sequence[str], excluded: Sequence[str], srcdir: str
) -> tuple[list[Used], list[tuple[str, str]]]:
    """The distributions owning the (file, how) pairs loaded, once each, by the most direct ``how``
    (_rank); files under ``excluded`` (the stdlib, backend-path) or the source tree are skipped."""
    owners: dict[Owner, str] = {}
    unowned: dict[str, str] = {}
    indexes: dict[str, _Entry] = {}
    by_dir: dict[str, list[str]] = {}  # a module's dir: the entries holding it (most share a few dirs)
    for file, how in loaded:
        path = os.path.normpath(os.path.join(srcdir, file))
        directory = os.path.dirname(path)
        holding = by_dir.get(directory)
        if holding is None:
            holding = by_dir[directory] = _entries_of(directory, [*entries, *excluded])
        entry = holding[0] if holding else None
        if entry is not None and entry in excluded:
            continue
        if _within(path, srcdir) and (entry is None or entry == srcdir or not _within(entry, srcdir)):
            continue  # the source tree's own (a build env inside it, on sys.path, is not)
        owner = None
        for outer in reversed(holding):  # the outermost owner first: a vendored copy is its vendor's
            owner = (indexes.get(outer) or indexes.setdefault(outer, _Entry(outer))).owner(path)
            if owner is not None:
                break
        if owner is None:
            unowned.setdefault(path, how)
        elif owner not in owners or _rank(how) < _rank(owners[owner]):
            owners[owner] = how
    found = [Used(*name_and_version(owner), owner.location, how) for owner, how in owners.items()]
    return sorted(found, key=lambda u: u.name), sorted(unowned.items())


def usage(
    reports: Sequence[Mapping[str, Any]],
    children: Sequence[str],
    hello_path: Sequence[str],
    backend_path: Sequence[str],
    srcdir: str,
    declared: Sequence[Resolved] | None,
) -> Usage:
    """The build's Usage: ``reports`` are the hook process's (_inside/loaded.py), ``children`` the files its
    children reported; compared with ``declared`` (the closure) unless that is None."""
    entries = list(
        dict.fromkeys(
            os.path.normpath(e) for e in [*hello_path, *(e for r in reports for e in r["sys_path"])] if os.path.isabs(e)
        )
    )
    stdlib = [os.path.normpath(e) for r in reports for e in r["stdlib"] if os.path.isabs(e)]
    loaded = [(f, r.get("how", {}).get(f, IMPORT)) for r in reports for f in r["files"]] + [
        (f, CHILD) for f in children
    ]
    found, unowned = used(loaded, entries, [*dict.fromkeys(stdlib), *backend_path], os.path.normpath(srcdir))
    if declared is None:
        return Usage(tuple(found), tuple(unowned), None, None)
    names = {dist.name for dist in declared}
    seen = {dist.name for dist in found}
    return Usage(
        tuple(found),
        tuple(unowned),
        tuple(u for u in found if u.name not in names),
        tuple(Used(d.name, d.version, d.location, None) for d in declared if d.name not in seen),
    )
