"""Bootstrap isobuild and its toolchain from sdists alone, with nothing installed (as Arch and Gentoo do).

    python3 tools/bootstrap.py SDISTS --prefix P [--destdir D]

SDISTS is a directory of sdists (``NAME-VERSION.tar.gz``, one per project): flit_core, packaging,
pyproject-hooks, installer, dependency-groups, tomli (on Python < 3.11) and isobuild; any other sdist
there is built and installed too. The frontend is this tree's isobuild (``src/``), run in this process
by ``isobuild.cli.main``, with its dependencies imported from their unpacked sdists: they go on this
process's ``sys.path`` only, never on PYTHONPATH, which is the hooks' build environment.

The hooks see the stdlib plus flit_core and nothing else: flit_core's wheel is built first from its own
sdist (its ``backend-path`` needs no build env) and installed into a temp dir, the build env (``--path``)
of every other sdist, so that their ``build-system.requires`` are checked for real. Nothing is written
into the prefix before every wheel is built; then one ``isobuild install --check-deps --check-imports``
puts them all there (rolled back if it fails). Temp dirs are always removed, and this tree gets no
bytecode. The target is the Python running this (run from a venv: its base, as isobuild chooses).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

TREE = Path(__file__).resolve().parent.parent  # the isobuild tree that runs: a checkout or an unpacked sdist
BACKEND = "flit_core"
# isobuild's runtime dependencies (pyproject.toml), as import names: the frontend imports them.
FRONTEND = ("packaging", "pyproject_hooks", "installer", "dependency_groups") + (
    ("tomli",) if sys.version_info < (3, 11) else ()
)
# Variables that isobuild reads as the hooks' build env: here it is flit_core alone.
BUILD_ENV_VARIABLES = ("PYTHONPATH", "NIX_PYTHONPATH", "GUIX_PYTHONPATH")


class Failed(Exception):
    """A one-line reason naming the culprit, and the exit code (isobuild's own when isobuild failed)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def say(text: str) -> None:
    print(f"bootstrap: {text}", file=sys.stderr, flush=True)


def find_sdists(directory: Path) -> dict[str, Path]:
    """Every ``NAME-VERSION.tar.gz`` by normalized name; two of one project, or a missing one, is an error."""
    if not directory.is_dir():
        raise Failed(f"{directory}: not a directory of sdists")
    found: dict[str, Path] = {}
    for path in sorted(directory.glob("*.tar.gz")):
        name = re.sub(r"[-_.]+", "_", path.name[: -len(".tar.gz")].rpartition("-")[0]).lower()
        if not name:
            raise Failed(f"{path}: not named NAME-VERSION.tar.gz")
        if name in found:
            raise Failed(f"{found[name].name} and {path.name}: two sdists of {name} in {directory}")
        found[name] = path
    missing = [name for name in (BACKEND, *FRONTEND, "isobuild") if name not in found]
    if missing:
        why = " (isobuild needs tomli on Python < 3.11)" if "tomli" in missing else ""
        raise Failed(f"no sdist of {', '.join(missing)} in {directory}{why}")
    return found


def frontend_path(sdists: dict[str, Path], stack: contextlib.ExitStack) -> None:
    """Put this tree's src/ and the unpacked dependencies' import roots first on sys.path, and check that
    each module comes from there: a root without its package would silently fall back to site-packages."""
    sys.path.insert(0, str(TREE / "src"))
    # isobuild's own checked unpacking (each member's path resolved against the tree as it is unpacked, on
    # every Python, whatever its tarfile has; see sdists.py), the same as `isobuild wheel SDIST`: stdlib-only modules,
    # importable before the dependencies. Imported by name, as everything of isobuild here: it is found
    # only once src/ is on sys.path.
    sdist_module = importlib.import_module("isobuild.sdists")
    roots = {"isobuild": TREE / "src"}
    for name in FRONTEND:
        try:
            top = Path(stack.enter_context(sdist_module.unpacked(str(sdists[name]))))
        except sdist_module.BadInput as exc:
            raise Failed(exc.message) from None
        root = next((d for d in (top / "src", top) if (d / name / "__init__.py").is_file()), None)
        if root is None:
            raise Failed(f"{sdists[name].name}: no package {name}/ at its top or in src/")
        roots[name] = root
    sys.path[1:1] = [str(root) for name, root in roots.items() if name != "isobuild"]
    for name, root in roots.items():
        where = Path(importlib.import_module(name).__file__ or "?").resolve()
        if root.resolve() not in where.parents:
            raise Failed(f"{name} was imported from {where}, not from {root}")


def isobuild(culprit: str, *args: str) -> str:
    """``isobuild ARGS -q`` in this process: cli.main returns the exit code and leaves the process (and
    its signal handlers) as it found them; the result is its stdout."""
    main: Callable[[list[str]], int] = importlib.import_module("isobuild.cli").main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "-q"])
    if code:
        raise Failed(f"isobuild {args[0]} {culprit} failed (exit {code}; its error is above)", code)
    return out.getvalue().strip()


