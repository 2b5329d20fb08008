"""One build, start to end: hook process, dependency check, hooks, artifact placed.

The order is the design. The hook process is started first (runner.Hooks, which
owns it), right after the arguments are parsed; while it boots, sets up sys.path
and imports the backend module, the frontend reads pyproject.toml and imports
what it needs for the rest (tomllib, packaging, pyproject-hooks: see the lazy
imports below). The check asks for distributions on sys.path as the hook
process set it up; nothing is built before it passes; the artifact is built in
a staging dir inside OUTDIR and renamed into place once the hook process has
exited (the rename is the commit point: until then an interrupt leaves OUTDIR
as it was). On any failure the hook process group is killed first (as the
``with Hooks`` block is left), and only then are the staging dir and a new
OUTDIR removed. docs/architecture.md draws the modules a build goes through.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import NamedTuple

from .errors import BackendFailed, BackendUnavailable, BadInput, MissingDependencies
from .interrupts import signals_deferred
from .runner import Hooks

# Imported where used (lazy): the hook process starts first, and what follows is imported while it boots.
#   .project (tomllib): to read pyproject.toml, once the hook process is started
#   .dependencies (packaging): once its setup is sent; not at all with -x
#   .scratch, .staging: for a build's staging dir, once the hook process is started
#   .declared: only with --only-declared
#   .usage: once the setup is sent (what the rest needs, imported while the hook process boots), for the
#     record of what a build's hooks used and --only-declared's hint
#   shutil, tempfile, email.parser: only for requires --runtime's metadata

TYPE_CHECKING = False  # typing's import would delay the hook process's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, Any, Literal

    from .declared import Hidden
    from .dependencies import Environment, Resolved, Status
    from .hookprocess import Hello
    from .isolation import Isolation
    from .project import Project
    from .staging import Staging
    from .usage import Usage

    Kind = Literal["wheel", "sdist", "editable", "metadata"]
    Progress = Callable[[str], None]


# The records made before the hook process starts are NamedTuples, immutable as frozen dataclasses are
# (install/ and compare.py use those): dataclasses imports inspect, and its decorator compiles code for
# each class, which would delay the hook process's start (benchmarks/overhead.py measures it).
class Request(NamedTuple):
    """What one command asks for: the project, its isolation, config settings, and where output goes."""

    srcdir: str
    isolation: Isolation
    config_settings: Mapping[str, Any] = MappingProxyType({})
    skip_dependency_check: bool = False
    log: IO[bytes] | None = None  # where backend output goes; None: isobuild's stderr
    relax: tuple[str, ...] = ()  # --relax: names
    remove: tuple[str, ...] = ()  # --remove: names
    only_declared: bool = False  # the hooks see the declared closure alone (declared.py)
    also_keep: tuple[str, ...] = ()  # --check-declared: names kept visible with their own requirements, as if declared


class Runtime(NamedTuple):
    """What ``requires --runtime`` asks for besides: extras of Requires-Dist, dependency groups."""

    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class Outcome(NamedTuple):
    """What a command found: the artifact (or None), the statuses checked, the hooks' interpreter."""

    path: str | None
    requirements: list[Status]
    hello: Hello
    seconds: float
    missing: MissingDependencies | None = None  # set by requires() instead of raising
    declared: tuple[Resolved, ...] | None = None  # the declared closure (dependencies.py); None when not checked (-x)
    usage: Usage | None = None  # what a build's hooks used (usage.py)
    asked: tuple[str, ...] = ()  # --only-declared: the hidden distributions the build asked for


def _distribution(kind: str) -> str:
    """The artifact whose get_requires hook applies: metadata is prepared for a wheel."""
    return "wheel" if kind == "metadata" else kind


