"""One build, start to end: hook process, dependency check, hooks, and the artifact moved into place.

The order matters: the hook process is started first (its start-up overlaps
the frontend's imports) and runs the build's first hook while the frontend
imports and checks; distributions are looked up on sys.path as set up, before
the backend's import could extend it (setuptools puts a vendored wheel there);
nothing is built before the check passes; and the artifact is built in a temp
dir inside OUTDIR and renamed into place, so OUTDIR never holds a partial artifact.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, Union

from . import project as project_config
from .errors import BackendFailed, BackendUnavailable, BadInput, IsobuildError, MissingDependencies
from .hookprocess import Hello, HookProcess
from .isolation import REMOVED_VARIABLES, SET_VARIABLES, Isolation

if TYPE_CHECKING:
    from pyproject_hooks import BuildBackendHookCaller

    from .deps import Status

Kind = Literal["wheel", "sdist", "editable", "metadata"]
ConfigSettings = dict[str, Union[str, list[str]]]
Progress = Callable[[str], None]


def _distribution(kind: Kind) -> str:
    """The artifact whose get_requires hook applies: metadata is prepared for a wheel."""
    return "wheel" if kind == "metadata" else kind


def _build_hook(kind: Kind) -> str:
    return "prepare_metadata_for_build_wheel" if kind == "metadata" else f"build_{kind}"


def config_settings(pairs: Sequence[str], json_text: str | None) -> ConfigSettings:
    """-C KEY=VALUE pairs over --config-json: a repeated key becomes a list, as pip and build make it."""
    settings: dict[str, Any] = {}
    if json_text is not None:
        import json

        try:
            settings = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise BadInput("--config-json must be a JSON object")
    seen: set[str] = set()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key:
            raise BadInput(f"-C {pair!r}: the key is empty")
        if key not in seen:
            settings[key] = value
        elif isinstance(settings[key], list):
            settings[key].append(value)
        else:
            settings[key] = [settings[key], value]
        seen.add(key)
    return settings


class Request(NamedTuple):
    srcdir: str
    isolation: Isolation
    config_settings: ConfigSettings = {}  # never mutated
    skip_dependency_check: bool = False
    log: IO[bytes] | None = None  # where backend output goes; None: isobuild's stderr


class Outcome(NamedTuple):
    path: str | None
    requirements: list[Status]
    hello: Hello
    seconds: float
    missing: MissingDependencies | None = None  # set by requires() instead of raising

    def as_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"path": self.path, "size": None, "sha256": None}
        if self.path and os.path.isfile(self.path):
            info["size"] = os.path.getsize(self.path)
            import hashlib

            with open(self.path, "rb") as f:
                info["sha256"] = hashlib.sha256(f.read()).hexdigest()
        info.update(
            requirements=[status.as_json() for status in self.requirements],
            interpreter=self.hello.executable,
            python_version=self.hello.version_text,
            seconds=round(self.seconds, 3),
        )
        return info


class _Session:
    """The live state of one command: hook process, project, hook caller, statuses."""

    def __init__(self, request: Request, progress: Progress) -> None:
        self.request = request
        self.progress = progress
        self.started = time.perf_counter()
        self.statuses: list[Status] = []
        self._env: Any = None
        self.process: HookProcess | None = None
        self.created: list[str] = []  # OUTDIR and parents this build created
        self.staging: str | None = None  # the build's temp dir inside OUTDIR

    def start(self, kind: Kind, outdir: str | None) -> None:
        """Start the hook process first: its start-up overlaps the imports and parsing done here.

        With ``outdir``, OUTDIR and the staging dir in it are made before the
        hook process gets its setup: with -x the build hook itself runs ahead.
        """
        request = self.request
        self.process = process = HookProcess.start(request.isolation.python, log=request.log)
        self.project = project = project_config.load(request.srcdir)
        if outdir is not None:
            import tempfile

            self.created = _prepare_outdir(outdir)
            self.staging = tempfile.mkdtemp(prefix=".isobuild-", dir=outdir)
        ahead = self._first_hook(kind)
        requires = None if request.skip_dependency_check else project.requires
        # The marker values come from the target, unless that is this interpreter: packaging has them here.
        markers = requires is not None and request.isolation.python != sys.executable
        process.send_setup(request.isolation, project.backend_path, requires, ahead, markers=markers)
        from pyproject_hooks import BuildBackendHookCaller

        if requires is not None:  # -x: not checked, so not parsed either (as build's flag)
            from packaging.requirements import InvalidRequirement, Requirement

            from . import deps  # noqa: F401  (imported while the hook process runs ahead, not after)

            for text in requires:
                try:
                    Requirement(text)
                except InvalidRequirement as exc:
                    raise BadInput(f"{project.display}: invalid requirement {text!r} in build-system.requires: {exc}") from None
        _first_call_costs()
        try:
            self.hello = process.hello()
        except BackendFailed:
            if ahead is None:
                raise
            # The process died in the hook run ahead: start over without it, so
            # that the failure happens again in the open, output and all.
            process.kill()
            self.process = process = HookProcess(request.isolation.python, log=request.log)
            process.send_setup(request.isolation, project.backend_path, requires, markers=markers)
            self.hello = process.hello()
        self.hooks: BuildBackendHookCaller = BuildBackendHookCaller(
            project.srcdir, project.backend,
            backend_path=[os.path.relpath(path, project.srcdir) for path in project.backend_path],
            runner=process, python_executable=request.isolation.python,
        )
        self.step(f"hooks run by {self.hello.executable} (Python {self.hello.version_text}); {self.excluded}")
        for warning in project.warnings:
            self.step(f"warning: {warning}")

    def _first_hook(self, kind: Kind) -> dict[str, Any] | None:
        """The build's first hook as pyproject-hooks will call it, for the hook process to run ahead.

        That is get_requires_for_build_*, or with -x (nothing to check first) the build hook itself.
        """
        script = _in_process_script()
        if script is None:
            return None
        project = self.project
        env = {"_PYPROJECT_HOOKS_BUILD_BACKEND": project.backend}
        if project.backend_path:  # in both of pyproject-hooks' encodings: _in_process.py reads its own
            import json

            env["_PYPROJECT_HOOKS_BACKEND_PATH"] = os.pathsep.join(project.backend_path)
            env["_PYPROJECT_HOOKS_BACKEND_PATH_JSON"] = json.dumps(project.backend_path)
        settings = self.request.config_settings or None
        kwargs: dict[str, Any]
        if not self.request.skip_dependency_check:
            hook, kwargs = f"get_requires_for_build_{_distribution(kind)}", {"config_settings": settings}
        elif self.staging is None:
            return None
        else:  # as pyproject-hooks writes them to input.json (spelled otherwise, the hook would run again)
            hook, kwargs = _build_hook(kind), {"config_settings": settings}
            if kind == "metadata":
                kwargs.update(metadata_directory=self.staging, _allow_fallback=True)
            elif kind == "sdist":
                kwargs.update(sdist_directory=self.staging)
            else:
                kwargs.update(wheel_directory=self.staging, metadata_directory=None)
        # A get_requires hook's output waits for the check of build-system.requires; a build's is shown as it comes.
        hold = not self.request.skip_dependency_check
        return {"argv": [script, hook], "cwd": project.srcdir, "env": env, "kwargs": kwargs, "hold": hold}

    @property
    def excluded(self) -> str:
        return "user site excluded" if self.request.isolation.system_site else "user and system site excluded"

    def step(self, text: str, since: float | None = None) -> None:
        if since is not None:
            text = f"{text} ({time.perf_counter() - since:.3f} s)"
        self.progress(text)

    def check(self, requirements: list[str], origin: str) -> None:
        """Record the requirements' statuses; raise MissingDependencies unless -x."""
        if self.request.skip_dependency_check:
            return
        from packaging.requirements import InvalidRequirement

        from .deps import Environment, check

        assert self.process is not None
        t0 = time.perf_counter()
        if self._env is None:
            markers = self.hello.markers
            if markers is None:  # the target is this interpreter
                from packaging.markers import default_environment

                markers = {key: str(value) for key, value in default_environment().items()}
            self._env = Environment(self.process.dists, markers, self.hello.dists)
        try:
            statuses = check(requirements, origin, self._env)
        except InvalidRequirement as exc:  # build-system.requires was validated in start()
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

    def get_requires(self, kind: Kind) -> list[str]:
        distribution = _distribution(kind)
        t0 = time.perf_counter()
        with _backend_errors():
            hook = getattr(self.hooks, f"get_requires_for_build_{distribution}")
            requires = sorted(hook(self.request.config_settings or None))
        self.step(f"get_requires_for_build_{distribution}{self.ahead}: {', '.join(requires) or 'nothing more'}", t0)
        return requires

    @property
    def ahead(self) -> str:
        """For the progress line of a hook whose answer was computed with the setup."""
        return " (run ahead)" if self.process is not None and self.process.answered_ahead else ""

    def outcome(self, path: str | None, missing: MissingDependencies | None = None) -> Outcome:
        return Outcome(path, self.statuses, self.hello, time.perf_counter() - self.started, missing)


