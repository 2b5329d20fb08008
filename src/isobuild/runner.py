"""The backend's hooks through pyproject-hooks, run in the hook process: the one place where
whatever the backend did wrong (raised, exited, died, lacks a hook, returned a bad value)
becomes an isobuild error.

pyproject-hooks' public interface only: a ``BuildBackendHookCaller`` whose runner
executes the command it is handed (its ``_in_process`` script, a hook name, a
control dir) inside the hook process instead of a new one. What pyproject-hooks
writes and reads, and how, stays its own business.
"""

from __future__ import annotations

import os
import re
import stat

from .errors import BackendFailed, BackendUnavailable, IsobuildError
from .hookprocess import HookProcess, HookProcessDied

# Imported where used (lazy): the hook process starts before this module's heavy imports are paid for.
#   pyproject_hooks, warnings: once the setup is sent, while the hook process sets up and imports the backend
#   .wheelname (packaging): to check the wheel the backend made; imported by setup(), while the backend is
#     imported, not once the wheel is there
#   zipfile: only to check or unpack a wheel the backend made
#   difflib, pkgutil, importlib.metadata: only for the hint of a backend that does not import

TYPE_CHECKING = False  # typing would delay the hook process's start
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType
    from typing import IO, Any

    from .hookprocess import Hello
    from .isolation import Isolation
    from .project import Project

    ConfigSettings = Mapping[str, Any]

_MISSING = object()  # an optional hook the backend does not have (None is a value a backend may return)


