"""``scheme NAME PREFIX``: print the sysconfig paths an install into this interpreter uses."""
from __future__ import annotations

import json
import os
import sys
import sysconfig
from typing import Any

from .isolate import venv_prefixes


def _default_scheme() -> str:
    if hasattr(sysconfig, "get_default_scheme"):  # Python 3.10+
        return str(sysconfig.get_default_scheme())
    return "posix_prefix" if os.name == "posix" else os.name  # what 3.8 and 3.9 use


def scheme(name: str, prefix: str) -> dict[str, Any]:
    """posix_prefix under a prefix, unless a scheme is named; else this interpreter's default."""
    venv_prefixes()
    schemes = sysconfig.get_scheme_names()
    if not name:
        name = "posix_prefix" if prefix and "posix_prefix" in schemes else _default_scheme()
    if name not in schemes:
        return {"error": "--scheme {}: {} knows the schemes {}".format(name, sys.executable, ", ".join(schemes))}
    variables = None
    if prefix:
        variables = {"base": prefix, "platbase": prefix, "installed_base": prefix, "installed_platbase": prefix}
    return {"scheme": name, "paths": sysconfig.get_paths(name, vars=variables)}


def main(argv: list[str]) -> None:
    print(json.dumps(scheme(argv[0], argv[1])))
