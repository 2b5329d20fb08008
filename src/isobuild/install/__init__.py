"""Wheels into a scheme of the *target* interpreter, with scripts that run the real interpreter.

pypa/installer does the wheel logic (RECORD validation, scheme of each member,
entry points, RECORD writing). This package adds what a pipeline needs on top,
one module per step of the data flow: ``checks`` (every wheel refused or
accepted before anything is written), ``scheme`` (paths asked of the target
interpreter, shebangs), ``destination`` (installer's destination, with a log
of what was written and the rollback), ``bytecode`` (compiled by the target).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from installer import install as installer_install
from installer.sources import WheelFile

from ..errors import BadInput, InstallFailed
from .checks import inspect, precheck_collisions
from .destination import Destination, rollback, signals_deferred
from .scheme import scheme_paths
from .target import Installed, Target

__all__ = ["Installed", "Target", "install", "install_paths"]


def install_paths(paths: Sequence[str], target: Target, build: Callable[[str], str]) -> list[Installed]:
    """Install wheel files, or build the one source directory's wheel (``build(outdir)``) and install that."""
    with tempfile.TemporaryDirectory(prefix="isobuild-install-") as built:
        if os.path.isdir(paths[0]):
            if len(paths) > 1:
                raise BadInput("install takes either one SRCDIR or wheel files")
            paths = [build(built)]
        for wheel in paths:
            if not os.path.isfile(wheel):
                raise BadInput(f"{wheel}: no such wheel file or source directory")
        return install(paths, target)


def install(wheels: Sequence[str], target: Target) -> list[Installed]:
    """Check every wheel first; then install them all, or (on any failure) none of them."""
    checked = [(wheel, *inspect(wheel)) for wheel in wheels]
    scheme_name, scheme = scheme_paths(target)
    written: list[str] = []
    results = []
    destination: Destination | None = None
    try:
        for wheel, name, version, dist_info in checked:
            destination = Destination(scheme, target, written)
            precheck_collisions(wheel, destination)
            extra = {"INSTALLER": f"{target.installer_name}\n".encode()}
            if target.requested:
                extra["REQUESTED"] = b""
            before = len(written)
            with WheelFile.open(Path(wheel)) as source:
                installer_install(source, destination, extra)
            info_dir = next(p for p in written[before:] if p.endswith(f"{dist_info}/RECORD"))
            results.append(Installed(wheel, name, version, os.path.dirname(info_dir),
                                     sum(1 for p in written[before:] if not os.path.isdir(p)),
                                     {"scheme": scheme_name, **scheme}))
    except BaseException as exc:
        with signals_deferred():  # a second Ctrl-C must not cut the rollback short
            if destination is not None:
                written.extend(destination.compiler.abandon())
            rollback(written)
        if isinstance(exc, OSError):
            raise InstallFailed(f"install failed and was rolled back: {exc}") from None
        raise
    return results