def build(sdist: Path, wheels: Path, *build_env: str) -> str:
    start = time.monotonic()
    wheel = isobuild(sdist.name, "wheel", str(sdist), "-o", str(wheels), *build_env)
    say(f"built {Path(wheel).name} ({time.monotonic() - start:.2f} s)")
    return wheel


def bootstrap(directory: Path, prefix: str, destdir: str | None) -> tuple[str, int]:
    """Build every sdist, flit_core first and isobuild last, then install them all at once.
    Returns isobuild install's stdout (the .dist-info dirs) and the number of wheels."""
    sdists = find_sdists(directory)
    with contextlib.ExitStack() as stack:
        frontend_path(sdists, stack)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="isobuild-bootstrap-")))
        wheels = [build(sdists[BACKEND], work / "wheels")]
        build_env = work / "build-env"
        env = json.loads(
            isobuild(f"into {build_env}", "install", wheels[0], "--prefix", str(build_env), "--no-compile", "--json")
        )
        site = env["installed"][0]["scheme"]["purelib"]
        order = [name for name in sdists if name not in (BACKEND, "isobuild")] + ["isobuild"]
        wheels += [build(sdists[name], work / "wheels", "--path", site) for name in order]
        target = ["--prefix", prefix, *(["--destdir", destdir] if destdir else [])]
        return isobuild(f"into {prefix}", "install", *wheels, *target, "--check-deps", "--check-imports"), len(wheels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/bootstrap.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("sdists", metavar="SDISTS", type=Path, help="a directory of sdists (NAME-VERSION.tar.gz)")
    parser.add_argument("--prefix", required=True, help="where they are installed (posix_prefix scheme)")
    parser.add_argument("--destdir", help="staging root that the prefix is written under (DESTDIR)")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 9):
        say(f"ERROR isobuild needs Python 3.9 or newer; {sys.executable} is {sys.version.split()[0]}")
        return 6
    sys.dont_write_bytecode = True  # the tree (perhaps a read-only unpacked sdist) is left as it was
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: the temp dirs are removed
    for name in BUILD_ENV_VARIABLES:
        if os.environ.pop(name, None):
            say(f"{name} ignored: the hooks' build env is flit_core alone")
    start = time.monotonic()
    try:
        installed, count = bootstrap(args.sdists, args.prefix, args.destdir)
    except Failed as exc:
        say(f"ERROR {exc}; nothing was installed")
        return exc.code
    except KeyboardInterrupt:
        say("interrupted; nothing was installed")
        return 130
    print(installed)
    where = os.path.abspath(args.prefix)
    where = os.path.join(os.path.abspath(args.destdir), where.lstrip(os.sep)) if args.destdir else where
    say(f"installed {count} wheels into {where} ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
