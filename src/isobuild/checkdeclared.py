"""``--check-declared`` (wheel, sdist, editable): which undeclared distribution, if any, changes the artifact.

The usual build goes into OUTDIR and is the result; its record (usage.py) names the undeclared
distributions the hooks used. The comparison builds then run in ONE copy of the tree at a fixed path
in the command's temp dir (compiled extensions embed the paths of their sources and headers, so two
builds compared must see every file at the same path), re-made before each build from a pristine
copy taken before the usual build wrote anything into SRCDIR (setuptools' build/ of one build must
not feed the next). Their artifacts are compared member by member (compare.py):

- A, as usual, against D, with --only-declared. The same members: every undeclared one is harmless.
- Else A2, as usual again: members that differ between A and A2 are unreproducible, never blamed.
- Else each candidate alone kept visible (with its own requirements, as if declared): the used
  undeclared distributions, then the hidden ones D asked for (a metadata lookup is no import). The
  first that gives A's members back matters; the other used ones are harmless.
- Else all candidates together: if that gives A back, they matter together; if not, the difference
  comes from something the record did not see, reported under UNRECORDED.

Backend output of the comparison builds goes to stderr with -v only; their artifacts and trees go
with the command's temp dir (scratch.py); OUTDIR only ever gets the usual artifact.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass

from . import builder
from .compare import compare
from .declared import hidden
from .errors import BackendFailed, BackendUnavailable, BadInput
from .reproducible import copy_tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from .builder import Kind, Outcome, Progress, Request

OPTION = "--check-declared"
UNRECORDED = "(unrecorded)"  # the key in ``matters`` when no candidate explains the difference
_SHOWN = 5  # differing members named in "what changed"


@dataclass(frozen=True)
class Built:
    """One comparison build: its artifact (None: it failed, and ``failure`` says how)."""

    path: str | None
    name: str = ""  # the artifact's file name, as the backend gave it
    failure: str = ""  # the ERROR line's text
    asked: tuple[str, ...] = ()  # under --only-declared: the hidden distributions the build asked for


@dataclass(frozen=True)
class Verdicts:
    """What --check-declared found: (name, what changed without it) for each one that matters, the
    names proven harmless, the members no distribution is blamed for, and how many builds it took."""

    matters: tuple[tuple[str, str], ...]
    harmless: tuple[str, ...]
    unreproducible: tuple[str, ...]
    builds: int


class _Copies:
    """The comparison builds: each in the same copy of the pristine tree, into the same output dir."""

    def __init__(
        self,
        kind: Kind,
        request: Request,
        pristine: str,
        scratch: str,
        say: tuple[Progress, Progress],
        log: IO[bytes] | None,
    ) -> None:
        self.kind, self.request, self.pristine, self.log = kind, request, pristine, log
        self.progress, self.detail = say
        self.trees, self.out, self.kept = (os.path.join(scratch, name) for name in ("tree", "out", "artifacts"))
        os.mkdir(self.kept, 0o700)
        self.count = 0

    def build(self, label: str, only_declared: bool, also_keep: tuple[str, ...] = ()) -> Built:
        """Build in a fresh copy; a backend failure is an answer (``failure``), any other error is raised."""
        self.count += 1
        label = f"{OPTION} build {self.count} ({label})"
        shutil.rmtree(self.trees, ignore_errors=True)
        os.mkdir(self.trees, 0o700)
        tree, _ = copy_tree(self.pristine, self.trees, OPTION)
        request = self.request._replace(srcdir=tree, log=self.log, only_declared=only_declared, also_keep=also_keep)
        t0 = time.perf_counter()
        try:
            outcome = builder.build(self.kind, self.out, request, lambda text: self.detail(f"{label}: {text}"))
        except (BackendFailed, BackendUnavailable) as exc:
            self.progress(f"{label}: failed ({time.perf_counter() - t0:.3f} s)")
            return Built(
                None, failure=exc.message.splitlines()[0] if exc.message else type(exc).__name__, asked=exc.asked
            )
        assert outcome.path is not None  # build() returns the artifact
        path = os.path.join(self.kept, f"{self.count}-{os.path.basename(outcome.path)}")
        os.replace(outcome.path, path)
        self.progress(f"{label}: done ({time.perf_counter() - t0:.3f} s)")
        return Built(path, os.path.basename(outcome.path), asked=outcome.asked)


def _differing(first: str, second: Built) -> frozenset[str] | None:
    """The members whose content differs between two artifacts; None when the second build failed."""
    if second.path is None:
        return None
    try:
        return frozenset(diff.name for diff in compare(first, second.path).members)
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
        raise BackendFailed(f"{OPTION}: {second.path} cannot be read as an artifact: {exc}") from None


def _restores(usual: str, built: Built, unreproducible: frozenset[str]) -> bool:
    """Whether ``built`` has the usual build's members, unreproducible ones aside."""
    differing = _differing(usual, built)
    return differing is not None and differing <= unreproducible


def _what_changed(
    usual: Built, without: Built, differing: frozenset[str] | None, unreproducible: frozenset[str]
) -> str:
    """What changed without the undeclared distributions: ``differing`` is _differing(usual, without)."""
    if differing is None:
        return f"the build failed: {without.failure}"
    names = sorted(differing - unreproducible)
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    renamed = f"{without.name} instead of {usual.name}; " if without.name != usual.name else ""
    return f"{renamed}members differ: {', '.join(names[:_SHOWN])}{more}"


def _blame(
    copies: _Copies, usual: Built, changed: str, unreproducible: frozenset[str], candidates: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """Which candidates give the usual artifact back when kept visible: one at a time, then together;
    ``changed`` says what changed without them."""
    assert usual.path is not None
    for name in candidates:
        if _restores(usual.path, copies.build(f"only declared, and {name}", True, (name,)), unreproducible):
            return ((name, changed),)
    if len(candidates) > 1 and _restores(
        usual.path, copies.build("only declared, and all used", True, candidates), unreproducible
    ):
        return tuple(
            (name, f"{changed} (only together with {', '.join(n for n in candidates if n != name)})")
            for name in candidates
        )
    unseen = "none of the undeclared distributions it used" if candidates else "no undeclared distribution it used"
    return (
        (
            UNRECORDED,
            f"{changed}; {unseen} gives the usual artifact back: the build uses something it does "
            "not declare in a way the record does not see (a metadata lookup without import, a "
            "file or a command of a hidden distribution)",
        ),
    )


def _compare_builds(copies: _Copies, used: tuple[str, ...]) -> Verdicts:
    """A against D; then, if they differ, A2 and the candidates (the module docstring)."""
    usual = copies.build("as usual, in a copy", False)
    if usual.path is None:
        raise BackendFailed(
            f"{OPTION}: the usual build succeeded, but the same build in a copy of the tree "
            f"at {copies.trees} failed: {usual.failure}",
            hint="the check needs a build that does not depend on where its tree is; the "
            "usual artifact is kept; -v shows the copies' backend output",
        )
    without = copies.build("only declared", True)
    differing = _differing(usual.path, without)
    if differing == frozenset():
        return Verdicts((), used, (), copies.count)
    again = copies.build("as usual again, for what is not reproducible", False)
    if again.path is None:
        raise BackendFailed(
            f"{OPTION}: the usual build in the copy succeeded once and then failed: {again.failure}",
            hint="a build that fails at random cannot be checked; the usual artifact is kept",
        )
    unreproducible = _differing(usual.path, again) or frozenset()
    if differing is not None and differing <= unreproducible:
        return Verdicts((), used, tuple(sorted(unreproducible)), copies.count)
    # What the build imported first; then what D looked up and was refused (entry_points() asks every one).
    candidates = (*used, *sorted(set(without.asked) - set(used)))
    changed = _what_changed(usual, without, differing, unreproducible)
    matters = _blame(copies, usual, changed, unreproducible, candidates)
    blamed = {name for name, _ in matters}
    harmless = () if UNRECORDED in blamed else tuple(n for n in used if n not in blamed)
    return Verdicts(matters, harmless, tuple(sorted(unreproducible)), copies.count)


def check(
    kind: Kind, outdir: str, request: Request, say: tuple[Progress, Progress], log: IO[bytes] | None
) -> tuple[Outcome, Verdicts]:
    """The usual build into ``outdir`` (the result), then the comparison builds. ``say`` is (progress, detail):
    the comparison builds' own steps are details (-v), as their backend output, which goes to ``log``."""
    progress = say[0]
    if request.skip_dependency_check or request.only_declared:
        raise BadInput(
            f"{OPTION} builds as usual and with only what is declared: it needs the dependency check and "
            "is not combined with --only-declared",
            hint="drop -x and --only-declared",
        )
    scratch = os.path.join(tempfile.gettempdir(), "declared")  # in the command's own dir: it goes with it
    os.mkdir(scratch, 0o700)
    os.mkdir(os.path.join(scratch, "pristine"), 0o700)
    # Taken before the usual build writes into SRCDIR (setuptools' build/, egg-info).
    pristine, _ = copy_tree(os.path.abspath(request.srcdir), os.path.join(scratch, "pristine"), OPTION)
    outcome = builder.build(kind, outdir, request, progress)
    assert outcome.usage is not None and outcome.usage.undeclared is not None  # recorded, the check ran
    used = tuple(u.name for u in outcome.usage.undeclared)
    if not used and not hidden(outcome.hello.sys_path, outcome.declared or ()).names:
        progress(f"{OPTION}: the build environment holds nothing but the declared closure: nothing to compare")
        return outcome, Verdicts((), (), (), 0)
    progress(
        f"{OPTION}: the usual build used {len(used)} undeclared distribution{'' if len(used) == 1 else 's'}; "
        f"comparing builds in a copy of the tree at {os.path.join(scratch, 'tree')}"
    )
    verdicts = _compare_builds(_Copies(kind, request, pristine, scratch, say, log), used)
    return outcome, verdicts
