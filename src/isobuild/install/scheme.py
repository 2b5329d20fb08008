"""What the target interpreter is, asked of it: its install paths, its supported tags, its scripts' first line."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging import tags

from ..errors import BadInput, InterpreterError
from ..inside import inside_command
from .target import Target

_SHEBANG_MAX = 127  # Linux's limit on a shebang line, as installer and distlib assume


@dataclass(frozen=True)
class Facts:
    """What packaging's tag rules need about the target, as it reports them (_inside/scheme.py)."""

    implementation: str  # sys.implementation.name
    version: tuple[int, int]
    abi: str  # cp311, cp314t ...
    platform: str  # sysconfig.get_platform()

    @classmethod
    def of(cls, reply: Mapping[str, Any]) -> Facts:
        """From the target's JSON; KeyError, TypeError or ValueError if it is not that."""
        major, minor = reply["version"]
        return cls(str(reply["implementation"]), (int(major), int(minor)), str(reply["abi"]), str(reply["platform"]))


@dataclass(frozen=True)
class TargetScheme:
    name: str
    paths: dict[str, str]  # purelib, platlib, scripts, data, include
    facts: Facts
    python: str

    def scheme_dict(self, project: str) -> dict[str, str]:
        """installer's scheme for one wheel: headers go under include/pythonX.Y/<project>/, as pip puts them."""
        paths = self.paths
        return {
            "purelib": paths["purelib"],
            "platlib": paths["platlib"],
            "scripts": paths["scripts"],
            "data": paths["data"],
            "headers": os.path.join(paths["include"], project),
        }

    def supported_tags(self) -> set[tags.Tag]:
        """The target's tags by packaging's rules (cpython_tags or generic_tags, then compatible_tags),
        from the facts the target reported. Platforms: packaging's for this machine when the target
        reports the same sysconfig platform as this interpreter, else the target's own alone."""
        facts = self.facts
        version = facts.version
        if facts.platform == sysconfig.get_platform():
            platforms = list(tags.platform_tags())
        else:
            platforms = [facts.platform.replace("-", "_").replace(".", "_")]
        implementation = facts.implementation
        short = tags.INTERPRETER_SHORT_NAMES.get(implementation, implementation)
        interpreter = f"{short}{version[0]}{version[1]}"
        abis = [facts.abi]
        if implementation == "cpython":
            found = list(tags.cpython_tags(version, abis, platforms))
            if abis[0].startswith(interpreter) and "t" in abis[0][len(interpreter) :]:  # cp314t, cp314td
                # A free-threaded build loads no abi3 extension: packaging >= 24 knows, older ones do not.
                found = [tag for tag in found if tag.abi != "abi3"]
        else:
            found = list(tags.generic_tags(interpreter, abis, platforms))
        found += tags.compatible_tags(version, interpreter, platforms)
        return set(found)


def target_scheme(target: Target) -> TargetScheme:
    """The target's own sysconfig paths: posix_prefix under --prefix unless --scheme says otherwise."""
    argv = inside_command(target.python, "scheme", target.scheme or "", target.prefix or "")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as exc:
        raise InterpreterError(f"cannot run the target interpreter {target.python}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise InterpreterError(f"{target.python} could not report its install scheme", details=proc.stderr.strip())
    try:
        reply = json.loads(proc.stdout)
        if "error" in reply:
            raise BadInput(reply["error"])
        return TargetScheme(
            reply["scheme"],
            {key: reply["paths"][key] for key in ("purelib", "platlib", "scripts", "data", "include")},
            Facts.of(reply["facts"]),
            target.python,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InterpreterError(f"{target.python} answered the scheme query with nonsense: {exc!r}") from None


# Work-around: docs/upstream.md, "Script first lines"
def shebang(interpreter: str, flags: str = "") -> bytes:
    """``#!interpreter flags``; the /bin/sh trampoline when that is too long, has a space in the path,
    or the flags are several words (Linux passes all after the interpreter as one argument)."""
    line = f"#!{interpreter}" + (f" {flags}" if flags else "")
    if " " not in interpreter and " " not in flags and len(line) + 1 <= _SHEBANG_MAX:
        return line.encode() + b"\n"
    command = " ".join([shlex.quote(interpreter), *([flags] if flags else [])])
    return b"#!/bin/sh\n'''exec' " + command.encode() + b' "$0" "$@"\n' + b"' '''\n"


def merge_flags(*groups: str) -> str:
    """Interpreter flags from several places as one shebang argument where they are single-letter
    clusters (``-s`` and ``-E`` give ``-sE``), else as words."""
    words = [word for group in groups for word in group.split()]
    if all(word.startswith("-") and word[1:].isalpha() for word in words) and words:
        return "-" + "".join(word[1:] for word in words)
    return " ".join(words)
