"""One build, start to end: hook process, dependency check, hooks, artifact placed.

The order is the design. The hook process is started first, right after the
arguments are parsed; while it boots, sets up sys.path and imports the backend
module, the frontend reads pyproject.toml and imports what it needs for the
rest (tomllib, packaging, pyproject-hooks: that is why project, staging,
dependencies and runner are imported inside session(), not at the top). The
check asks for distributions on sys.path as the hook process set it up;
nothing is built before it passes; the artifact is built in a staging dir
inside OUTDIR and renamed into place once the hook process has exited (the
rename is the commit point: until then an interrupt leaves OUTDIR as it was).
On any failure the hook process group is killed first, and only then are the
staging dir and a new OUTDIR removed.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from .errors import BackendFailed, BackendUnavailable, BadInput, MissingDependencies
from .hookprocess import HookProcess, HookProcessDied
from .interrupts import signals_deferred

TYPE_CHECKING = False  # typing's import would delay the hook process's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, Any, Literal

    from .declared import Hidden
    from .dependencies import Environment, Resolved, Status
    from .hookprocess import Hello
    from .isolation import Isolation
    from .project import Project
    from .runner import Hooks
    from .staging import Staging
    from .usage import Usage

    Kind = Literal["wheel", "sdist", "editable", "metadata"]
    Progress = Callable[[str], None]


class Request:
    """What one command asks for: the project, its isolation, config settings, and where output goes."""

    __slots__ = ("srcdir", "isolation", "config_settings", "skip_dependency_check", "log", "relax", "remove",
                 "only_declared", "also_keep")

    def __init__(self, srcdir: str, isolation: Isolation, config_settings: dict[str, Any] | None = None,
                 skip_dependency_check: bool = False, log: IO[bytes] | None = None,
                 relax: tuple[str, ...] = (), remove: tuple[str, ...] = (), only_declared: bool = False,
                 also_keep: tuple[str, ...] = ()) -> None:
        self.srcdir = srcdir
        self.isolation = isolation
        self.config_settings = dict(config_settings or {})
        self.skip_dependency_check = skip_dependency_check
        self.log = log  # where backend output goes; None: isobuild's stderr
        self.relax, self.remove = relax, remove  # --relax, --remove: names
        self.only_declared = only_declared  # the hooks see the declared closure alone (declared.py)
        self.also_keep = also_keep  # --check-declared: names kept visible with their own requirements, as if declared


class Outcome:
    """What a command found: the artifact (or None), the statuses checked, the hooks' interpreter."""

    __slots__ = ("path", "requirements", "hello", "seconds", "missing", "declared", "usage", "asked")

    def __init__(self, path: str | None, requirements: list[Status], hello: Hello, seconds: float,
                 missing: MissingDependencies | None = None, declared: tuple[Resolved, ...] | None = None) -> None:
        self.path = path
        self.requirements = requirements
        self.hello = hello
        self.seconds = seconds
        self.missing = missing  # set by requires() instead of raising
        self.declared = declared  # the declared closure (dependencies.py); None when not checked (-x)
        self.usage: Usage | None = None  # what a build's hooks used (usage.py)
        self.asked: tuple[str, ...] = ()  # --only-declared: the hidden distributions the build asked for


def _distribution(kind: str) -> str:
    """The artifact whose get_requires hook applies: metadata is prepared for a wheel."""
    return "wheel" if kind == "metadata" else kind


