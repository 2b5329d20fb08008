"""What the hooks loaded: after each hook, the files of the modules new in sys.modules since the last.

The frontend (usage.py) maps each file to the distribution that owns it. It
goes by sys.modules at the end of each hook, not by import audit events:
importlib.import_module, which loads entry points, fires none. Built-in and
frozen modules have no file; isobuild's own (this package, and the script run
as __main__) are left out. Namespace packages are not reported: every portion
is on __path__ whether used or not; the modules loaded from a portion are.
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


def _files() -> list[str]:
    files = []
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.partition(".")[0] == _PACKAGE:
            continue
        try:
            found = getattr(module, "__file__", None) or getattr(getattr(module, "__spec__", None), "origin", None)
        except Exception:  # a lazy module object may raise on any attribute
            continue
        if isinstance(found, str) and os.path.isabs(found) and found not in _reported:
            files.append(found)
    return files


def report(reply: dict[str, Any]) -> dict[str, Any]:
    """``reply`` (a hook's), with what was loaded since the last one, the stdlib's dirs and sys.path now
    (a backend may have extended it)."""
    files = _files()
    _reported.update(files)
    refused = [item for finder in sys.meta_path if type(finder).__name__ == "Hider" for item in finder.refused]  # type: ignore[attr-defined]
    reply["loaded"] = {"files": files, "stdlib": STDLIB, "sys_path": list(sys.path), "refused": refused}
    return reply