def _in_process_script() -> str | None:
    """pyproject-hooks' _in_process.py, named as its hook caller names it, without importing it yet."""
    from importlib.util import find_spec

    spec = find_spec("pyproject_hooks")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "_in_process", "_in_process.py")
    return path if os.path.isfile(path) else None


def _first_call_costs() -> None:
    """Pay now, while the hook process runs ahead, what pyproject-hooks' first hook call would:
    the importlib.resources reader that finds its script, and tempfile's probe of TMPDIR."""
    import tempfile
    from importlib.resources import files

    files("pyproject_hooks")
    tempfile.gettempdir()


@contextmanager
def _running(session: _Session, kind: Kind, outdir: str | None = None) -> Iterator[_Session]:
    """On success the hook process ends; on any failure or interrupt its process group is killed."""
    try:
        session.start(kind, outdir)
        yield session
    except BaseException:
        if session.process is not None:
            session.process.kill()
        raise
    if session.process is not None:
        session.process.close()


@contextmanager
def _backend_errors() -> Iterator[None]:
    """pyproject-hooks' exceptions, as ours; the hook process's runner raises ours already."""
    import pyproject_hooks

    try:
        yield
    except IsobuildError:
        raise
    except pyproject_hooks.BackendUnavailable as exc:
        raise BackendUnavailable(
            f"cannot import backend {getattr(exc, 'backend_name', None) or 'named in pyproject.toml'}",
            details=(exc.traceback or "").rstrip() or None,
        ) from None
    except pyproject_hooks.HookMissing as exc:
        raise BackendUnavailable(f"the backend has no {exc.hook_name} hook") from None
    except pyproject_hooks.UnsupportedOperation as exc:
        raise BackendFailed("the backend cannot build this kind of artifact here (UnsupportedOperation)",
                            details=(exc.traceback or "").rstrip() or None) from None
    except (OSError, ValueError) as exc:  # no or unreadable output.json: the hook never returned
        raise BackendFailed(f"the backend's hook gave no usable result: {exc}") from None


