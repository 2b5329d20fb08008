"""Section 4 of the benchmark: the real-world suite's sdists, built one after another by four frontends.

A module of its own so that run.py stays about the tiny fixtures. The pins, the
download and the build env are tests/test_realworld.py's own (imported, and its
fixture's function called), so that the benchmark times exactly the projects
the suite checks and the pin list lives in one place. Every tool runs without
build isolation, by the benchmark venv's interpreter, with PYTHONPATH naming the
suite's build env and its bin/ first on PATH, as the suite runs them; each run
gets a fresh copy of the unpacked sdist, and the tool order rotates by one per
project so that machine drift is spread over all the tools.

isobuild runs twice, plain and with --only-declared, both with -v (its backend's
output goes to the same captured stderr as -q's log would, and the progress
lines time its steps): the record of what each build used, which every build
makes, is compared with the build it was made for by its own progress line
("recorded what the hooks used: ... (S s)"), and --only-declared with the plain
build of the same project.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType

from usage import RECORD, step_seconds

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("isobuild", "isobuild --only-declared", "build", "pip", "uv")
Result = tuple["float | None", str, str]  # seconds (None: failed), why it failed, stderr
TIMEOUT = 900  # s per build; a hung build becomes "fail" instead of stalling the whole section


def load_suite() -> tuple[ModuleType, dict[str, Path]]:
    """tests/test_realworld.py and its cache, downloading the sdists and the build env on first use.

    pytest refuses a direct call of a fixture, so its function is reached through
    __wrapped__ (functools.wraps, in every pytest that refuses the call): the
    same code that pytest runs, with the same cache key, so that a cache the
    suite made is reused and one made here serves the suite. The download and
    the build-env install use this interpreter's pip, as the suite uses its own.
    """
    # test_realworld imports conftest as a top-level module, and isobuild.errors (from this checkout)
    paths = [str(REPO / "tests"), str(REPO / "src")]
    sys.path[:0] = paths
    try:
        import test_realworld
    finally:
        for path in paths:
            sys.path.remove(path)
    fixture = test_realworld.realworld
    return test_realworld, getattr(fixture, "__wrapped__", fixture)()


def find_sdist(sdists: Path, pin: str) -> Path:
    """The downloaded sdist of a pin, matched as test_real_project matches it (names normalised by hand)."""
    dist, version = pin.split("==")
    (sdist,) = [
        p
        for p in sdists.iterdir()
        if p.name.lower().replace("_", "-").startswith(f"{dist.lower().replace('_', '-')}-{version}")
    ]
    return sdist


def commands(python: str, venv: Path, src: Path, out: Path) -> dict[str, list[str]]:
    """Each tool's wheel build of SRC into OUT: the flags of section 1 (isobuild's -v: see the module's
    docstring), with absolute paths.

    OUT lies outside the tree, so that no backend sees a stray out/ directory in
    the project it packages.
    """
    return {
        "isobuild": [python, "-m", "isobuild", "wheel", str(src), "-o", str(out), "-v"],
        "isobuild --only-declared": [
            python,
            "-m",
            "isobuild",
            "wheel",
            str(src),
            "-o",
            str(out),
            "-v",
            "--only-declared",
        ],
        "build": [python, "-m", "build", "--no-isolation", "--wheel", "-o", str(out), str(src)],
        "pip": [python, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(out), str(src)],
        "uv": [str(venv / "bin" / "uv"), "build", "--no-build-isolation", "--wheel", "-o", str(out), "--python", python]
        + ["-q", str(src)],
    }


def attempt(cmd: list[str], cwd: Path, out: Path, env: dict[str, str]) -> Result:
    """Seconds of one build, or None and why, and its stderr: a failure is a result here, not the end of the
    benchmark.

    A zero exit without exactly one valid wheel in OUT counts as a failure too.
    The build gets a session of its own so that a timeout ends its compilers and
    ninja as well, not only the frontend.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"timed out after {TIMEOUT} s", ""
    elapsed = time.perf_counter() - start
    text = stderr.decode(errors="replace")
    if proc.returncode != 0:
        lines = text.strip().splitlines()
        return None, f"exit {proc.returncode}: {lines[-1] if lines else '(no stderr)'}", text
    wheels = list(out.glob("*.whl")) if out.is_dir() else []
    if len(wheels) != 1 or not zipfile.is_zipfile(wheels[0]):
        return None, f"exit 0 but {len(wheels)} wheels in the output dir", text
    return elapsed, "", text