class Session:
    """The live state of one command: the hook process, the project, its hooks, the statuses checked."""

    def __init__(self, request: Request, progress: Progress, started: float, project: Project, hello: Hello,
                 hooks: Hooks, process: HookProcess, staging: Staging | None) -> None:
        self.request, self.progress, self.started = request, progress, started
        self.project, self.hello, self.hooks, self.process, self.staging = project, hello, hooks, process, staging
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
        # Imported here, not in _open(): with -x, packaging is not needed at all.
        from packaging.requirements import InvalidRequirement

        from .dependencies import Environment, Policy, check, summary

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
        from .dependencies import Environment, check

        system = self.hello.excluded_system_site
        if self.request.isolation.system_site or not system or self._env is None:
            return ""
        # What --system-site would give the hooks: their sys.path and those dirs.
        env = Environment([*self.hello.sys_path, *system], self.hello.markers, self._env.policy)
        there = [s for s in check([s.requirement for s in unmet], origin, env) if s.satisfied]
        if not there:
            return ""
        return (f"{', '.join(s.requirement for s in there)}: in {self.hello.executable}'s own site-packages"
                f" ({', '.join(system)}), which isobuild leaves out; --system-site keeps it (never the user site). Or ")

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
        from .declared import hidden
        from .dependencies import check

        assert self._env is not None  # check() made it
        check(self.request.also_keep, "--check-declared", self._env)  # admitted into the closure, never unmet
        if self.hidden is not None and len(self.hidden.kept) == len(self._env.closure):
            return  # get_requires_for_build_* added nothing: hidden already
        t0 = time.perf_counter()
        own = {os.path.normpath(entry) for entry in self.project.backend_path}  # the project's, not distributions
        entries = [entry for entry in self.hello.sys_path if os.path.normpath(entry) not in own]
        self.hidden = hidden(entries, self._env.closure.values())
        try:
            self.process.hide(self.hidden.roots, self.hidden.dists)
        except HookProcessDied as exc:
            raise BackendFailed(f"the hook process {exc.description} while hiding undeclared distributions") from None
        self.step(f"--only-declared: {len(self.hidden.names)} distributions hidden", t0)
        site_dirs = {os.path.normpath(d) for d in self.request.isolation.site_dirs}
        ran = [root for root in self.hidden.roots if root.endswith(".pth") and os.path.dirname(root) in site_dirs]
        if ran:  # run by the hook process's setup, before the closure was known; its children skip them
            self.step(f"warning: --only-declared: the hook process ran these .pth files of hidden distributions "
                      f"before they could be hidden (its Python children do not): {', '.join(ran)}")

    def asked(self, children_refused: list[str]) -> tuple[str, ...]:
        """--only-declared: each hidden distribution the build asked for (an import or an importlib.metadata
        lookup the hider refused, here or in a Python child); () without the option."""
        from .usage import used

        if self.hidden is None:
            return ()
        refused = [r for report in self.process.loaded for r in report.get("refused", [])] + children_refused
        found, _ = used([(r, "import") for r in refused if os.path.isabs(r)], self.hello.sys_path, [], self.project.srcdir)
        return tuple(sorted(({u.name for u in found} | {r for r in refused if not os.path.isabs(r)}) &
                            set(self.hidden.names)))

    def explain(self, exc: BackendFailed | BackendUnavailable) -> None:
        """A failure under --only-declared: the hint names each hidden distribution the build asked for
        and how to declare it."""
        from .usage import children_report

        exc.asked = self.asked(children_report(self.hello.child_env["_ISOBUILD_HOOK_PATH"])[1])
        if exc.asked:
            hint = (f"--only-declared hid {', '.join(exc.asked)}, which the build asked for: if the build needs it, "
                    "add it to build-system.requires (or have get_requires_for_build_* return it)")
            exc.hint = f"{exc.hint}; {hint}" if exc.hint else hint

    def runtime(self, runtime: Runtime) -> list[Status]:
        """Requires-Dist (prepare_metadata_for_build_wheel, else a wheel build) and PEP 735 groups' statuses."""
        import shutil
        import tempfile
        from email.parser import HeaderParser

        from .dependencies import check, group_requirements

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
        from .usage import children_report, usage

        children, refused = children_report(self.hello.child_env["_ISOBUILD_HOOK_PATH"])
        return usage(self.process.loaded, children, self.hello.sys_path, self.project.backend_path,
                     self.project.srcdir, self.declared), self.asked(refused)

    def outcome(self, path: str | None, missing: MissingDependencies | None = None) -> Outcome:
        return Outcome(path, self.statuses, self.hello, time.perf_counter() - self.started, missing, self.declared)