def _prepare_outdir(outdir: str) -> list[str]:
    """Create OUTDIR (and missing parents); return what was created, deepest last."""
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise BadInput(f"output directory {outdir} exists and is not a directory")
    created: list[str] = []
    path = os.path.abspath(outdir)
    while not os.path.exists(path):
        created.insert(0, path)
        path = os.path.dirname(path)
    if created and not os.path.isdir(path):
        raise BadInput(f"output directory {outdir} cannot be created: {path} is not a directory")
    try:
        for path in created:
            os.mkdir(path)
    except OSError as exc:
        _remove_created(created)
        raise BadInput(f"cannot create output directory {outdir}: {exc.strerror}") from None
    return created


def _remove_created(created: list[str]) -> None:
    for path in reversed(created):
        try:
            os.rmdir(path)
        except OSError:
            break


def _place(built: str, staging: str, outdir: str, hook: str) -> str:
    """Move the backend's artifact from the staging dir into OUTDIR, atomically."""
    name = os.path.basename(built)
    if os.path.dirname(os.path.normpath(built)) != staging or name in ("", ".", ".."):
        raise BackendFailed(f"{hook} returned {os.path.relpath(built, staging)!r}, which is not a file name")
    if not os.path.lexists(built):
        raise BackendFailed(f"{hook} returned {name!r}, but created no such file")
    target = os.path.join(os.path.abspath(outdir), name)
    if os.path.isdir(built) and os.path.isdir(target):
        import shutil

        shutil.rmtree(target)  # a metadata dir from an earlier run: directories cannot be replaced in one step
    os.replace(built, target)
    return target


