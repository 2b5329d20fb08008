"""A wheel's file name by the wheel spec's rules (packaging's), and the .dist-info dir that must match it:
for the build's check of what a backend made (runner.py) and the install's of what it is given
(install/checks.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename

SHAPE = "NAME-VERSION(-BUILD)-PY-ABI-PLATFORM.whl"  # what an error says a wheel's name must look like


@dataclass(frozen=True)
class WheelName:
    """A valid wheel file name: the project and version as written (the .dist-info dir and METADATA
    must say the same), the project's normalized name, and the tags."""

    project: str
    version: str
    name: NormalizedName
    tags: frozenset[Tag]

    def names(self, dist_info: str) -> bool:
        """Whether a ``NAME-VERSION.dist-info`` dir is this wheel's: the same project, the same version as written."""
        project, _, version = dist_info.removesuffix(".dist-info").rpartition("-")
        return canonicalize_name(project) == self.name and version == self.version


def wheel_name(path: str) -> WheelName | None:
    """The file name of ``path`` read as a wheel's, or None when it is not one (packaging's rules: five or
    six parts, a valid name, version and build number, ``.whl``)."""
    filename = os.path.basename(path)
    try:
        name, _, _, tags = parse_wheel_filename(filename)
    except ValueError:  # InvalidWheelFilename; InvalidVersion itself from packaging before 23.1
        return None
    project, version = filename.split("-", 2)[:2]  # as written: packaging has checked the parts
    return WheelName(project, version, name, tags)
