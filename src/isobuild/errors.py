"""The one error root: every failure a user can cause maps to a message and an exit code.

The CLI prints ``ERROR <message>`` (plus ``hint: ...`` and any ``details``) and
exits with ``exit_code``; nothing else in isobuild prints or exits.
"""

from __future__ import annotations


class IsobuildError(Exception):
    """Base class; ``exit_code`` 1 is reserved for isobuild's own bugs. ``meaning`` is the exit code's documentation."""

    exit_code = 1
    meaning = "internal error in isobuild (a bug: please report it; -v shows the traceback)"

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details


class BadInput(IsobuildError):
    """Usage errors and broken input: arguments, paths, pyproject.toml, requirement strings."""

    exit_code = 2
    meaning = "bad input or usage: arguments, paths, pyproject.toml, requirement strings; a read-only or full disk"


class FilesystemError(BadInput):
    """The filesystem refused a write or a read (read-only, full, out of inodes or quota)."""


class MissingDependencies(IsobuildError):
    """A build requirement is not satisfied by the environment the hooks see."""

    exit_code = 3
    meaning = "missing build dependencies in the isolated environment"


class BackendFailed(IsobuildError):
    """The backend raised, exited, aborted, or returned something unusable."""

    exit_code = 4
    meaning = "the backend failed: raised, exited, aborted, or returned a bad result"
    asked: tuple[str, ...] = ()  # --only-declared: the hidden distributions the build asked for (builder.py)


class BackendUnavailable(IsobuildError):
    """The backend cannot be imported, or lacks a hook the command needs."""

    exit_code = 5
    meaning = "the backend cannot be imported, or lacks the hook"
    asked: tuple[str, ...] = ()  # as BackendFailed's


class InterpreterError(IsobuildError):
    """The target interpreter (``--python``) cannot run the hook process."""

    exit_code = 6
    meaning = "the target interpreter (--python) cannot run the hooks"


class RefusedWheel(IsobuildError):
    """A hostile or broken wheel, or one whose files exist already: refused before anything is written."""

    exit_code = 7
    meaning = "install: a wheel was refused (hostile, broken, or its files exist); nothing was written"


class InstallFailed(IsobuildError):
    """An install failed part-way (disk full, permissions); what it wrote has been removed."""

    exit_code = 8
    meaning = "install: failed part-way; everything it wrote was removed"


class ImportCheckFailed(IsobuildError):
    """install --check-imports: a module or an entry point of the installed wheel does not import."""

    exit_code = 9
    meaning = "install --check-imports: a module or entry point did not import; the install was rolled back"


class NotReproducible(IsobuildError):
    """--check-reproducible: the two builds differ; the first artifact is kept, the report says where and why."""

    exit_code = 10
    meaning = "--check-reproducible: the two builds differ (the first artifact is kept; the report says where)"


class UndeclaredMatters(IsobuildError):
    """--check-declared: the artifact changes without a distribution the build does not declare; the usual
    artifact is kept, the report names each such distribution and what changed without it."""

    exit_code = 11
    meaning = "--check-declared: an undeclared distribution changes the artifact (it is kept; the report names each)"


class OutputFailed(IsobuildError):
    """The result cannot be written to stdout (a full disk, a closed pipe): it is lost, so never exit 0."""

    exit_code = 120  # what Python itself exits with when stdout cannot be flushed
    meaning = "the result could not be written to stdout (full or closed), as Python itself exits then"


class Interrupted(IsobuildError):
    """Ctrl-C or SIGTERM; the hook process group has been killed and temp dirs removed."""

    exit_code = 130
    meaning = "interrupted (Ctrl-C, SIGTERM, SIGHUP or SIGQUIT)"


def exit_codes() -> dict[int, str]:
    """Every exit code and its meaning, derived from the classes: the CLI's epilog and the README's table."""
    codes = {0: "success", IsobuildError.exit_code: IsobuildError.meaning}
    todo = list(IsobuildError.__subclasses__())
    while todo:
        cls = todo.pop(0)
        if "exit_code" in vars(cls):  # a class that only refines its parent shares its code and meaning
            codes.setdefault(cls.exit_code, cls.meaning)
        todo.extend(cls.__subclasses__())
    return dict(sorted(codes.items()))