class Hooks:
    """One build's hook process and the backend's hooks run in it; each hook method returns a checked
    value or raises BackendFailed/BackendUnavailable.

    ``with Hooks(isolation) as hooks:`` enters the hook process (hookprocess.py: started here, closed or
    killed when the block ends); ``setup(project)`` asks it for the hooks' sys.path and the backend's
    import, ``hello()`` reads its reply. A build reaches the hook process through this class alone."""

    def __init__(
        self, isolation: Isolation, *, log: IO[bytes] | None = None, warn: Callable[[str], None] = lambda text: None
    ) -> None:
        self._process = HookProcess(isolation, log=log)
        self._warn = warn
        self._backend = ""
        self._backend_path: list[str] = []  # for an import's hint
        self._settings: dict[str, Any] = {}
        self._hook = ""  # the hook being called, for the runner's messages
        self._caller: Any = None  # pyproject-hooks' BuildBackendHookCaller, made by setup()

    def __enter__(self) -> Hooks:
        self._process.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._process.__exit__(exc_type, exc, tb)

    def setup(
        self,
        project: Project | None,
        config_settings: ConfigSettings | None = None,
        *,
        import_backend: bool = True,
        only_declared: bool = False,
    ) -> None:
        """The hooks' sys.path (with ``project``'s backend-path) and, with ``import_backend``, the backend's
        import, asked of the hook process; pyproject-hooks is imported meanwhile. ``only_declared``: the
        site dirs' .pth imports wait for the hiding (hookprocess.HookProcess.setup)."""
        if project is None:
            self._process.setup()
            return
        self._process.setup(project.backend_path, project.backend if import_backend else None, only_declared)
        import warnings  # lazy: see the top

        import pyproject_hooks  # lazy: see the top

        from . import wheelname  # noqa: F401  (lazy: see the top) for _wheel_problem()

        self._backend, self._backend_path = project.backend, list(project.backend_path)
        self._settings = dict(config_settings or {})  # {} rather than None, as build passes: some backends need a dict
        # pyproject-hooks (1.1 and newer) re-raises the backend's warnings of every hook call (warn_explicit,
        # no registry): a backend imported by two hooks would warn twice. Once is enough. 1.0 has no such
        # class and passes on no warning at all.
        backend_warning = getattr(pyproject_hooks, "BuildBackendWarning", None)
        if backend_warning is not None:
            warnings.filterwarnings("once", category=backend_warning)
        self._caller = pyproject_hooks.BuildBackendHookCaller(
            project.srcdir,
            project.backend,
            backend_path=[os.path.relpath(path, project.srcdir) for path in project.backend_path] or None,
            runner=self._run,
            python_executable=self._process.python,
        )

    def hello(self) -> Hello:
        """What the hooks will see: the setup's reply."""
        return self._process.hello()

    @property
    def loaded(self) -> list[dict[str, Any]]:
        """Each hook's report of what it loaded (_inside/loaded.py)."""
        return self._process.loaded

    def hide(self, roots: Sequence[str], dists: Sequence[tuple[str, str]]) -> None:
        """--only-declared: what the hooks and their Python children must not see (_inside/hidden.py)."""
        try:
            self._process.hide(roots, dists)
        except HookProcessDied as exc:
            raise BackendFailed(f"the hook process {exc.description} while hiding undeclared distributions") from None

    def get_requires(self, distribution: str) -> list[str]:
        hook = f"get_requires_for_build_{distribution}"
        value = self._call(hook, self._settings)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._bad_value(hook, value, "a list of requirement strings")
        return value

    def build(self, kind: str, directory: str) -> str:
        """``build_wheel``, ``build_sdist`` or ``build_editable`` into ``directory``: the artifact's path.

        A wheel is looked at before it is placed: a zip whose .dist-info, named as the
        file is, holds WHEEL and METADATA (concurrent setuptools builds sharing one
        build/ dir have produced wheels without METADATA)."""
        hook = f"build_{kind}"
        path = self._made(hook, directory, self._call(hook, directory, self._settings), "file")
        if kind != "sdist":
            problem = _wheel_problem(path)
            if problem:
                raise BackendFailed(f"{hook} of backend {self._backend} made a broken wheel: {problem}")
        return path

    def metadata(self, directory: str) -> str:
        """The .dist-info dir's path: prepare_metadata_for_build_wheel, else (as build does) a wheel's."""
        hook = "prepare_metadata_for_build_wheel"
        value = self._call(hook, directory, self._settings, _allow_fallback=False, missing_ok=True)
        if value is not _MISSING:
            return self._made(hook, directory, value, "directory")
        wheel = self.build("wheel", directory)
        return _extract_dist_info(wheel, directory)

    def _call(self, hook: str, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        """A hook through pyproject-hooks; its exceptions as isobuild's (_MISSING for a missing optional hook)."""
        import pyproject_hooks  # lazy: see the top (imported by setup() already)

        self._hook = hook
        try:
            return getattr(self._caller, hook)(*args, **kwargs)
        except pyproject_hooks.HookMissing as exc:
            if missing_ok:
                return _MISSING
            raise BackendUnavailable(f"backend {self._backend} has no {exc.hook_name} hook") from None
        except pyproject_hooks.BackendUnavailable as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "import failed"  # its message, before its traceback
            raise self._unavailable(reason, exc.traceback or "") from None
        except pyproject_hooks.UnsupportedOperation as exc:
            raise BackendFailed(
                f"backend {self._backend} cannot {hook} here (UnsupportedOperation)",
                details=(exc.traceback or "").rstrip() or None,
            ) from None

    def _unavailable(self, reason: str, traceback: str) -> BackendUnavailable:
        """The backend did not import. A module that is not there: the hint says where the hooks looked and
        what is there instead, and the traceback (importlib's frames alone) is left off; any other failure is
        the backend's own, and its traceback says most."""
        missing = _missing_module(reason, traceback)
        if missing is None:
            return BackendUnavailable(
                f"cannot import backend {self._backend}: {reason}",
                details=traceback.rstrip() or None,
                hint=f"the hooks' sys.path: {self._where}",
            )
        in_backend_path = reason.startswith("Cannot find module")  # pyproject-hooks looks in backend-path alone
        search, label = (self._backend_path, "backend-path") if in_backend_path else (self.hello().sys_path, "sys.path")
        return BackendUnavailable(
            f"cannot import backend {self._backend}: no module named {missing!r}",
            hint=f"{import_hint(missing, search, label)}; the hooks' sys.path: {self._where}; "
            "install the backend into the build environment (PYTHONPATH or --path), "
            "or correct build-backend in pyproject.toml",
        )

    @property
    def _where(self) -> str:
        return os.pathsep.join(self.hello().sys_path) or "(empty)"

    def _run(self, cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None) -> None:
        """pyproject-hooks' runner: ``cmd`` is the target interpreter and the script it would run."""
        if len(cmd) < 2 or cmd[0] != self._process.python or not os.path.isfile(cmd[1]):
            raise IsobuildError(f"pyproject-hooks asked for a command isobuild cannot run in the hook process: {cmd!r}")
        try:
            reply = self._process.run(
                cmd[1:], cwd or os.getcwd(), extra_environ or {}, hook=self._hook, backend=self._backend
            )
        except HookProcessDied as exc:
            raise BackendFailed(f"the hook process {exc.description} during {self._hook}") from None
        status = reply["status"]
        if status == "exit":
            raise BackendFailed(f"backend {self._backend} called sys.exit({reply['code']}) in {self._hook}")
        if status == "exception":
            raise BackendFailed(
                f"{self._hook} of backend {self._backend} raised {reply['type']}: {reply['message']}",
                hint="the backend's traceback is above",
            )
        if status == "hook_missing":
            raise BackendUnavailable(f"backend {self._backend} has no {self._hook} hook")
        if status == "backend_unavailable":
            raise BackendUnavailable(f"cannot import backend {self._backend}: {reply['message']}")

    def _bad_value(self, hook: str, value: object, wanted: str) -> BackendFailed:
        return BackendFailed(f"{hook} of backend {self._backend} returned {value!r}, not {wanted}")

    def _made(self, hook: str, directory: str, value: object, kind: str) -> str:
        """The path of what the hook says it made: a plain name in ``directory`` of a file or dir itself, not
        a link (it is renamed into OUTDIR as it is: a relative link would dangle there). A name with a control
        character would print as two lines, or as none: it is refused before anything is printed or placed."""
        if not isinstance(value, str):
            raise self._bad_value(hook, value, f"a {kind} name")
        value = self._name_in(hook, directory, value)
        if value in ("", ".", "..") or os.sep in value or (os.altsep and os.altsep in value) or _control(value):
            raise BackendFailed(f"{hook} of backend {self._backend} returned {value!r}, which is not a file name")
        path = os.path.join(directory, value)
        try:
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):  # ValueError: a lone surrogate, which no file name can hold
            mode = 0
        if stat.S_ISLNK(mode):
            raise BackendFailed(
                f"{hook} of backend {self._backend} returned {value!r}, which is a symlink, not the {kind} itself"
            )
        if not (stat.S_ISDIR(mode) if kind == "directory" else stat.S_ISREG(mode)):
            raise BackendFailed(f"{hook} of backend {self._backend} returned {value!r}, but created no such {kind}")
        return path

    def _name_in(self, hook: str, directory: str, value: str) -> str:
        """A path that leads to an entry directly in ``directory`` is the name the backend meant (pypa/build's
        test-no-prepare returns the wheel's full path; build and pip join it with the output dir and go on):
        taken, with a warning. Any other value is left as it is, for the checks that follow."""
        if _control(value) or not (os.sep in value or (os.altsep and os.altsep in value)):
            return value
        parent, name = os.path.split(os.path.normpath(os.path.join(directory, value)))
        try:
            same = os.path.samefile(parent, directory)
        except (OSError, ValueError):  # ValueError: a lone surrogate, which no path can hold
            return value
        if not same or name in ("", ".", ".."):
            return value
        self._warn(
            f"{hook} of backend {self._backend} returned the path {value!r} where PEP 517 asks for "
            f"a name: taken as {name!r}"
        )
        return name


