"""``imports``: import modules and load entry points of an installed tree, in this (isolated) interpreter.

The request on stdin is {"path": [...], "modules": [...], "entry_points": [[module, attrs], ...]}; the
paths go before the stdlib on sys.path (-S -s: nothing else is there). What the modules print goes to
stderr; the answer, {"failures": [[what, "Type: message"], ...]}, to stdout. No bytecode is written.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _load(module: str, attrs: str) -> None:
    found: Any = importlib.import_module(module)
    for attr in filter(None, attrs.split(".")):
        found = getattr(found, attr)


def main(argv: list[str]) -> None:
    # No bytecode: it would be in no RECORD, and hold the staging path (DESTDIR); PYTHONDONTWRITEBYTECODE,
    # set by the frontend, says the same to any Python the modules start.
    sys.dont_write_bytecode = True
    request = json.loads(sys.stdin.read())
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # a module that prints must not corrupt the answer
    sys.path[:0] = list(request["path"])
    failures = []
    wanted = [(name, "", name) for name in request["modules"]]
    wanted += [(module, attrs, "{}:{}".format(module, attrs)) for module, attrs in request["entry_points"]]
    for module, attrs, what in wanted:
        try:
            _load(module, attrs)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from an import are failures too
            failures.append([what, "{}: {}".format(type(exc).__name__, exc)])
    answer.write(json.dumps({"failures": failures}))
    answer.flush()