class Session:
    """The live state of one command: the project, its hooks (and their process), the statuses checked."""

    def __init__(
        self,
        request: Request,
        progress: Progress,
        started: float,
        project: Project,
        hello: Hello,
        hooks: Hooks,
        staging: Staging | None,
    ) -> None:
        self.request, self.progress, self.started = request, progress, started
        self.project, self.hello, self.hooks, self.staging = project, hello, hooks, staging
        self.statuses: list[Status] = []
        self._env: Environment | None = None
        self.declared: tuple[Resolved, ...] | None = None  # set by check_all()
        self.hidden: Hidden | None = None  # --only-declared: what the hooks do not see
        self.built: str | None = None  # the artifact in the staging dir, committed when the session ends
        self.path: str | None = None  # where it was committed
        self.step(f"hooks run by {hello.executable} (Python {hello.version_text}); {self.excluded}")
        for warning in project.warnings:
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
        from packaging.requirements import InvalidRequirement  # lazy: see the top

        from .dependencies import Environment, Policy, check, summary  # lazy: see the top

        t0 = time.perf_counter()
        if self._env is None:
            policy = Policy.of(self.request.relax, self.request.remove)
            self._env = Environment(self.hello.sys_path, self.hello.markers, policy)
        try:
            statuses = check(requirements, origin, self._env)
        except InvalidRequirement as exc:
            if origin == "build-system.requires":  # parsed already, but a marker may not evaluate
                raise BadInput(f"{self.project.display}: invalid requirement in build-system.requires: {exc}") from None
            raise BackendFailed(f"{origin} gave an invalid requirement: {exc}") from None
        self.statuses.extend(statuses)
        for status in statuses:
            if status.policy:
                self.step(f"{status.policy}: {status.requirement} ({status.describe()})")
        unmet = [s for s in statuses if not s.satisfied]
        self.step(f"checked {origin}: {len(statuses) - len(unmet)} of {len(statuses)} satisfied", t0)
        if unmet:
            names, advice = summary(unmet)
            raise MissingDependencies(
                f"missing build dependencies (checked against {self.hello.executable}, {self.excluded}): {names}",
                details="\n".join(f"  {s.requirement}: {s.describe()}" for s in unmet),
                hint=self._in_system_site(unmet, origin) + "install them into the build environment (PYTHONPATH "
                f"or --path); {advice}; -x skips the whole check",
            )

    def _in_system_site(self, unmet: list[Status], origin: str) -> str:
        """The start of the hint when the interpreter's own site-packages, left out, would satisfy them."""
        from .dependencies import Environment, check  # lazy: see the top

        system = self.hello.excluded_system_site
        if self.request.isolation.system_site or not system or self._env is None:
            return ""
        # What --system-site would give the hooks: their sys.path and those dirs.
        env = Environment([*self.hello.sys_path, *system], self.hello.markers, self._env.policy)
        there = [s for s in check([s.requirement for s in unmet], origin, env) if s.satisfied]
        if not there:
            return ""
        return (
            f"{', '.join(s.requirement for s in there)}: in {self.hello.executable}'s own site-packages"
            f" ({', '.join(system)}), which isobuild leaves out; --system-site keeps it (never the user site). Or "
        )

    def check_all(self, kind: str) -> None:
        """build-system.requires, then get_requires_for_build_*'s answer, as build checks them."""
        self.check(self.project.requires, "build-system.requires")
        self.only_declared()  # before the backend's import, which is the first hook's under --only-declared
        distribution = _distribution(kind)
        t0 = time.perf_counter()
        requires = sorted(self.hooks.get_requires(distribution))
        self.step(f"get_requires_for_build_{distribution}: {', '.join(requires) or 'nothing more'}", t0)
        self.check(requires, f"get_requires_for_build_{distribution}")
        assert self._env is not None  # check() made it
        self.declared = tuple(sorted(self._env.closure.values(), key=lambda dist: dist.name))
        self.only_declared()

    def only_declared(self) -> None:
        """--only-declared: every distribution outside the closure checked so far is hidden (declared.py)."""
        if not self.request.only_declared:
            return
        from .declared import hidden  # lazy: see the top
        from .dependencies import check  # lazy: see the top

        assert self._env is not None  # check() made it
        check(self.request.also_keep, "--check-declared", self._env)  # admitted into the closure, never unmet
        if self.hidden is not None and len(self.hidden.kept) == len(self._env.closure):
            return  # get_requires_for_build_* added nothing: hidden already
        t0 = time.perf_counter()
        own = {os.path.normpath(entry) for entry in self.project.backend_path}  # the project's, not distributions
        entries = [entry for entry in self.hello.sys_path if os.path.normpath(entry) not in own]
        self.hidden = hidden(entries, self._env.closure.values())
        self.hooks.hide(self.hidden.roots, self.hidden.dists)
        self.step(f"--only-declared: {len(self.hidden.names)} distributions hidden", t0)

    def asked(self, children_refused: list[str]) -> tuple[str, ...]:
        """--only-declared: each hidden distribution the build asked for (an import or an importlib.metadata
        lookup the hider refused, here or in a Python child); () without the option."""
        from .usage import used  # lazy: see the top

        if self.hidden is None:
            return ()
        refused = [r for report in self.hooks.loaded for r in report.get("refused", [])] + children_refused
        found, _ = used(
            [(r, "import") for r in refused if os.path.isabs(r)], self.hello.sys_path, [], self.project.srcdir
        )
        return tuple(
            sorted(({u.name for u in found} | {r for r in refused if not os.path.isabs(r)}) & set(self.hidden.names))
        )

    def explain(self, exc: BackendFailed | BackendUnavailable) -> None:
        """A failure under --only-declared: the hint names each hidden distribution the build asked for
        and how to declare it."""
        from .usage import children_report  # lazy: see the top

        exc.asked = self.asked(children_report(self.hello.child_env["_ISOBUILD_HOOK_PATH"])[1])
        if exc.asked:
            hint = (
                f"--only-declared hid {', '.join(exc.asked)}, which the build asked for: if the build needs it, "
                "add it to build-system.requires (or have get_requires_for_build_* return it)"
            )
            exc.hint = f"{exc.hint}; {hint}" if exc.hint else hint

    def runtime(self, runtime: Runtime) -> list[Status]:
        """Requires-Dist (prepare_metadata_for_build_wheel, else a wheel build) and PEP 735 groups' statuses."""
        import shutil  # lazy: see the top
        import tempfile  # lazy: see the top
        from email.parser import HeaderParser  # lazy: see the top

        from .dependencies import check, group_requirements  # lazy: see the top

        assert self._env is not None  # check_all() made it
        scratch = os.path.join(tempfile.gettempdir(), "metadata")  # in the command's own dir: a fixed name
        os.mkdir(scratch, 0o700)
        try:
            with open(os.path.join(self.hooks.metadata(scratch), "METADATA"), encoding="utf-8") as f:
                headers = HeaderParser().parse(f)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        statuses = check(headers.get_all("Requires-Dist") or [], "Requires-Dist", self._env, runtime.extras)
        for group in runtime.groups:
            requirements = group_requirements(self.project.dependency_groups, group, self.project.display)
            statuses += check(requirements, f"dependency-groups.{group}", self._env)
        return statuses

    def usage(self) -> tuple[Usage, tuple[str, ...]]:
        """What the hooks and their Python children loaded, once the hook process has ended (usage.py),
        and the hidden distributions they asked for (asked())."""
        from .usage import children_report, usage  # lazy: see the top

        children, refused = children_report(self.hello.child_env["_ISOBUILD_HOOK_PATH"])
        return usage(
            self.hooks.loaded,
            children,
            self.hello.sys_path,
            self.project.backend_path,
            self.project.srcdir,
            self.declared,
        ), self.asked(refused)

    def outcome(self, path: str | None, missing: MissingDependencies | None = None) -> Outcome:
        return Outcome(path, self.statuses, self.hello, time.perf_counter() - self.started, missing, self.declared)


