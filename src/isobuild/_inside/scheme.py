"""``scheme NAME PREFIX``: what an install into this interpreter needs to know, as this interpreter runs.

The sysconfig paths of the scheme (posix_prefix under a prefix, unless a scheme
is named; else this interpreter's default, a venv's own for a venv), and the
facts that packaging's tag rules need (the frontend applies those rules).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import sysconfig

from .isolate import venv_prefixes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _default_scheme() -> str:
    if hasattr(sysconfig, "get_default_scheme"):  # Python 3.10+
        return str(sysconfig.get_default_scheme())
    return "posix_prefix" if os.name == "posix" else os.name  # what 3.8 and 3.9 use


def _abi() -> str:
    """This interpreter's ABI tag, as packaging names it (cp311, cp313t, cp38d; else from SOABI)."""
    if sys.implementation.name == "cpython":
        flags = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
        flags += "d" if sysconfig.get_config_var("Py_DEBUG") or hasattr(sys, "gettotalrefcount") else ""
        return "cp{}{}{}".format(sys.version_info[0], sys.version_info[1], flags)
    soabi = sysconfig.get_config_var("SOABI") or ""
    return soabi.replace(".", "_").replace("-", "_").split("_")[0] if soabi else "none"


def facts() -> dict[str, Any]:
    """What packaging.tags' cpython_tags/generic_tags and compatible_tags need about this interpreter."""
    return {
        "implementation": sys.implementation.name,
        "version": list(sys.version_info[:2]),
        "abi": _abi(),
        "platform": sysconfig.get_platform(),
        "bits": struct.calcsize("P") * 8,
    }


def scheme(name: str, prefix: str) -> dict[str, Any]:
    prefixes = venv_prefixes()  # sys.prefix as this interpreter has it when it runs with site
    schemes = sysconfig.get_scheme_names()
    if not name:
        name = "posix_prefix" if prefix and "posix_prefix" in schemes else _default_scheme()
    if name not in schemes:
        return {"error": "--scheme {}: {} knows the schemes {}".format(name, sys.executable, ", ".join(schemes))}
    if prefix:
        variables = {"base": prefix, "platbase": prefix, "installed_base": prefix, "installed_platbase": prefix}
    else:  # explicit: sysconfig read sys.prefix at its import, before venv_prefixes() set it
        variables = {"base": sys.prefix, "platbase": sys.exec_prefix}
    return {
        "scheme": name,
        "paths": sysconfig.get_paths(name, vars=variables),
        "venv": prefixes is not None,
        "facts": facts(),
    }


def main(argv: list[str]) -> None:
    print(json.dumps(scheme(argv[0], argv[1])))