def _missing_module(reason: str, traceback: str) -> str | None:
    """The module that was not found, from pyproject-hooks' message or the traceback's last line; else None."""
    lines = traceback.strip().splitlines()
    for pattern, text in (
        (r"Cannot find module '([\w.]+)' in ", reason),
        (r"ModuleNotFoundError: No module named '([\w.]+)'", lines[-1] if lines else ""),
    ):
        match = re.match(pattern, text)
        if match:
            return match.group(1)
    return None


def import_hint(missing: str, search: Sequence[str], label: str) -> str:
    """What is on the hooks' path instead of module ``missing`` (dotted): the distribution that provides its
    package, and a close match for a typo among the modules there (difflib, as Python's own NameError hint)."""
    import difflib  # lazy: see the top
    import pkgutil  # lazy: see the top

    parent, _, leaf = missing.rpartition(".")
    where = [os.path.join(entry, *parent.split(".")) for entry in search] if parent else list(search)
    names = sorted({module.name for module in pkgutil.iter_modules([d for d in where if os.path.isdir(d)])})
    near = difflib.get_close_matches(leaf, names, n=1)
    guess = f" (did you mean {'.'.join(filter(None, [parent, near[0]]))!r}?)" if near else ""
    top = missing.partition(".")[0]
    providers = _providers(top, search)
    if parent and providers:
        return f"{top!r} is there ({', '.join(providers)}), but not {missing!r}{guess}"
    if providers:
        return f"{', '.join(providers)} provides {top!r}, but it did not import{guess}"
    return f"no distribution in the hooks' {label} provides {top!r}{guess}"