def build(kind: Kind, outdir: str, request: Request, progress: Progress) -> Outcome:
    """Check, build in a staging dir inside OUTDIR, rename into place."""
    outdir = os.path.abspath(outdir)
    session = _Session(request, progress)
    done = False
    try:
        with _running(session, kind, outdir):
            if not request.skip_dependency_check:  # as build's --skip-dependency-check: not even asked
                session.check(session.project.requires, "build-system.requires")
                session.check(session.get_requires(kind), f"get_requires_for_build_{_distribution(kind)}")
            assert session.staging is not None
            staging, hook, settings = session.staging, _build_hook(kind), request.config_settings or None
            t0 = time.perf_counter()
            with _backend_errors():
                if kind == "metadata":  # with pyproject-hooks' fallback to a wheel build
                    name = session.hooks.prepare_metadata_for_build_wheel(staging, settings, _allow_fallback=True)
                else:
                    name = getattr(session.hooks, hook)(staging, settings)
            path = _place(os.path.join(staging, name), staging, outdir, hook)
            session.step(f"{hook}{session.ahead}: {os.path.basename(path)}", t0)
            outcome = session.outcome(path)
        done = True
        return outcome
    finally:
        # Only now is the hook process gone (killed on failure): nothing writes here any more.
        if session.staging is not None:
            import shutil

            shutil.rmtree(session.staging, ignore_errors=True)
        if not done:
            _remove_created(session.created)


def environment(request: Request) -> dict[str, Any]:
    """What the hooks will see, from the hook process itself: for debugging a pipeline."""
    import json

    srcdir = request.srcdir
    has_project = any(os.path.exists(os.path.join(srcdir, name)) for name in ("pyproject.toml", "setup.py"))
    backend_path = project_config.load(srcdir).backend_path if has_project else []
    process = HookProcess.start(request.isolation.python, log=request.log)
    try:
        process.send_setup(request.isolation, backend_path, requires=None)
        hello = process.hello()
    except BaseException:
        process.kill()
        raise
    process.close()
    # PYTHONPATH is not lost but rebuilt: its entries are on sys.path, and children get it with the shim.
    removed = {name: os.environ[name] for name in REMOVED_VARIABLES if name in os.environ and name != "PYTHONPATH"}
    child = dict(hello.child_env)
    return {
        "interpreter": hello.executable,
        "python_version": hello.version_text,
        "sys_path": hello.sys_path,
        "excluded": {"user_site": hello.excluded_user_site, "system_site": hello.excluded_system_site},
        "environment": {
            "set": dict(SET_VARIABLES),
            "removed": removed,
            "children": {**child, "_ISOBUILD_HOOK_PATH": json.loads(child["_ISOBUILD_HOOK_PATH"])},
        },
    }


def requires(kind: Kind, request: Request, progress: Progress) -> Outcome:
    """Every build requirement's status; ``missing`` is set if any is unmet."""
    with _running(_Session(request._replace(skip_dependency_check=False), progress), kind) as session:
        try:
            session.check(session.project.requires, "build-system.requires")
            session.check(session.get_requires(kind), f"get_requires_for_build_{_distribution(kind)}")
        except MissingDependencies as exc:
            return session.outcome(None, exc)  # unmet static ones: the backend is not asked
        return session.outcome(None)
