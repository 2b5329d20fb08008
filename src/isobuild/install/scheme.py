"""The target's install paths and its scripts' first line."""

from __future__ import annotations

import json
import shlex
import subprocess

from ..errors import BadInput, InterpreterError
from ..hookprocess import inside_command
from .target import Target

_SHEBANG_MAX = 127  # Linux's limit on a shebang line, as installer and distlib assume


def scheme_paths(target: Target) -> tuple[str, dict[str, str]]:
    """The target's own sysconfig paths: posix_prefix under --prefix unless --scheme says otherwise."""
    argv = inside_command(target.python, "scheme", target.scheme or "", target.prefix or "")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise InterpreterError(f"cannot run the target interpreter {target.python}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise InterpreterError(f"{target.python} could not report its install scheme", details=proc.stderr.strip())
    reply = json.loads(proc.stdout)
    if "error" in reply:
        raise BadInput(reply["error"])
    paths = reply["paths"]
    return reply["scheme"], {
        "purelib": paths["purelib"],
        "platlib": paths["platlib"],
        "scripts": paths["scripts"],
        "data": paths["data"],
        "headers": paths["include"],
    }


def shebang(interpreter: str, flags: str = "") -> bytes:
    """``#!interpreter flags``; the /bin/sh trampoline when that is too long or has a space in the path."""
    line = f"#!{interpreter}" + (f" {flags}" if flags else "")
    if " " not in interpreter and len(line) + 1 <= _SHEBANG_MAX:
        return line.encode() + b"\n"
    command = " ".join([shlex.quote(interpreter), *([flags] if flags else [])])
    return b"#!/bin/sh\n'''exec' " + command.encode() + b' "$0" "$@"\n' + b"' '''\n"