def build_project(
    suite: ModuleType, sdist: Path, first: int, python: str, venv: Path, env: dict[str, str], scratch: Path
) -> dict[str, Result]:
    """Every tool's build of one sdist, starting with TOOLS[first], each from a fresh copy of one unpacking.

    The copies are removed after each build: the compiled projects leave large
    build dirs, and 26 projects times four tools would fill a small disk.
    """
    pristine = suite._unpack(sdist, Path(tempfile.mkdtemp(dir=scratch)))
    results = {}
    for name in TOOLS[first:] + TOOLS[:first]:
        work = Path(tempfile.mkdtemp(dir=scratch))
        tree, out = work / pristine.name, work / "out"
        shutil.copytree(pristine, tree, symlinks=True)
        results[name] = attempt(commands(python, venv, tree, out)[name], tree, out, env)
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(pristine.parent, ignore_errors=True)
    return results


def summarize(rows: dict[str, dict[str, Result]]) -> None:
    """The total and ratio rows, then every failure's reason.

    A tool's total leaves out the projects it failed, so with failures the
    totals cover different projects; the extra rows over the projects that all
    tools built are the like-for-like comparison then.
    """

    def totals(pins: list[str]) -> dict[str, float]:
        return {name: sum(rows[pin][name][0] or 0.0 for pin in pins) for name in TOOLS}

    def ratio_cells(sums: dict[str, float]) -> str:
        return " | ".join(f"{sums[n] / sums['isobuild']:.2f}x" if sums["isobuild"] else "-" for n in TOOLS)

    failed = {name: [pin for pin in rows if rows[pin][name][0] is None] for name in TOOLS}
    sums = totals(list(rows))
    cells = [f"{sums[n]:.2f}" + (f" ({len(failed[n])} left out)" if failed[n] else "") for n in TOOLS]
    print("| **total** | " + " | ".join(cells) + " |")
    print(f"| total / isobuild's total | {ratio_cells(sums)} |")
    common = [pin for pin in rows if all(rows[pin][n][0] is not None for n in TOOLS)]
    if common and len(common) < len(rows):
        common_sums = totals(common)
        print(
            f"| total over the {len(common)} built by all | "
            + " | ".join(f"{common_sums[n]:.2f}" for n in TOOLS)
            + " |"
        )
        print(f"| ... / isobuild's | {ratio_cells(common_sums)} |")
    left_out = sum(len(pins) for pins in failed.values())
    print(f"\n{left_out} build(s) failed and were left out of their tool's total" + ("." if not left_out else ":"))
    for name in TOOLS:
        for pin in failed[name]:
            print(f"- {name}, {pin}: {rows[pin][name][1]}")


def usage_costs(rows: dict[str, dict[str, Result]]) -> None:
    """The record's share of isobuild's builds (its own progress line), and --only-declared against plain
    builds, over the projects both built."""
    both = [
        pin
        for pin in rows
        if rows[pin]["isobuild"][0] is not None and rows[pin]["isobuild --only-declared"][0] is not None
    ]
    plain = sum(rows[pin]["isobuild"][0] or 0.0 for pin in both)
    if not plain:
        return
    record = sum(step_seconds(RECORD, rows[pin]["isobuild"][2]) or 0.0 for pin in both)
    declared = sum(rows[pin]["isobuild --only-declared"][0] or 0.0 for pin in both)
    print(
        f"\nOver the {len(both)} projects both isobuild runs built: the record of what each build used took "
        f"{record:.3f} s of isobuild's {plain:.2f} s ({record / plain:.2%}); --only-declared took {declared:.2f} s "
        f"({declared / plain - 1:+.2%})."
    )


def bench_real(python: str, venv: Path, env: dict[str, str], scratch: Path, limit: int | None) -> None:
    """Section 4: one row per project (printed as soon as it is built, the section being long), then totals."""
    suite, cache = load_suite()
    pins = sorted(suite.PROJECTS)[:limit]  # the suite's own order (it parametrizes over sorted(PROJECTS))
    build_env = cache["build_env"]
    env = {**env, "PYTHONPATH": str(build_env), "PATH": f"{build_env / 'bin'}{os.pathsep}{env['PATH']}"}
    print(
        f"\n## 4. Real projects: the real-world suite's {len(pins)} sdists, one build each, one after another "
        "(wheel, no build isolation, s; tool order rotates per project)\n"
    )
    print("| project | " + " | ".join(TOOLS) + " |\n" + "|---" * (len(TOOLS) + 1) + "|")
    rows: dict[str, dict[str, Result]] = {}
    for index, pin in enumerate(pins):
        rows[pin] = build_project(
            suite, find_sdist(cache["sdists"], pin), index % len(TOOLS), python, venv, env, scratch
        )
        cells = [f"{s:.2f}" if s is not None else "fail" for s, _, _ in (rows[pin][n] for n in TOOLS)]
        print(f"| {pin} | " + " | ".join(cells) + " |", flush=True)
    summarize(rows)
    usage_costs(rows)
