"""The project's build configuration: pyproject.toml's [build-system], validated up front.

build's ProjectBuilder validates the table and drives the hooks; this module
adds what it leaves to chance: a message with the position for bad TOML or
bytes that are not UTF-8, requirement strings checked with packaging, and
backend-path entries that are absolute, outside the tree or missing.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BadInput

if TYPE_CHECKING:
    from build import ProjectBuilder, RunnerType

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"


@dataclass(frozen=True)
class Project:
    srcdir: str
    pyproject: Mapping[str, Any]
    backend_path: list[str]  # absolute

    @property
    def display(self) -> str:
        return os.path.join(self.srcdir, "pyproject.toml")


def _load_toml(path: str) -> Mapping[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BadInput(
            f"{path} is not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column}",
            hint="TOML files must be encoded as UTF-8",
        ) from None
    try:
        data: Mapping[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = "" if "line" in str(exc) else f" (line {text.count(chr(10)) + 1} is the end of the file)"
        raise BadInput(f"{path} is not valid TOML: {exc}{where}") from None
    return data


def _check_backend_path(srcdir: str, entries: list[str]) -> list[str]:
    where = os.path.join(srcdir, "pyproject.toml")
    absolute = []
    for entry in entries:
        if os.path.isabs(entry):
            raise BadInput(f"{where}: build-system.backend-path entry {entry!r} is absolute; it must be relative to {srcdir}")
        path = os.path.normpath(os.path.join(srcdir, entry))
        if os.path.commonpath([srcdir, path]) != srcdir:
            raise BadInput(f"{where}: build-system.backend-path entry {entry!r} points outside the source tree {srcdir}")
        if not os.path.isdir(path):
            raise BadInput(f"{where}: build-system.backend-path entry {entry!r} does not exist or is not a directory")
        absolute.append(path)
    return absolute


def load(srcdir: str) -> Project:
    """Read and check SRCDIR's configuration, before any process is started for it."""
    if not os.path.isdir(srcdir):
        what = "does not exist" if not os.path.exists(srcdir) else "is not a directory"
        raise BadInput(f"source directory {srcdir} {what}")
    srcdir = os.path.abspath(srcdir)
    pyproject_path = os.path.join(srcdir, "pyproject.toml")
    if os.path.exists(pyproject_path):
        data = _load_toml(pyproject_path)
    elif os.path.exists(os.path.join(srcdir, "setup.py")):
        data = {}
    else:
        raise BadInput(
            f"{srcdir} has neither pyproject.toml nor setup.py",
            hint="point isobuild at the directory that holds the project's pyproject.toml",
        )
    table = data.get("build-system")
    backend_path: list[str] = []
    if isinstance(table, dict):
        entries = table.get("backend-path", [])
        if isinstance(entries, list) and all(isinstance(e, str) for e in entries):
            backend_path = _check_backend_path(srcdir, entries)
    return Project(srcdir, data, backend_path)


def builder(project: Project, python: str, runner: RunnerType) -> tuple[ProjectBuilder, list[str], list[str]]:
    """build's ProjectBuilder for the project, its static requirements in file order, and any warnings."""
    from build import BuildException, ProjectBuilder
    from packaging.requirements import InvalidRequirement, Requirement

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ProjectBuilder(project.srcdir, python_executable=python, runner=runner)
        except BuildException as exc:
            raise BadInput(f"{project.display}: {exc}") from None
        except ValueError as exc:  # pyproject-hooks' own backend-path check
            raise BadInput(f"{project.display}: build-system.backend-path: {exc}") from None
    table = project.pyproject.get("build-system")
    requires = list(table["requires"]) if isinstance(table, dict) else sorted(result.build_system_requires)
    for requirement in requires:
        try:
            Requirement(requirement)
        except InvalidRequirement as exc:
            raise BadInput(f"{project.display}: invalid requirement {requirement!r} in build-system.requires: {exc}") from None
    return result, requires, [str(w.message) for w in caught]
