"""The hooks' sys.path and their children's environment, built inside the target.

The process runs with -S -s: no site module ran, so sys.path is the stdlib
alone. Onto it go the pipeline's dirs; the interpreter's own site dirs are
reported as excluded (or, with system_site, added as site dirs).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import site  # under -S (the target's flags) its import runs nothing: only its functions are used
import sys
import types
from typing import Any


def venv_prefixes() -> list[str] | None:
    """As site.venv() sets them: sys.prefix is the venv's (-S skipped that); None outside a venv.

    Returns the prefixes whose site dirs the interpreter would have.
    """
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    site_prefix = os.path.dirname(exe_dir)
    for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(site_prefix, "pyvenv.cfg")):
        if os.path.isfile(conf):
            break
    else:
        return None
    system_site = "true"
    with open(conf, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "include-system-site-packages":
                system_site = value.strip().lower()
    prefixes = [site_prefix] + ([sys.prefix] if system_site == "true" else [])
    sys.prefix = sys.exec_prefix = site_prefix
    return prefixes


_SHIMS: dict[str, Any] = {}  # one copy of the shim per process: its finders must see each other's state
DEFERRED: list[tuple[str, str]] = []  # --only-declared: .pth import lines not run yet (shim.run_deferred)


def shim(shim_dir: str) -> Any:
    """isobuild's sitecustomize shim, under another name: the same code restores the children's
    sys.path. Found by the path finder, so that it loads from isobuild.pyz (zipimport) too."""
    if shim_dir not in _SHIMS:
        _SHIMS[shim_dir] = _load_shim(shim_dir)
    return _SHIMS[shim_dir]


def _load_shim(shim_dir: str) -> Any:
    """Its code as an import gets it (get_code: the cached bytecode where there is one, as the children's
    own import of it uses), run in a module of another name, so that it does not act as a sitecustomize."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", [shim_dir])
    get_code = getattr(spec.loader, "get_code", None) if spec is not None else None
    if spec is None or spec.origin is None or get_code is None:
        raise RuntimeError(f"isobuild's shim is missing from {shim_dir}")
    module = types.ModuleType("_isobuild_shim")
    module.__file__ = spec.origin
    exec(get_code("sitecustomize"), module.__dict__)
    return module


def _spec_file(spec: dict[str, Any]) -> str:
    """The children's sys.path, in a file that the shim reads: as one variable it would be PYTHONPATH and
    NIX_PYTHONPATH together, and one variable over 128 KiB (the kernel's MAX_ARG_STRLEN) makes every exec
    of every child fail. The file goes in TMPDIR, which the frontend points at the command's own temp
    dir (scratch.py): it is removed with it. A random name, so that nothing there can be in its way."""
    directory = os.environ.get("TMPDIR")
    if not directory:  # not started by isobuild's command (a library caller): tempfile's choice
        import tempfile  # its import is paid only here, off the command's way

        directory = tempfile.gettempdir()
    path = os.path.join(directory, "isobuild-hook-path-{}-{}.json".format(os.getpid(), os.urandom(8).hex()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="ascii") as f:  # json.dump escapes every non-ASCII character
        json.dump(spec, f)
    return path


def setup(msg: dict[str, Any]) -> dict[str, Any]:
    """Put sys.path and os.environ in place; return what was done, for the frontend's hello."""
    stdlib = list(sys.path)
    base = list(msg["pythonpath"]) + stdlib
    system = site.getsitepackages(venv_prefixes())
    site_dirs = list(msg["site_dirs"]) + (system if msg["system_site"] else [])
    code = shim(msg["shim_dir"])
    if msg.get("only_declared"):  # the closure is not known yet: .pth files' imports wait for it (hidden.py)
        sys.path[:] = list(msg["backend_path"]) + base
        for site_dir in site_dirs:
            code.add_site_dir(site_dir, lambda pth: False, DEFERRED)
    else:
        code.isolate(list(msg["backend_path"]) + base, site_dirs)
    # Children: no user site; the shim restores sys.path to base + site_dirs in
    # a child of this very interpreter, and steps aside in any other one.
    spec = {"identity": [sys.executable, sys.version], "path": base, "site_dirs": site_dirs}
    child_env = {
        "PYTHONPATH": os.pathsep.join([msg["shim_dir"]] + list(msg["pythonpath"])),
        "PYTHONNOUSERSITE": "1",
        "_ISOBUILD_HOOK_PATH": _spec_file(spec),
    }
    os.environ.update(child_env)
    return {
        "sys_path": list(sys.path),
        "executable": sys.executable,
        "version": list(sys.version_info[:3]),
        "excluded": {
            "user_site": site.getusersitepackages(),
            "system_site": [] if msg["system_site"] else system,
        },
        "child_env": child_env,
    }
