"""The one error root: every failure a user can cause maps to a message and an exit code.

The CLI prints ``ERROR <message>`` (plus ``hint: ...`` and any ``details``) and
exits with ``exit_code``; nothing else in isobuild prints or exits.
"""

from __future__ import annotations


class IsobuildError(Exception):
    """Base class; ``exit_code`` 1 is reserved for isobuild's own bugs."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details


class BadInput(IsobuildError):
    """Usage errors and broken input: arguments, paths, pyproject.toml, requirement strings."""

    exit_code = 2


class MissingDependencies(IsobuildError):
    """A build requirement is not satisfied by the environment the hooks see."""

    exit_code = 3


class BackendFailed(IsobuildError):
    """The backend raised, exited, aborted, or returned something unusable."""

    exit_code = 4


class BackendUnavailable(IsobuildError):
    """The backend cannot be imported, or lacks a hook the command needs."""

    exit_code = 5


class InterpreterError(IsobuildError):
    """The target interpreter (``--python``) cannot run the hook process."""

    exit_code = 6


class RefusedWheel(IsobuildError):
    """A hostile or broken wheel, or one whose files exist already: refused before anything is written."""

    exit_code = 7


class InstallFailed(IsobuildError):
    """An install failed part-way (disk full, permissions); what it wrote has been removed."""

    exit_code = 8


class OutputFailed(IsobuildError):
    """The result cannot be written to stdout (a full disk, a closed pipe): it is lost, so never exit 0."""

    exit_code = 120  # what Python itself exits with when stdout cannot be flushed


class Interrupted(IsobuildError):
    """Ctrl-C or SIGTERM; the hook process group has been killed and temp dirs removed."""

    exit_code = 130


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error in isobuild (a bug: please report it)",
    2: "bad input or usage: arguments, paths, pyproject.toml, requirement strings",
    3: "missing build dependencies in the isolated environment",
    4: "the backend failed: raised, exited, aborted, or returned a bad result",
    5: "the backend cannot be imported, or lacks the hook",
    6: "the target interpreter (--python) cannot run the hooks",
    7: "install: a wheel was refused (hostile, broken, or its files exist); nothing written",
    8: "install: failed part-way; what it wrote was removed",
    120: "the result could not be written to stdout (full or closed), as Python itself exits then",
    130: "interrupted (Ctrl-C or SIGTERM)",
}
