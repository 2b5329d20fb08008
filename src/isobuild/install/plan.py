"""Where each file of a wheel goes, decided before anything is written; clashes refused (exit 7).

One rule resolves what would otherwise clash, pip's, narrowed so that nothing
is dropped unseen: a ``.data/scripts`` file named after one of the wheel's
console or GUI scripts is not installed when it is a launcher setuptools wrote
for that entry point (``NAME.exe``, ``NAME-script.py``, ``NAME.pya`` for
Windows, or a ``NAME`` that carries setuptools' ``# EASY-INSTALL-ENTRY-SCRIPT``
line for that very script); the script is generated from its entry point.
Any other ``NAME``, and anything else that two members (or a member and a
script, INSTALLER or REQUESTED) would both write, is refused, naming both; so
is a path whose parent is a file, one written through a link that leads out
of the destination (target.py), and, without --overwrite, one that exists.
"""

from __future__ import annotations

import ast
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass

from ..errors import RefusedWheel
from .checks import Checked, refuse
from .target import Target, scheme_path

_WRAPPER_SUFFIXES = (".exe", "-script.py", ".pya")
_LAUNCHER_MARK = "# EASY-INSTALL-ENTRY-SCRIPT:"


@dataclass(frozen=True)
class Plan:
    skipped: frozenset[str]  # members not installed (entry-point launchers)
    paths: dict[str, str]  # staged path -> what writes it


def _launcher_of(head: bytes) -> tuple[str, str] | None:
    """(group, name) of the entry point a setuptools launcher runs, from its first lines; else None."""
    for line in head.decode("utf-8", "replace").splitlines()[:3]:
        if line.startswith(_LAUNCHER_MARK):
            try:
                spec = ast.literal_eval(line[len(_LAUNCHER_MARK) :].strip())
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
            if isinstance(spec, tuple) and len(spec) == 3 and all(isinstance(part, str) for part in spec):
                return spec[1], spec[2]
    return None


def _is_launcher(zf: zipfile.ZipFile, member: str, scripts: dict[str, str]) -> bool:
    """A setuptools launcher for one of the wheel's entry-point scripts (``scripts``: name -> section)."""
    name = posixpath.basename(member)
    low = name.lower()
    for suffix in _WRAPPER_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)] in scripts
    if name not in scripts:
        return False
    with zf.open(member) as f:
        return _launcher_of(f.read(1024)) == (f"{scripts[name]}_scripts", name)


def _member_target(member: str, checked: Checked) -> tuple[str, str]:
    """(scheme, path in it) of a member, as installer will place it."""
    top, _, rest = member.partition("/")
    if top.endswith(".data") and "/" in rest:
        key, _, sub = rest.partition("/")
        return key, sub
    return checked.root_scheme, member


class Planner:
    """Paths of one install, staged (DESTDIR prepended) the way the destination writes them."""

    def __init__(self, scheme_dict: dict[str, str], target: Target) -> None:
        self.scheme_dict, self.target = scheme_dict, target

    def staged(self, scheme: str, path: str) -> str | None:
        """The path on disk, or None if it escapes its scheme directory."""
        final = scheme_path(self.scheme_dict[scheme], path)
        return None if final is None else self.target.staged(final)

    def plan(self, checked: Checked, extra: list[str]) -> Plan:
        scripts = dict(checked.scripts)
        wanted: list[tuple[str, str, str]] = [
            ("scripts", name, f"{section} script {name!r}") for name, section in checked.scripts
        ]
        skipped = set()
        with zipfile.ZipFile(checked.path) as zf:
            for member in zf.namelist():
                if (
                    member.endswith("/")
                    or member == f"{checked.dist_info}/RECORD"
                    or "__pycache__" in member.split("/")[:-1]
                ):  # installer skips these
                    continue
                scheme, path = _member_target(member, checked)
                if scheme == "scripts" and _is_launcher(zf, member, scripts):
                    skipped.add(member)
                    continue
                wanted.append((scheme, path, f"member {member!r}"))
        wanted += [(checked.root_scheme, f"{checked.dist_info}/{name}", name) for name in extra]
        wanted.append((checked.root_scheme, f"{checked.dist_info}/RECORD", "RECORD"))
        return Plan(frozenset(skipped), self._paths(checked, wanted))

    def _paths(self, checked: Checked, wanted: list[tuple[str, str, str]]) -> dict[str, str]:
        paths: dict[str, str] = {}
        directories: dict[str, tuple[str, str]] = {}  # staged dir -> (its scheme dir, what writes there)
        for scheme, path, what in wanted:
            staged = self.staged(scheme, path)
            if staged is None:
                raise refuse(checked.path, f"{what} escapes its scheme directory")
            if staged in paths:
                raise refuse(checked.path, f"{paths[staged]} and {what} would both be written to {staged}")
            paths[staged] = what
            directory = os.path.dirname(staged)
            directories.setdefault(directory, (self.scheme_dict[scheme], what))
            if self.target.levels and scheme in ("purelib", "platlib") and path.endswith(".py"):
                directories.setdefault(os.path.join(directory, "__pycache__"), (self.scheme_dict[scheme], what))
        for staged, what in paths.items():
            self._check_shape(checked, staged, what)
        for directory, (scheme_dir, what) in directories.items():
            escape = self.target.escape(scheme_dir, directory)
            if escape is not None:
                raise refuse(checked.path, f"{escape}: {what} would be written through it")
        for staged in paths:
            if os.path.lexists(staged) and not self.target.overwrite:
                raise RefusedWheel(
                    f"refusing {os.path.basename(checked.path)}: {staged} exists",
                    hint="pass --overwrite to replace existing files; nothing was written",
                )
        return paths

    def _check_shape(self, checked: Checked, staged: str, what: str) -> None:
        """A file where a file goes: no directory at ``staged``, no file where its parents go."""
        if os.path.isdir(staged) and not os.path.islink(staged):
            raise refuse(checked.path, f"{what} would replace the directory {staged}")
        parent = os.path.dirname(staged)
        found = _directory(parent)
        while not found:  # up to the first that is there: a directory, or what stands where one must go
            if found is False:
                there = "a link that leads to no directory" if os.path.islink(parent) else "a file"
                raise refuse(checked.path, f"{what} needs the directory {parent}, where {there} is")
            parent = os.path.dirname(parent)
            found = _directory(parent)


def _directory(path: str) -> bool | None:
    """Whether a directory (or a link to one) is at ``path``: None if nothing is (yet).

    One lstat decides, so a directory another install makes meanwhile is never
    taken for a file; only something that is there and is no directory is."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # nothing there, or a file or a link loop on the way: its parent says which
        return None
    if stat.S_ISLNK(mode):
        return os.path.isdir(path)  # a dangling link, a loop, or one to a file, is no directory
    return stat.S_ISDIR(mode)