def _open(request: Request, progress: Progress, hooks: Hooks, staging: Staging | None, started: float) -> Session:
    """Everything the frontend does while the hook process boots, then its setup's reply."""
    from . import project as project_config  # lazy: see the top

    project = project_config.load(request.srcdir)
    # --only-declared: the backend is imported by the first hook, once what is undeclared is hidden.
    hooks.setup(
        project, request.config_settings, import_backend=not request.only_declared, only_declared=request.only_declared
    )
    if not request.skip_dependency_check:  # -x: not checked, so not parsed either (as build's flag)
        from .dependencies import parse_static  # lazy: see the top

        parse_static(project)
    from . import usage  # noqa: F401  (lazy: see the top) Session.usage() reads it once the hooks are done

    if staging is not None:
        staging.create()
    return Session(request, progress, started, project, hooks.hello(), hooks, staging)


def _staging(request: Request, outdir: str | None, progress: Progress) -> Staging | None:
    """The staging dir inside ``outdir`` (none without), named by the command's inputs; made by _open()."""
    if outdir is None:
        return None
    from .scratch import input_key  # lazy: see the top
    from .staging import Staging  # lazy: see the top

    return Staging(outdir, input_key(os.path.abspath(request.srcdir), request.isolation.python), progress)


@contextmanager
def session(request: Request, progress: Progress, outdir: str | None = None) -> Iterator[Session]:
    """A Session (with a staging dir inside ``outdir``) whose hook process ends with it: on success
    closed, then the artifact committed; on any failure its group killed, then the staging dir removed."""
    started = time.perf_counter()
    staging: Staging | None = None
    try:
        # First: see the module docstring. Leaving this block closes the hook process, or kills its group.
        with Hooks(request.isolation, log=request.log, warn=lambda text: progress(f"warning: {text}")) as hooks:
            staging = _staging(request, outdir, progress)
            live = _open(request, progress, hooks, staging, started)
            yield live
        if staging is not None:
            live.path = staging.commit(live.built)
    except BaseException:
        if staging is not None:
            with signals_deferred():  # a second Ctrl-C must not cut the clean-up short
                staging.remove(failed=True)
        raise


