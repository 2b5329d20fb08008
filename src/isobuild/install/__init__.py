"""Wheels into a scheme of the *target* interpreter, with scripts that run the real interpreter.

pypa/installer does the wheel logic (RECORD validation, scheme of each member,
entry points, RECORD writing). This package adds what a pipeline needs on top,
one module per step of the data flow: ``checks`` (every wheel refused or
accepted before anything is written: names, RECORD, Wheel-Version, tags),
``scheme`` (what the target interpreter is: paths, tags, shebangs), ``plan``
(where each file goes; clashes refused), ``previous`` (the installed version
--overwrite replaces), ``destination`` (installer's destination, writing through
the journal), ``journal`` (the lock, the journal written ahead, the rollback and
the recovery after a SIGKILL), ``bytecode`` (compiled by the target).
"""

from __future__ import annotations

import csv
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence

from installer import install as installer_install
from installer.sources import WheelFile

from ..errors import BadInput, InstallFailed
from ..interrupts import signals_deferred
from .checks import Checked, check_tags, inspect, refuse
from .destination import Destination
from .journal import JOURNAL, Journal
from .plan import Planner
from .previous import replace_installed
from .scheme import TargetScheme, target_scheme
from .target import Installed, Target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from installer.sources import WheelContentElement

__all__ = ["Installed", "Target", "install", "install_paths"]


Check = Callable[[list[str], list[str]], None]  # (wheels, the destination's site dirs as staged)


def install_paths(
    paths: Sequence[str],
    target: Target,
    build: Callable[[str], str],
    warn: Callable[[str], None],
    precheck: Check | None = None,
    postcheck: Check | None = None,
) -> list[Installed]:
    """Install wheel files, or build the one source directory's wheel (``build(outdir)``) and install that."""
    with tempfile.TemporaryDirectory(prefix="isobuild-install-") as built:
        if os.path.isdir(paths[0]):
            if len(paths) > 1:
                raise BadInput("install takes either one SRCDIR or wheel files")
            paths = [build(built)]
        for wheel in paths:
            if not os.path.isfile(wheel):
                raise BadInput(f"{wheel}: no such wheel file or source directory")
        return install(paths, target, warn, precheck, postcheck)


class _Source(WheelFile):
    """installer's WheelFile, less the members the plan leaves out (entry-point wrappers, see plan.py).

    installer accepts Wheel-Version 1.x alone; the spec refuses only a greater major
    version, which checks.py did. So installer is told 1.0 when it reads WHEEL; the
    WHEEL file itself is installed as the wheel has it.
    """

    def __init__(self, f: zipfile.ZipFile, skipped: frozenset[str]) -> None:
        super().__init__(f)
        self.skipped = skipped

    # Work-around: docs/upstream.md, "Launchers shadowed by entry points"
    def get_contents(self) -> Iterator[WheelContentElement]:
        return (item for item in super().get_contents() if item[0][0] not in self.skipped)

    # Work-around: docs/upstream.md, "Wheel-Version"
    def read_dist_info(self, filename: str) -> str:
        text = super().read_dist_info(filename)
        if filename != "WHEEL":
            return text
        return "".join(
            "Wheel-Version: 1.0\n" if line.lower().startswith("wheel-version:") else line
            for line in text.splitlines(keepends=True)
        )


def _extra(target: Target) -> dict[str, bytes]:
    extra = {"INSTALLER": f"{target.installer_name}\n".encode()} if target.installer_name else {}
    if target.requested:
        extra["REQUESTED"] = b""
    return extra


def _install_one(
    checked: Checked, scheme: TargetScheme, target: Target, destination: Destination, site_dirs: list[str]
) -> Installed:
    scheme_dict = destination.scheme_dict
    extra = _extra(target)
    plan = Planner(scheme_dict, target).plan(checked, list(extra))
    journal = destination.journal
    for path, what in plan.paths.items():  # else the next install would take it for a dead install's journal
        if os.path.dirname(path) == journal.root and os.path.basename(path).startswith(JOURNAL):
            raise refuse(checked.path, f"{what} would be written to {path}, where isobuild keeps its install journal")
    if target.overwrite:
        replace_installed(checked.name, site_dirs, journal.root, set(plan.paths).union(journal.created), journal)
    with zipfile.ZipFile(checked.path) as zf:
        installer_install(_Source(zf, plan.skipped), destination, extra)
    record = next(p for p in plan.paths if p.endswith(f"{checked.dist_info}/RECORD"))
    scripts, bytecode = _counted(record, target.staged(os.path.abspath(scheme_dict["scripts"])))
    return Installed(
        checked.path,
        checked.name,
        checked.version,
        os.path.dirname(record),
        len(plan.paths),
        {"scheme": scheme.name, **scheme_dict},
        scripts,
        bytecode,
    )


def _counted(record: str, scripts_dir: str) -> tuple[int, int]:
    """The scripts (files in ``scripts_dir``) and the bytecode files among the rows of the RECORD written."""
    base = os.path.dirname(os.path.dirname(record))
    with open(record, newline="", encoding="utf-8") as f:
        paths = [os.path.normpath(os.path.join(base, row[0])) for row in csv.reader(f) if row]
    return sum(os.path.dirname(path) == scripts_dir for path in paths), sum(path.endswith(".pyc") for path in paths)


def install(
    wheels: Sequence[str],
    target: Target,
    warn: Callable[[str], None],
    precheck: Check | None = None,
    postcheck: Check | None = None,
) -> list[Installed]:
    """Check every wheel first; then install them all, or (on any failure) none of them.

    From the plan to the commit, the install holds the lock on its destination root and
    journals every change ahead (journal.py). ``precheck`` runs before anything is written,
    ``postcheck`` once everything is (a failure of either is the install's: the rollback follows)."""
    checked = [inspect(wheel) for wheel in wheels]
    scheme = target_scheme(target)
    if target.tag_check:
        supported = scheme.supported_tags()
        for one in checked:
            check_tags(one, supported, target.python)
    planner = Planner(scheme.scheme_dict(""), target)
    staged = {key: planner.staged(key, "") or os.sep for key in scheme.scheme_dict("")}
    site_dirs = sorted({staged["purelib"], staged["platlib"]})
    for one in checked:
        for note in one.notes:
            warn(note)
    journal = Journal()
    results = []
    destination: Destination | None = None
    try:
        journal.begin(os.path.commonpath(list(staged.values())), warn)  # the dir every write is under
        if precheck is not None:
            precheck([one.path for one in checked], site_dirs)
        for one in checked:
            destination = Destination(scheme.scheme_dict(one.name), target, journal)
            results.append(_install_one(one, scheme, target, destination, site_dirs))
        if postcheck is not None:
            postcheck([one.path for one in checked], site_dirs)
        journal.commit()  # the commit point: an interrupt from here on finds the install standing
    except BaseException as exc:
        with signals_deferred():  # a second Ctrl-C must not cut the rollback short
            if destination is not None:
                destination.compiler.abandon()
            journal.rollback()
        if isinstance(exc, OSError):
            raise InstallFailed(f"install failed and was rolled back: {exc}") from None
        raise
    return results
