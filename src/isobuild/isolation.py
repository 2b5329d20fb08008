"""What the hook process may see: its sys.path ingredients and its environment variables.

The hook process is the real interpreter started with ``-S -s``: no site
module, so no user site, no system site, no .pth file, no sitecustomize or
usercustomize. Its sys.path is then built from the stdlib, PYTHONPATH, the
``--path`` dirs (as site dirs: their .pth files run), backend-path and, with
``--system-site``, the interpreter's own site-packages.

Children: a Python process of the hooks' own interpreter gets the hooks'
sys.path back (the ``_shim`` sitecustomize); any other interpreter is left as
it would be without isobuild, except that no child gets a user site
(PYTHONNOUSERSITE).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # this module is on the way to the hook process's start: no typing imports
if TYPE_CHECKING:
    from collections.abc import Mapping

# Variables removed from the hook process's environment, and why.
REMOVED_VARIABLES: dict[str, str] = {
    "PYTHONPATH": "read by isobuild and rebuilt: absolute entries for the hooks, plus the shim for their children",
    "PYTHONUSERBASE": "it only locates a user site, and no user site is allowed",
    "PYTHONSTARTUP": "interactive start-up code has no place in a build",
    "PYTHONINSPECT": "it would leave the hook process waiting at an interactive prompt",
    "PYTHONEXECUTABLE": "it would make sys.executable lie about the interpreter",
    "__PYVENV_LAUNCHER__": "it would make sys.executable a venv launcher's",
}

# Variables set in the hook process's environment. PYTHONNOUSERSITE: Python processes
# the backend starts see no user site.
SET_VARIABLES: dict[str, str] = {"PYTHONNOUSERSITE": "1"}

# Everything else passes through unchanged, PYTHONHOME and SOURCE_DATE_EPOCH included.


class Isolation:
    """The build environment a pipeline names; everything else is kept out."""

    __slots__ = ("python", "pythonpath", "site_dirs", "system_site")

    def __init__(
        self, python: str, pythonpath: tuple[str, ...] = (), site_dirs: tuple[str, ...] = (), system_site: bool = False
    ) -> None:
        self.python = python
        self.pythonpath = pythonpath
        self.site_dirs = site_dirs
        self.system_site = system_site


def split_pythonpath(value: str | None, cwd: str | None = None) -> list[str]:
    """PYTHONPATH entries made absolute, because the hooks run with the source tree as cwd.

    Empty entries are dropped: Python reads them as the current directory,
    which would put the source tree on sys.path (usually a stray ``:``).
    """
    base = cwd or os.getcwd()
    return [os.path.normpath(os.path.join(base, entry)) for entry in (value or "").split(os.pathsep) if entry]


# Nix's and Guix's interpreters add these dirs from a sitecustomize that -S switches off.
PIPELINE_SITE_VARIABLES = ("NIX_PYTHONPATH", "GUIX_PYTHONPATH")


def pipeline_site_dirs(environ: Mapping[str, str]) -> list[str]:
    """The site dirs that Nix and Guix name in their variables, honoured like ``--path``."""
    return [
        os.path.abspath(entry)
        for name in PIPELINE_SITE_VARIABLES
        for entry in environ.get(name, "").split(os.pathsep)
        if entry
    ]


def hook_environ(environ: dict[str, str]) -> dict[str, str]:
    """The hook process's environment: ``environ`` minus REMOVED_VARIABLES, plus SET_VARIABLES."""
    env = {key: value for key, value in environ.items() if key not in REMOVED_VARIABLES}
    env.update(SET_VARIABLES)
    return env
