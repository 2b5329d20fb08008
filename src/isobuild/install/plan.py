"""Where each file of a wheel goes, decided before anything is written; clashes refused (exit 7).

One rule resolves what would otherwise clash, pip's: a ``.data/scripts`` file
named after one of the wheel's console or GUI scripts (``NAME``, ``NAME.exe``,
``NAME-script.py``, ``NAME.pya``: launchers setuptools wrote for Windows or for
itself) is not installed; the script is generated from its entry point.
Anything else that two members (or a member and a script, INSTALLER or
REQUESTED) would both write is refused, naming both; so is a path whose parent
is a file, and, without --overwrite, one that exists.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass


from ..errors import RefusedWheel
from .checks import Checked, refuse

_WRAPPER_SUFFIXES = (".exe", "-script.py", ".pya")


@dataclass(frozen=True)
class Plan:
    skipped: frozenset[str]  # members not installed (entry-point wrappers)
    paths: dict[str, str]  # staged path -> what writes it


def _is_wrapper(name: str, scripts: set[str]) -> bool:
    low = name.lower()
    for suffix in _WRAPPER_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)] in scripts
    return name in scripts


def _member_target(member: str, checked: Checked) -> tuple[str, str]:
    """(scheme, path in it) of a member, as installer will place it."""
    top, _, rest = member.partition("/")
    if top.endswith(".data") and "/" in rest:
        key, _, sub = rest.partition("/")
        return key, sub
    return checked.root_scheme, member


class Planner:
    """Paths of one install, staged (DESTDIR prepended) the way the destination writes them."""

    def __init__(self, scheme_dict: dict[str, str], destdir: str | None, overwrite: bool) -> None:
        self.scheme_dict, self.destdir, self.overwrite = scheme_dict, destdir, overwrite

    def staged(self, scheme: str, path: str) -> str | None:
        """The path on disk, or None if it escapes its scheme directory."""
        root = os.path.abspath(self.scheme_dict[scheme])
        final = os.path.abspath(os.path.join(root, path))
        if os.path.commonpath([root, final]) != root:
            return None
        return os.path.join(self.destdir, final.lstrip(os.sep)) if self.destdir else final

    def plan(self, checked: Checked, extra: list[str]) -> Plan:
        scripts = {name for name, _ in checked.scripts}
        wanted: list[tuple[str, str, str]] = [("scripts", name, f"{section} script {name!r}")
                                              for name, section in checked.scripts]
        skipped = set()
        with zipfile.ZipFile(checked.path) as zf:
            for member in zf.namelist():
                if member.endswith("/") or member == f"{checked.dist_info}/RECORD" or \
                        "__pycache__" in member.split("/")[:-1]:  # installer skips these
                    continue
                scheme, path = _member_target(member, checked)
                if scheme == "scripts" and _is_wrapper(posixpath.basename(path), scripts):
                    skipped.add(member)
                    continue
                wanted.append((scheme, path, f"member {member!r}"))
        wanted += [(checked.root_scheme, f"{checked.dist_info}/{name}", name) for name in extra]
        wanted.append((checked.root_scheme, f"{checked.dist_info}/RECORD", "RECORD"))
        return Plan(frozenset(skipped), self._paths(checked, wanted))

    def _paths(self, checked: Checked, wanted: list[tuple[str, str, str]]) -> dict[str, str]:
        paths: dict[str, str] = {}
        for scheme, path, what in wanted:
            staged = self.staged(scheme, path)
            if staged is None:
                raise refuse(checked.path, f"{what} escapes its scheme directory")
            if staged in paths:
                raise refuse(checked.path, f"{paths[staged]} and {what} would both be written to {staged}")
            paths[staged] = what
        for staged, what in paths.items():
            self._check_on_disk(checked, staged, what)
        return paths

    def _check_on_disk(self, checked: Checked, staged: str, what: str) -> None:
        if os.path.isdir(staged) and not os.path.islink(staged):
            raise refuse(checked.path, f"{what} would replace the directory {staged}")
        if os.path.lexists(staged) and not self.overwrite:
            raise RefusedWheel(f"refusing {os.path.basename(checked.path)}: {staged} exists",
                               hint="pass --overwrite to replace existing files; nothing was written")
        parent = os.path.dirname(staged)
        while not os.path.isdir(parent):
            if os.path.lexists(parent):
                raise refuse(checked.path, f"{what} needs the directory {parent}, where a file is")
            parent = os.path.dirname(parent)
