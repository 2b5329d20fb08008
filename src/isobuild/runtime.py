"""Runtime dependencies: a wheel's Requires-Dist (or a project's, and its PEP 735 dependency groups)
checked against the isolated environment of the target, as Nix's pythonRuntimeDepsCheck does by hand.

The environment is the one the hooks would see (PYTHONPATH, --path, NIX/GUIX_PYTHONPATH, with
--system-site the interpreter's own), asked of a hook process of the target; wheels checked
together count as installed. Markers are the target's, with the extras asked for; pre-releases
satisfy a specifier, as in the build-requirement check.
"""

from __future__ import annotations

import os
import zipfile
from email.parser import HeaderParser

from .dependencies import Environment, Policy, Status, check
from .errors import BadInput, MissingDependencies
from .hookprocess import HookProcess
from .isolation import Isolation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import IO, Any


def wheel_metadata(path: str) -> tuple[str, str, list[str]]:
    """(name, version, Requires-Dist) from a wheel's METADATA."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted({n.split("/", 1)[0] for n in zf.namelist() if n.split("/", 1)[0].endswith(".dist-info")})
            if len(infos) != 1:
                raise BadInput(f"{path}: a wheel has one .dist-info dir; this one has {len(infos)}")
            text = zf.read(f"{infos[0]}/METADATA").decode("utf-8")
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path} is not a readable wheel: {exc}") from None
    headers = HeaderParser().parsestr(text)
    return str(headers.get("Name", "")), str(headers.get("Version", "")), list(headers.get_all("Requires-Dist") or [])


def check_wheels(wheels: Sequence[str], isolation: Isolation, extras: Iterable[str], policy: Policy,
                 log: IO[bytes] | None = None) -> tuple[list[tuple[str, list[Status]]], MissingDependencies | None]:
    """Each wheel's statuses, and MissingDependencies (exit 3) if any requirement is unmet."""
    metadata = [(wheel, *wheel_metadata(wheel)) for wheel in wheels]
    known: dict[str, dict[str, Any]] = {name: {"version": version, "requires": requires, "location": wheel}
                                        for wheel, name, version, requires in metadata}
    process = HookProcess(isolation.python, log=log)
    try:
        process.setup(isolation, [], None)
        hello = process.hello()
        env = Environment(process.dists, hello.markers, policy, known)
        results = [(wheel, check(requires, f"{os.path.basename(wheel)} Requires-Dist", env, extras))
                   for wheel, _, _, requires in metadata]
    except BaseException:
        process.kill()
        raise
    process.close()
    unmet = [(wheel, s) for wheel, statuses in results for s in statuses if not s.satisfied]
    if not unmet:
        return results, None
    return results, MissingDependencies(
            f"missing runtime dependencies (checked against {hello.executable}, the build environment and the "
            "wheels named together): " + ", ".join(sorted({s.requirement for _, s in unmet})),
            details="\n".join(f"  {os.path.basename(wheel)}: {s.requirement}: {s.describe()}" for wheel, s in unmet),
            hint="put them on PYTHONPATH or --path, or name their wheels too; --relax NAME ignores a version, "
                 "--remove NAME a requirement",
        )