def _providers(module: str, search: Sequence[str]) -> list[str]:
    """``NAME VERSION at DIR`` of each distribution on ``search`` whose files include top-level ``module``."""
    from importlib.metadata import distributions  # lazy: see the top

    found = []
    for dist in distributions(path=list(search)):
        tops = {str(f).split("/", 1)[0].removesuffix(".py") for f in dist.files or []}
        if module in tops:
            found.append(f"{dist.metadata['Name']} {dist.version} at {dist.locate_file('')}")
    return found


def _control(text: str) -> bool:
    return any(ord(char) < 32 or 127 <= ord(char) < 160 for char in text)


def _wheel_problem(path: str) -> str | None:
    """What is wrong with a wheel the backend made, or None: its name (wheelname.py), a .dist-info named
    as the file is, WHEEL and METADATA in it. Structure only, as build checks it."""
    import zipfile  # lazy: see the top

    from .wheelname import SHAPE, wheel_name  # lazy: see the top

    name = os.path.basename(path)
    parsed = wheel_name(name)
    if parsed is None:
        return f"{name!r} is not {SHAPE}"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{name} is not a readable zip ({exc})"
    infos = {top for top in (member.split("/", 1)[0] for member in names) if top.endswith(".dist-info")}
    ours = [info for info in infos if parsed.names(info)]
    if len(ours) != 1:
        return f"{name} has no .dist-info dir for {parsed.project} {parsed.version} (it has {sorted(infos) or 'none'})"
    missing = [f for f in ("WHEEL", "METADATA") if f"{ours[0]}/{f}" not in names]
    return f"{name} has no {' and no '.join(missing)} in {ours[0]}" if missing else None


def _extract_dist_info(wheel: str, directory: str) -> str:
    """The wheel's .dist-info dir, unpacked beside it (build's fallback when prepare_metadata is missing)."""
    import zipfile  # lazy: see the top

    try:
        with zipfile.ZipFile(wheel) as zf:
            tops = {name.split("/", 1)[0] for name in zf.namelist()}
            found = sorted(top for top in tops if top.endswith(".dist-info") and "-" in top)
            if len(found) != 1:
                raise BackendFailed(
                    f"build_wheel's {os.path.basename(wheel)} has {len(found)} .dist-info dirs, not one"
                )
            members = [
                name for name in zf.namelist() if name.startswith(found[0] + "/") and ".." not in name.split("/")
            ]
            zf.extractall(directory, members)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BackendFailed(f"build_wheel's {os.path.basename(wheel)} is not a readable wheel: {exc}") from None
    return os.path.join(directory, found[0])
