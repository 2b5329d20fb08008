"""Where the target is chosen: the interpreter whose hooks run (--python, or the one running isobuild, or
its venv's base) and the environment it sees (isolation.py's rules, from the options)."""

from __future__ import annotations

import os
import shutil
import sys

from ..errors import BadInput, InterpreterError
from ..isolation import Isolation, pipeline_site_dirs, split_pythonpath

# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False  # names for annotations only: nothing imported at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence


def _pyvenv_cfg(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            pairs = [line.partition("=") for line in f]
    except (OSError, UnicodeDecodeError):
        return {}
    return {key.strip().lower(): value.strip() for key, sep, value in pairs if sep}


def venv_base() -> str | None:
    """The interpreter the venv running isobuild was made from, by pyvenv.cfg's ``home``: the name
    there that is the venv's own python (a symlink venv), else the copied one's (``--copies``)."""
    cfg = _pyvenv_cfg(os.path.join(sys.prefix, "pyvenv.cfg"))
    home = cfg.get("home")
    if not home:
        return None
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    names = [os.path.join(home, name) for name in (os.path.basename(sys.executable), "python3", version)]
    real = os.path.realpath(sys.executable)
    same = [name for name in names if os.path.isfile(name) and os.path.realpath(name) == real]
    copied = [name for name in (cfg.get("executable"), os.path.join(home, version)) if name and os.path.isfile(name)]
    found = same or copied
    return found[0] if found else None


def default_python(say: Callable[[str], None]) -> str:
    """The interpreter running isobuild; run from a venv (its own, as pipx or a venv install
    make), that venv's base: a venv's python in every shebang is not what a pipeline wants,
    and its site-packages never reach the hooks anyway. Said on stderr, with how to choose."""
    if sys.prefix == sys.base_prefix:
        return sys.executable
    base = venv_base()
    if base is None:
        say(
            f"isobuild runs from the venv {sys.prefix}, whose base interpreter is not found (pyvenv.cfg):"
            f" the target is {sys.executable}; --python chooses"
        )
        return sys.executable
    say(f"isobuild runs from the venv {sys.prefix}: the target is its base interpreter {base}; --python chooses")
    return base


def target_python(value: str | None) -> str:
    """The target as named: absolute, but symlinks kept (/usr/bin/python3 stays /usr/bin/python3). A name
    that is no interpreter is InterpreterError however it fails to be one: missing, a directory, not
    executable, not on PATH."""
    if value is None:
        return sys.executable
    path = shutil.which(value) if os.sep not in value else os.path.abspath(value)
    problem = (
        "not found on PATH"
        if path is None
        else "no such file"
        if not os.path.exists(path)
        else "a directory"
        if os.path.isdir(path)
        else "not executable"
        if not os.access(path, os.X_OK)
        else ""
    )
    if path is None or problem:
        raise InterpreterError(
            f"--python {value}: not an interpreter ({problem})",
            hint="name a Python 3.8 or newer, by path or on PATH: --python /usr/bin/python3",
        )
    return path


def isolation(args: argparse.Namespace, more_site_dirs: Sequence[str] = ()) -> Isolation:
    """The environment the hooks (or a check) see: PYTHONPATH, --path, NIX/GUIX_PYTHONPATH, --system-site."""
    for directory in args.path:
        if not os.path.isdir(directory):
            raise BadInput(f"--path {directory}: not a directory")
    return Isolation(
        python=target_python(args.python),
        pythonpath=tuple(split_pythonpath(os.environ.get("PYTHONPATH"))),
        site_dirs=tuple(
            [os.path.abspath(d) for d in args.path] + pipeline_site_dirs(os.environ) + list(more_site_dirs)
        ),
        system_site=args.system_site,
    )
