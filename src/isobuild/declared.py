"""--only-declared: what the hooks must not see, from the declared closure (dependencies.py).

Every distribution whose metadata is in a sys.path entry of the hooks and which
is not in the closure is hidden: its metadata (location, canonical name) and its
files, as ``roots``: for each file it lists, the shortest leading part of its
path that holds no file of a distribution that stays (a namespace package split
between a declared and a hidden distribution keeps its shared dir, loses the
hidden one's modules). A distribution listing no files is hidden by its
top-level names (top_level.txt). Every entry is looked in, the stdlib's too:
no CPython layout keeps distribution metadata there.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .dependencies import Resolved
from .usage import Owner, listed, name_and_version


@dataclass(frozen=True)
class Hidden:
    """What the hook process is told to hide (_inside/hidden.py)."""

    roots: tuple[str, ...]
    dists: tuple[tuple[str, str], ...]  # (location, canonical name)
    names: tuple[str, ...]  # canonical names, for the hint
    kept: tuple[Resolved, ...]  # the closure it leaves visible


def _owners(entry: str) -> list[Owner]:
    try:
        names = sorted(os.listdir(entry))
    except OSError:  # a zip, a file, a dir gone: nothing to hide there
        return []
    return [Owner(os.path.join(entry, name), entry) for name in names if name.endswith((".dist-info", ".egg-info"))]


def _prefixes(path: str, entry: str) -> Iterable[str]:
    """``path``'s leading parts under ``entry``, the shortest first, the path itself last."""
    parts = path[len(entry.rstrip(os.sep)) + 1 :].split(os.sep)
    for count in range(1, len(parts) + 1):
        yield os.path.join(entry, *parts[:count])


def _roots(entry: str, hidden: list[tuple[list[str], list[str]]], kept: list[list[str]]) -> set[str]:
    """The roots in ``entry`` of the hidden distributions' (files, top-level names), none holding a kept file."""
    shared = {
        prefix
        for files in kept
        for path in files
        if path.startswith(entry + os.sep)
        for prefix in _prefixes(path, entry)
    }
    roots: set[str] = set()
    for files, tops in hidden:
        roots.update(os.path.join(entry, top) for top in tops)
        for path in files:
            if not path.startswith(entry + os.sep) or path.endswith(".pyc"):
                continue  # outside the entry (scripts, data), or bytecode beside its source
            found = next((prefix for prefix in _prefixes(path, entry) if prefix not in shared), None)
            if found is not None:
                roots.add(found)
    return roots


def hidden(sys_path: Sequence[str], closure: Iterable[Resolved]) -> Hidden:
    """What to hide from hooks whose sys.path is ``sys_path`` so that only ``closure`` remains."""
    closure = tuple(closure)
    kept_names = {(os.path.normpath(dist.location), dist.name) for dist in closure}
    roots: set[str] = set()
    dists: list[tuple[str, str]] = []
    for entry in dict.fromkeys(os.path.normpath(e) for e in sys_path if os.path.isabs(e)):
        kept: list[list[str]] = []
        gone: list[tuple[list[str], list[str]]] = []
        for owner in _owners(entry):
            name = name_and_version(owner)[0]
            try:
                files, tops = listed(owner)
            except (OSError, ValueError, csv.Error):  # unreadable: its metadata hidden, its files unknown
                files, tops = [], []
            if (entry, name) in kept_names:
                kept.append(files)
            else:
                gone.append((files, tops))
                dists.append((entry, name))
        roots |= _roots(entry, gone, kept)
    return Hidden(tuple(sorted(roots)), tuple(dists), tuple(sorted({name for _, name in dists})), closure)
