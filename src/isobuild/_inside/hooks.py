"""One hook call: the command pyproject-hooks hands its runner, executed in this process.

pyproject-hooks runs ``[python, _in_process.py, HOOK, CONTROL_DIR]`` for each
call; here the script is executed as ``__main__`` with that argv (runpy), as
the interpreter would execute it, so the backend is imported once for all the
hooks of a build and the script, its files and its protocol stay pyproject-hooks'.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
import traceback
from importlib.machinery import PathFinder
from types import TracebackType
from typing import Any

_PACKAGE = __name__.partition(".")[0]  # _isobuild_inside: the runner's frames are this package's and runpy's


def import_backend(backend: str, backend_path: list[str]) -> None:
    """Import the backend's module ahead of its first hook, where pyproject-hooks would find the same one.

    With backend-path, only a module found there (as PEP 517 demands); a failed
    import is forgotten: pyproject-hooks imports again in the hook and reports it.
    """
    module = backend.partition(":")[0].strip()
    if backend_path and PathFinder.find_spec(module.partition(".")[0], backend_path) is None:
        return
    try:
        importlib.import_module(module)
    except Exception:
        pass


def _diagnose(backend: str, hook: str) -> dict[str, Any] | None:
    """After an AttributeError: does the backend (as pyproject.toml names it) lack its object, or the hook?

    Only what is imported already is looked at: a backend that failed to import
    is reported by pyproject-hooks itself.
    """
    module, _, attrs = backend.partition(":")
    found = sys.modules.get(module.strip())
    if found is None:
        return None
    for attr in filter(None, attrs.strip().split(".")):
        if not hasattr(found, attr):
            return {"status": "backend_unavailable", "message": "{!r} has no attribute {!r}".format(found, attr)}
        found = getattr(found, attr)
    return None if hasattr(found, hook) else {"status": "hook_missing"}


def _backend_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without this runner's and runpy's frames: the backend's are what help.

    Told apart by their module's name, not their file's: in isobuild.pyz the code comes from
    bytecode that names its file as the archive's member, wherever the archive is."""
    kept = []
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module != "runpy" and module.partition(".")[0] != _PACKAGE:
            kept.append(tb)
        tb = tb.tb_next
    for earlier, later in zip(kept, kept[1:] + [None]):
        earlier.tb_next = later
    return kept[0] if kept else None


def run(msg: dict[str, Any]) -> dict[str, Any]:
    """Run ``msg["argv"]`` (a script and its arguments) in ``msg["cwd"]`` with ``msg["env"]`` added."""
    os.chdir(msg["cwd"])
    os.environ.update(msg["env"])
    sys.argv = list(msg["argv"])
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):
            sys.stderr.write("{}\n".format(code))
            code = 1
        return {"status": "exit", "code": code or 0}
    except BaseException as exc:
        diagnosis = _diagnose(msg["backend"], msg["hook"]) if isinstance(exc, AttributeError) else None
        if diagnosis is not None:
            return diagnosis
        traceback.print_exception(type(exc), exc, _backend_frames(exc.__traceback__))
        return {"status": "exception", "type": type(exc).__name__, "message": str(exc)}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return {"status": "ok"}