def _open(request: Request, progress: Progress, process: HookProcess, staging: Staging | None,
          started: float) -> Session:
    """Everything the frontend does while the hook process boots, then its setup's reply."""
    from . import project as project_config

    project = project_config.load(request.srcdir)
    # --only-declared: the backend is imported by the first hook, once what is undeclared is hidden.
    process.setup(request.isolation, project.backend_path, None if request.only_declared else project.backend)
    # Imported only now: the hook process sets up and imports the backend meanwhile.
    from .runner import Hooks

    if not request.skip_dependency_check:  # -x: not checked, so not parsed either (as build's flag)
        from .dependencies import parse_static

        parse_static(project)
    if staging is not None:
        staging.create()
    hello = process.hello()
    hooks = Hooks(project, process, request.config_settings, hello.sys_path,
                  warn=lambda text: progress(f"warning: {text}"))
    return Session(request, progress, started, project, hello, hooks, process, staging)


@contextmanager
def session(request: Request, progress: Progress, outdir: str | None = None) -> Iterator[Session]:
    """A Session (with a staging dir inside ``outdir``) whose hook process ends with it: on success
    closed, then the artifact committed; on any failure its group killed, then the staging dir removed."""
    started = time.perf_counter()
    process: HookProcess | None = None
    staging: Staging | None = None
    try:
        with signals_deferred():  # a Ctrl-C during the spawn waits until the process is ours to kill
            process = HookProcess(request.isolation.python, log=request.log)  # first: see the module docstring
        from .scratch import input_key
        from .staging import Staging

        key = input_key(os.path.abspath(request.srcdir), request.isolation.python)  # the staging dir's name
        staging = None if outdir is None else Staging(outdir, key, progress)
        live = _open(request, progress, process, staging, started)
        yield live
        process.close()
        if staging is not None:
            live.path = staging.commit(live.built)
    except BaseException:
        with signals_deferred():  # a second Ctrl-C must not cut the clean-up short
            if process is not None:
                process.kill()
            if staging is not None:
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
    outcome = live.outcome(live.path)
    outcome.usage, outcome.asked = usage, asked
    return outcome


def requires(kind: Kind, request: Request, progress: Progress, runtime: Runtime | None = None) -> Outcome:
    """Every build requirement's status; ``missing`` is set if any is unmet (the backend is asked only
    once build-system.requires is met). With ``runtime``, the project's Requires-Dist and dependency
    groups follow, each with its status in the isolated environment; those do not set ``missing``."""
    request = Request(request.srcdir, request.isolation, request.config_settings, False, request.log,
                      request.relax, request.remove)
    with session(request, progress) as live:
        try:
            live.check_all(kind)
        except MissingDependencies as exc:
            return live.outcome(None, exc)
        if runtime is not None:
            live.statuses += live.runtime(runtime)
        return live.outcome(None)


class Runtime:
    """What ``requires --runtime`` asks for besides: extras of Requires-Dist, dependency groups."""

    __slots__ = ("extras", "groups")

    def __init__(self, extras: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> None:
        self.extras, self.groups = extras, groups


def environment(request: Request) -> Hello:
    """What the hooks will see, from the hook process itself: for debugging a pipeline."""
    from . import project as project_config

    process = HookProcess(request.isolation.python, log=request.log)
    try:
        srcdir = request.srcdir
        has_project = any(os.path.exists(os.path.join(srcdir, name)) for name in ("pyproject.toml", "setup.py"))
        process.setup(request.isolation, project_config.load(srcdir).backend_path if has_project else [], None)
        hello = process.hello()
    except BaseException:
        process.kill()
        raise
    process.close()
    return hello
