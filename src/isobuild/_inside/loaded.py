"""What the hooks loaded: after each hook, the files of the modules new in sys.modules since the last.

The frontend (usage.py) maps each file to the distribution that owns it. It
goes by sys.modules at the end of each hook, not by import audit events:
importlib.import_module, which loads entry points, fires none. Built-in and
frozen modules have no file; isobuild's own (this package, and the script run
as __main__) are left out. Namespace packages are not reported: every portion
is on __path__ whether used or not; the modules loaded from a portion are.

The modules that an entry point's load() imported are reported with its group
(``how``: "entry point GROUP"). EntryPoint.load (importlib.metadata's, and the
importlib_metadata backport's, which setuptools uses on 3.8 and 3.9) is wrapped
once that module is imported, never before: importing importlib.metadata here
would cost every build more than the whole record.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Imported by server.py at its start, before setup extends sys.path: the interpreter runs with
# -S -s, so this is the stdlib alone (zip, lib, lib-dynload).
STDLIB = list(sys.path)
_PACKAGE = __name__.partition(".")[0]
_reported: set[str] = set()
_groups: dict[str, str] = {}  # module name: the group of the entry point whose load() imported it, first


def _wrap_entry_points(metadata: Any) -> None:
    """EntryPoint.load of ``metadata`` (importlib.metadata or the backport) notes which modules it imported."""
    cls = getattr(metadata, "EntryPoint", None)
    original = getattr(cls, "load", None)
    if original is None or getattr(original, "__name__", "") == "_isobuild_load":
        return

    def _isobuild_load(self: Any) -> Any:
        before = set(sys.modules)
        try:
            return original(self)
        finally:
            for name in set(sys.modules) - before:
                _groups.setdefault(name, str(getattr(self, "group", None)))

    cls.load = _isobuild_load  # type: ignore[union-attr]


def watch(shim: Any) -> None:
    """Wrap EntryPoint.load once importlib.metadata or the backport is imported (the shim's after_import)."""
    for name in ("importlib.metadata", "importlib_metadata"):
        shim.after_import(name, _wrap_entry_points)


def _files() -> tuple[list[str], dict[str, str]]:
    """The new modules' files, and how those an entry point's load() imported were loaded."""
    files = []
    how = {}
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] == _PACKAGE:
            continue
        try:
            found = getattr(module, "__file__", None) or getattr(getattr(module, "__spec__", None), "origin", None)
        except Exception:  # a lazy module object may raise on any attribute
            continue
        if isinstance(found, str) and os.path.isabs(found) and found not in _reported:
            files.append(found)
            if name in _groups:
                how[found] = "entry point " + _groups[name]
    return files, how


def report(reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` (a hook's), with what was loaded since the last one, the stdlib's dirs and sys.path now
    (a backend may have extended it)."""
    files, how = _files()
    _reported.update(files)
    refused = [item for finder in sys.meta_path if type(finder).__name__ == "Hider" for item in finder.refused]  # type: ignore[attr-defined]
    reply["loaded"] = {"files": files, "how": how, "stdlib": STDLIB, "sys_path": list(sys.path), "refused": refused}
    return reply