def build(kind: Kind, outdir: str, request: Request, progress: Progress) -> Outcome:
    """Check, build in a staging dir inside OUTDIR, rename into place."""
    if request.only_declared and request.skip_dependency_check:
        raise BadInput("--only-declared needs the dependency check, which finds what is declared: drop -x")
    with session(request, progress, outdir) as live:
        assert live.staging is not None
        try:
            if not request.skip_dependency_check:  # as build's --skip-dependency-check: not even asked
                live.check_all(kind)
            t0 = time.perf_counter()
            if kind == "metadata":
                live.built, hook = live.hooks.metadata(live.staging.dir), "prepare_metadata_for_build_wheel"
            else:
                live.built, hook = live.hooks.build(kind, live.staging.dir), f"build_{kind}"
        except (BackendFailed, BackendUnavailable) as exc:
            live.explain(exc)
            raise
        live.step(f"{hook}: {os.path.basename(live.built)}", t0)
    t0 = time.perf_counter()
    usage, asked = live.usage()
    live.step(f"recorded what the hooks used: {len(usage.used)} distributions", t0)
    return live.outcome(live.path)._replace(usage=usage, asked=asked)


def requires(kind: Kind, request: Request, progress: Progress, runtime: Runtime | None = None) -> Outcome:
    """Every build requirement's status; ``missing`` is set if any is unmet (the backend is asked only
    once build-system.requires is met). With ``runtime``, the project's Requires-Dist and dependency
    groups follow, each with its status in the isolated environment; those do not set ``missing``."""
    request = request._replace(skip_dependency_check=False, only_declared=False)
    with session(request, progress) as live:
        try:
            live.check_all(kind)
        except MissingDependencies as exc:
            return live.outcome(None, exc)
        if runtime is not None:
            live.statuses += live.runtime(runtime)
        return live.outcome(None)


def environment(request: Request) -> Hello:
    """What the hooks will see, from the hook process itself: for debugging a pipeline."""
    from . import project as project_config  # lazy: see the top

    with Hooks(request.isolation, log=request.log) as hooks:
        srcdir = request.srcdir
        has_project = any(os.path.exists(os.path.join(srcdir, name)) for name in ("pyproject.toml", "setup.py"))
        hooks.setup(project_config.load(srcdir) if has_project else None, import_backend=False)
        return hooks.hello()
