"""Build ``dist/isobuild.pyz``: isobuild and its dependencies in one file, run as ``python3 isobuild.pyz``.

    python3 tools/make_pyz.py [-o dist/isobuild.pyz] [--find-links DIR] [--pip-python PATH]

The dependencies are the wheels pinned in tools/pyz-requirements.txt, taken from the package index
(or from ``--find-links DIR`` alone, offline) by ``pip install --target``: pip is needed here, never
by the pyz. It is this interpreter's pip, or ``--pip-python PATH``'s where this one has none (Debian's
python3.X: its pip is a separate package); either vendors the same pure-Python wheels. The stdlib's
zipapp writes the archive; files get one fixed timestamp, so the same pins give the same bytes. The
archive is written beside its target and moved into place, so a failed build leaves the previous pyz as it was.

zipimport never writes bytecode, and compiling every module from source costs each run about 60 ms
(benchmarks/run.py, "isobuild.pyz"). So each ``X.py`` gets an ``X.pyc`` beside it, where zipimport
looks first, compiled by the interpreter that runs this script (checked-hash pycs: no timestamps;
level 0; a fixed hash seed: the same bytes again). Another Python version finds the magic number
wrong and compiles the source, as before; the pyz is built with the Python that will run it.

Inside the archive: ``isobuild/`` (the frontend), the vendored packages with their .dist-info
(licences), ``_isobuild_inside/`` (the stdlib-only code the target runs, src/isobuild/_inside) and a
``__main__.py`` that starts either. The target never gets the archive on its sys.path: see
isobuild/inside.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = Path(__file__).resolve().parent / "pyz-requirements.txt"
OLDEST = "3.9"  # the oldest Python that runs the pyz: every pinned wheel must support it
EPOCH = 315532800  # 1980-01-01, the earliest time a zip entry can carry

MAIN = r'''"""isobuild.pyz: ``python3 isobuild.pyz COMMAND ...``. Written by tools/make_pyz.py.

With ``--inside`` first (``python -S -s isobuild.pyz --inside COMMAND``), this is isobuild's
entry into a target interpreter instead: _isobuild_inside drops the archive from sys.path
before anything else runs. This file parses on any Python, so that an old target is told
that it is too old rather than given a SyntaxError.
"""
import sys

if sys.argv[1:2] == ["--inside"]:
    del sys.argv[1]
    import runpy

    runpy.run_module("_isobuild_inside", run_name="__main__", alter_sys=True)
elif sys.version_info < (3, 9):  # exit 6, as for a target that cannot run the hooks
    sys.stderr.write("ERROR isobuild.pyz needs Python 3.9 or newer to run; %s is Python %d.%d\n"
                     "hint: run it with python3.9 or newer; --python chooses the hooks' (3.8+)\n"
                     % (sys.executable, sys.version_info[0], sys.version_info[1]))
    sys.exit(6)
else:
    from isobuild.__main__ import run

    run()
'''


def _vendor(target: Path, find_links: str | None, pip_python: str) -> None:
    command = [
        pip_python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--python-version",
        OLDEST,
        "--target",
        str(target),
        "-r",
        str(PINS),
    ]
    if find_links:
        command += ["--no-index", "--find-links", find_links]
    if subprocess.run(command).returncode != 0:
        sys.exit(f"make_pyz: pip could not vendor the pins of {PINS} (pip runs as {pip_python} -m pip)")
    shutil.rmtree(target / "bin", ignore_errors=True)


def _copy_source(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source = ROOT / "src" / "isobuild"
    shutil.copytree(source, target / "isobuild", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_inside"))
    shutil.copytree(source / "_inside", target / "_isobuild_inside", ignore=ignore)
    (target / "__main__.py").write_text(MAIN)


def _compile(tree: Path) -> None:
    """``X.pyc`` beside every ``X.py`` (compileall -b), for this interpreter, optimization level 0
    whatever runs this script; tracebacks name the path in the archive (-s). A fixed hash seed:
    before 3.11, marshal writes a frozenset constant in the order of its strings' hashes."""
    command = [
        sys.executable,
        "-m",
        "compileall",
        "-q",
        "-b",
        "-o",
        "0",
        "--invalidation-mode",
        "checked-hash",
        "-s",
        str(tree),
        str(tree),
    ]
    if subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}).returncode != 0:
        sys.exit(f"make_pyz: {sys.executable} could not compile the archive's modules (compileall, above)")


def _fix_times(tree: Path) -> None:
    for path in tree.rglob("*"):
        os.utime(path, (EPOCH, EPOCH))


def build(output: Path, find_links: str | None, pip_python: str = sys.executable) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".isobuild-pyz-", dir=output.parent) as work:
        tree = Path(work) / "tree"
        _vendor(tree, find_links, pip_python)
        _copy_source(tree)
        _compile(tree)
        _fix_times(tree)
        partial = Path(work) / output.name
        zipapp.create_archive(tree, partial, interpreter="/usr/bin/env python3", compressed=True)
        os.replace(partial, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "dist" / "isobuild.pyz")
    parser.add_argument("--find-links", metavar="DIR", help="take the pinned wheels from DIR only, not the index")
    parser.add_argument(
        "--pip-python",
        metavar="PATH",
        default=sys.executable,
        help="the interpreter whose pip vendors the pins (default: this one); the bytecode is still this one's",
    )
    args = parser.parse_args()
    build(args.output.resolve(), args.find_links, args.pip_python)
    print(args.output)


if __name__ == "__main__":
    main()
