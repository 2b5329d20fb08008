"""PEP 508 marker values as the target sees them, for the frontend's dependency check."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


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
