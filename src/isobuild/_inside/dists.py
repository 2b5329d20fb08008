"""Distributions and marker values as the target sees them, for the frontend's dependency check."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Sequence


def lookup(name: str, path: Sequence[str]) -> dict[str, Any] | None:
    """``importlib.metadata.distribution(name)`` as it would answer with ``sys.path = path``.

    Asked of importlib.metadata's path finder with the sys.path that setup
    built, not the current one: an imported backend may have extended sys.path
    with vendored distributions (setuptools' _vendor holds a wheel), or added
    meta path finders of its own.
    """
    from importlib.metadata import DistributionFinder, MetadataPathFinder

    for dist in MetadataPathFinder.find_distributions(DistributionFinder.Context(name=name, path=list(path))):
        location = str(dist.locate_file(""))
        try:
            return {"version": dist.version, "requires": list(dist.requires or []), "location": location}
        except Exception as exc:  # no version satisfies a specifier, and the check says why
            reason = "(unreadable metadata: {}: {})".format(type(exc).__name__, exc)
            return {"version": reason, "requires": [], "location": location}
    return None


def _full_version(info: Any) -> str:
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version


def markers() -> dict[str, str]:
    """PEP 508 environment markers of this interpreter, as packaging.markers.default_environment() has them."""
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": _full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }
