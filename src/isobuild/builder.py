"""One build, start to end: hook process, dependency check, hooks, artifact placed.

The order is the design: the hook process is started first, so that its start-up
overlaps the frontend's reading of pyproject.toml and its own imports; the check
asks for distributions on sys.path as the hook process set it up; nothing is
built before the check passes; and the artifact is built in a staging dir inside
OUTDIR and renamed into place (staging.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Literal, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement

from . import project as project_config
from .dependencies import Environment, Status, check
from .errors import BackendFailed, BadInput, MissingDependencies
from .hookprocess import Hello, HookProcess
from .isolation import Isolation
from .project import Project
from .runner import Hooks
from .staging import Staging

Kind = Literal["wheel", "sdist", "editable", "metadata"]
Progress = Callable[[str], None]


class Request(NamedTuple):
    srcdir: str
    isolation: Isolation
    config_settings: dict[str, Any] = {}  # never mutated
    skip_dependency_check: bool = False
    log: IO[bytes] | None = None  # where backend output goes; None: isobuild's stderr


class Outcome(NamedTuple):
    path: str | None
    requirements: list[Status]
    hello: Hello
    seconds: float
    missing: MissingDependencies | None = None  # set by requires() instead of raising


def _distribution(kind: Kind) -> str:
    """The artifact whose get_requires hook applies: metadata is prepared for a wheel."""
    return "wheel" if kind == "metadata" else kind


class Session:
    """The live state of one command: the hook process, the project, its hooks, the statuses checked."""

    def __init__(self, request: Request, progress: Progress, process: HookProcess) -> None:
        self.request = request
        self.progress = progress
        self.started = time.perf_counter()
        self.statuses: list[Status] = []
        self.process = process
        self.project: Project = project_config.load(request.srcdir)
        if not request.skip_dependency_check:  # -x: not checked, so not parsed either (as build's flag)
            _parse_static(self.project)
        self.hello = self.process.setup(request.isolation, self.project.backend_path)
        self.hooks = Hooks(self.project, self.process, request.config_settings)
        self.env = Environment(self.process.dists, self.hello.markers)
        self.step(f"hooks run by {self.hello.executable} (Python {self.hello.version_text}); {self.excluded}")
        for warning in self.project.warnings:
            self.step(f"warning: {warning}")

    @property
    def excluded(self) -> str:
        return "user site excluded" if self.request.isolation.system_site else "user and system site excluded"

    def step(self, text: str, since: float | None = None) -> None:
        if since is not None:
            text = f"{text} ({time.perf_counter() - since:.3f} s)"
        self.progress(text)

    def check(self, requirements: list[str], origin: str) -> None:
        """Record the requirements' statuses; raise MissingDependencies if any is unmet."""
        t0 = time.perf_counter()
        try:
            statuses = check(requirements, origin, self.env)
        except InvalidRequirement as exc:  # build-system.requires was parsed already: the hook's answer
            raise BackendFailed(f"{origin} gave an invalid requirement: {exc}") from None
        self.statuses.extend(statuses)
        unmet = [s for s in statuses if not s.satisfied]
        self.step(f"checked {origin}: {len(statuses) - len(unmet)} of {len(statuses)} satisfied", t0)
        if unmet:
            raise MissingDependencies(
                f"missing build dependencies (checked against {self.hello.executable}, {self.excluded}): "
                + ", ".join(s.requirement for s in unmet),
                details="\n".join(f"  {s.requirement}: {s.describe()}" for s in unmet),
                hint="install them into the build environment (PYTHONPATH or --path), or pass -x to skip the check",
            )

    def check_all(self, kind: Kind) -> None:
        """build-system.requires, then get_requires_for_build_*'s answer, as build checks them."""
        self.check(self.project.requires, "build-system.requires")
        distribution = _distribution(kind)
        t0 = time.perf_counter()
        requires = sorted(self.hooks.get_requires(distribution))
        self.step(f"get_requires_for_build_{distribution}: {', '.join(requires) or 'nothing more'}", t0)
        self.check(requires, f"get_requires_for_build_{distribution}")

    def outcome(self, path: str | None, missing: MissingDependencies | None = None) -> Outcome:
        return Outcome(path, self.statuses, self.hello, time.perf_counter() - self.started, missing)


def _parse_static(project: Project) -> None:
    for text in project.requires:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise BadInput(f"{project.display}: invalid requirement {text!r} in build-system.requires: {exc}") from None


@contextmanager
def session(request: Request, progress: Progress) -> Iterator[Session]:
    """A Session whose hook process ends with it: closed on success, its group killed on any failure."""
    started = time.perf_counter()
    process = HookProcess(request.isolation.python, log=request.log)  # first: it boots while the project is read
    try:
        live = Session(request, progress, process)
        live.started = started
        yield live
    except BaseException:
        process.kill()
        raise
    process.close()


def build(kind: Kind, outdir: str, request: Request, progress: Progress) -> Outcome:
    """Check, build in a staging dir inside OUTDIR, rename into place."""
    project_config.require_srcdir(request.srcdir)  # before OUTDIR, which defaults to SRCDIR/dist, is made
    with Staging(outdir) as staging:
        with session(request, progress) as live:
            if not request.skip_dependency_check:  # as build's --skip-dependency-check: not even asked
                live.check_all(kind)
            t0 = time.perf_counter()
            if kind == "metadata":
                built, hook = live.hooks.metadata(staging.dir), "prepare_metadata_for_build_wheel"
            else:
                built, hook = live.hooks.build(kind, staging.dir), f"build_{kind}"
            path = staging.place(built)
            live.step(f"{hook}: {os.path.basename(path)}", t0)
        return live.outcome(path)


def requires(kind: Kind, request: Request, progress: Progress) -> Outcome:
    """Every build requirement's status; ``missing`` is set if any is unmet (the backend is asked only
    once build-system.requires is met)."""
    with session(request._replace(skip_dependency_check=False), progress) as live:
        try:
            live.check_all(kind)
        except MissingDependencies as exc:
            return live.outcome(None, exc)
        return live.outcome(None)


def environment(request: Request) -> Hello:
    """What the hooks will see, from the hook process itself: for debugging a pipeline."""
    srcdir = request.srcdir
    has_project = any(os.path.exists(os.path.join(srcdir, name)) for name in ("pyproject.toml", "setup.py"))
    backend_path = project_config.load(srcdir).backend_path if has_project else []
    process = HookProcess(request.isolation.python, log=request.log)
    try:
        hello = process.setup(request.isolation, backend_path)
    except BaseException:
        process.kill()
        raise
    process.close()
    return hello
