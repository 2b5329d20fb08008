"""isobuild against the pipeline frontends, side by side: ``python3 benchmarks/run.py``.

Everything goes into a throwaway directory: a venv holding isobuild (this
checkout), build, gpep517, installer, pip and uv; isobuild.pyz made from this
checkout by tools/make_pyz.py (run by the venv's python, as pipelines run it:
``python isobuild.pyz``); a build-env dir (setuptools,
flit_core, hatchling) that PYTHONPATH names for every tool; a fresh copy of the
source tree for every single run. Tools alternate: each round runs every tool
once, all by the venv's interpreter. isobuild, gpep517 and "2 processes" run
back to back, first in the round, in an order that goes through all six
permutations every six rounds; the other tools follow in an order shuffled
each round (the seed is printed), so that no tool always runs after the same
one (a run right after a large pip process is slower). The table shows
medians; the ratio to gpep517 is the median of the per-round ratios (with the
middle half of them), which compares runs made a fraction of a second apart
and so moves much less with the machine's slower and faster spells than a
ratio of two medians (shown beside it).

  1. build overhead over the floor (the backend's build_wheel called directly
     in one process) on tiny setuptools, flit_core and hatchling projects, with
     "2 processes" (the floor run by a parent in a second interpreter: the least
     a frontend that keeps the hooks out of its own interpreter can cost);
  2. install of a large pure-Python wheel (sympy) with bytecode;
  3. scaling: 1, 10 and 50 tiny projects built in a row;
  4. real projects: the sdists that tests/test_realworld.py pins (downloaded
     once into its cache, with its build env; needs pytest importable), each
     built once by isobuild, build, pip and uv, one after another, in a tool
     order that rotates per project; a failed build is shown as "fail" and left
     out of that tool's total (benchmarks/realprojects.py);
  5. exit: what the interpreter's teardown costs the frontend and the hook
     process, normal exit against os._exit() after the atexit handlers
     (benchmarks/exits.py), the measurement behind isobuild's exits;
  6. what a build used: the cost of the record every build makes and of
     --only-declared on the tiny projects (benchmarks/usage.py).

Options: --rounds N (build rounds, default 24), --seed N, --install-rounds N (default 5),
--skip-builds (section 1), --skip-install, --skip-scaling, --skip-real, --real-projects N (only the first N of
section 4), --skip-exits, --skip-usage, --keep (leave the throwaway dir).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exits import bench_exits  # benchmarks/ is sys.path[0] when run as a script
from realprojects import bench_real
from usage import bench_usage

REPO = Path(__file__).resolve().parent.parent
PROJECTS = {"setuptools": "setuptools-pyproject", "flit_core": "flit", "hatchling": "hatch"}
BACKENDS = {"setuptools": "setuptools.build_meta", "flit_core": "flit_core.buildapi", "hatchling": "hatchling.build"}
SYMPY = "sympy==1.14.0"

FLOOR = """
import importlib, os, sys
if sys.flags.no_site:  # run by TWO_PROCESSES: PYTHONPATH is read, but put it first as site would
    sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
mod, _, obj = sys.argv[1].partition(":")
backend = importlib.import_module(mod)
os.makedirs(sys.argv[2], exist_ok=True)
backend.build_wheel(sys.argv[2])
"""

# The least any frontend that keeps the hooks out of its own interpreter pays: a
# parent that does nothing but start the floor in a second interpreter (-S -s) and wait.
TWO_PROCESSES = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-S", "-s", *sys.argv[1:]], os.environ)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@contextmanager
def throwaway(prefix: str, keep: bool) -> Iterator[Path]:
    """A temp dir for everything a benchmark installs and builds: removed at the end, unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        if keep:
            print(f"\n(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def machine(python: str) -> str:
    """What a result depends on: the interpreter's version, the CPU and the system."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    ).stdout.strip()
    return f"Python {version}, {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"


def sh(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def setup(root: Path) -> tuple[str, Path, dict[str, str]]:
    venv = root / "venv"
    sh([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    quiet = ["--quiet", "--disable-pip-version-check"]
    sh([python, "-m", "pip", "install", *quiet, str(REPO), "build", "gpep517", "installer", "uv"])
    build_env = root / "build-env"
    sh([python, "-m", "pip", "install", *quiet, "--target", str(build_env), "setuptools", "flit_core", "hatchling"])
    sh(
        [python, str(REPO / "tools" / "make_pyz.py"), "-o", str(root / "isobuild.pyz")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # as the README makes it, by the interpreter that runs it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONUSERBASE")}
    env["PYTHONPATH"] = str(build_env)
    env["UV_NO_CACHE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return python, venv, env


def build_tools(python: str, venv: Path, backend: str) -> dict[str, list[str]]:
    """Each tool's command, run in a fresh copy of the project, writing into ./out."""
    floor = Path(python).parent.parent / "floor.py"
    floor.write_text(FLOOR)
    two = Path(python).parent.parent / "two_processes.py"
    two.write_text(TWO_PROCESSES)
    return {
        "floor": [python, str(floor), backend, "out"],
        "2 processes": [python, str(two), str(floor), backend, "out"],
        "isobuild": [python, "-m", "isobuild", "wheel", ".", "-o", "out", "-q"],
        "isobuild -x": [python, "-m", "isobuild", "wheel", ".", "-o", "out", "-q", "-x"],
        "isobuild.pyz": [python, str(venv.parent / "isobuild.pyz"), "wheel", ".", "-o", "out", "-q"],
        "gpep517": [python, "-m", "gpep517", "build-wheel", "--wheel-dir", "out", "--output-fd", "1"],
        "uv": [
            str(venv / "bin" / "uv"),
            "build",
            "--no-build-isolation",
            "--wheel",
            "-o",
            "out",
            "--python",
            python,
            "-q",
            ".",
        ],
        "build": [python, "-m", "build", "--no-isolation", "--wheel", "-o", "out", "."],
        "pip": [python, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", "out", "."],
    }


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed in {cwd}:\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def fresh_copy(project: str, scratch: Path) -> Path:
    dest = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copytree(REPO / "fixtures" / project, dest / project)
    return dest / project


def per_round(times: dict[str, list[float]], tool: str, peer: str) -> list[float]:
    """tool/peer for each round: two runs made a fraction of a second apart."""
    return [a / b for a, b in zip(times[tool], times[peer])]


def bench_builds(python: str, venv: Path, env: dict[str, str], scratch: Path, rounds: int, seed: int) -> None:
    print(f"\n## 1. Build overhead (median of {rounds} rounds, ms; overhead = tool - floor)\n")
    names = ["floor", "2 processes", "isobuild", "isobuild -x", "isobuild.pyz", "gpep517", "uv", "build", "pip"]
    compared = ["isobuild", "gpep517", "2 processes"]  # back to back, first in each round
    print(
        "| project | " + " | ".join(names) + " | isobuild / gpep517: median of rounds [middle half] "
        "(ratio of medians; 2 processes / gpep517) |"
    )
    print("|---" * (len(names) + 2) + "|")
    shuffle = random.Random(seed)
    for label, project in PROJECTS.items():
        tools = build_tools(python, venv, BACKENDS[label])
        times: dict[str, list[float]] = {name: [] for name in names}
        permutations = itertools.cycle(itertools.permutations(compared))
        for _ in range(rounds):
            others = [name for name in names if name not in compared]
            for name in [*next(permutations), *shuffle.sample(others, len(others))]:
                times[name].append(timed(tools[name], fresh_copy(project, scratch), env))
        med = {name: statistics.median(values) * 1000 for name, values in times.items()}
        cells = [f"{med['floor']:.0f}"] + [f"{med[n]:.0f} (+{med[n] - med['floor']:.0f})" for n in names[1:]]
        ratios = per_round(times, "isobuild", "gpep517")
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3  # --rounds 1: no quartiles
        bound = statistics.median(per_round(times, "2 processes", "gpep517"))
        print(
            f"| {label} | " + " | ".join(cells) + f" | {statistics.median(ratios):.2f}x [{low:.2f}-{high:.2f}] "
            f"({med['isobuild'] / med['gpep517']:.2f}x; {bound:.2f}x) |"
        )


def bench_install(python: str, env: dict[str, str], root: Path, rounds: int) -> None:
    wheels = root / "wheels"
    sh([python, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels), SYMPY])
    wheel = str(next(wheels.glob("*.whl")))
    print(f"\n## 2. Install {os.path.basename(wheel)} into a fresh prefix (median of {rounds}, s)\n")
    tools = {
        "isobuild (level 0)": [python, "-m", "isobuild", "install", wheel, "-q", "--prefix"],
        "pip (level 0)": [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, "--prefix"],
        "isobuild (levels 0,1)": [python, "-m", "isobuild", "install", wheel, "-q", "--optimize", "0,1", "--prefix"],
        "installer (levels 0,1)": [python, "-m", "installer", wheel, "--prefix"],
    }
    times: dict[str, list[float]] = {name: [] for name in tools}
    names = list(tools)
    for round_number in range(rounds):  # a different tool first each round
        first = round_number % len(names)
        for name in names[first:] + names[:first]:
            cmd = tools[name]
            prefix = Path(tempfile.mkdtemp(dir=root)) / "prefix"
            times[name].append(timed([*cmd, str(prefix)], root, env))
            shutil.rmtree(prefix.parent)
    med = {name: statistics.median(values) for name, values in times.items()}
    print("| tool | seconds | vs isobuild |\n|---|---|---|")
    for name, seconds in med.items():
        ours = med["isobuild (level 0)"] if "level 0)" in name else med["isobuild (levels 0,1)"]
        print(f"| {name} | {seconds:.2f} | {seconds / ours:.2f}x |")


def bench_scaling(python: str, venv: Path, env: dict[str, str], scratch: Path) -> None:
    print("\n## 3. Scaling: tiny setuptools projects built in a row (s)\n")
    tools = build_tools(python, venv, BACKENDS["setuptools"])
    print("| projects | isobuild | gpep517 | isobuild per project |\n|---|---|---|---|")
    for count in (1, 10, 50):
        row = {}
        for name in ("isobuild", "gpep517"):
            trees = [fresh_copy("setuptools-pyproject", scratch) for _ in range(count)]
            start = time.perf_counter()
            for tree in trees:
                timed(tools[name], tree, env)
            row[name] = time.perf_counter() - start
        print(f"| {count} | {row['isobuild']:.2f} | {row['gpep517']:.2f} | {row['isobuild'] / count * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--seed", type=int, help="for the order of the other tools (default: a random one, printed)")
    parser.add_argument("--install-rounds", type=int, default=5)
    parser.add_argument("--skip-builds", action="store_true", help="skip section 1 (build overhead)")
    parser.add_argument("--skip-install", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-real", action="store_true", help="skip section 4 (real projects)")
    parser.add_argument("--real-projects", type=int, metavar="N", help="section 4 with only the first N projects")
    parser.add_argument("--skip-exits", action="store_true", help="skip section 5 (teardown costs)")
    parser.add_argument("--skip-usage", action="store_true", help="skip section 6 (the record, --only-declared)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.real_projects is not None and args.real_projects < 1:
        parser.error("--real-projects needs N >= 1")
    with throwaway("isobuild-bench-", args.keep) as root:
        python, venv, env = setup(root)
        seed = args.seed if args.seed is not None else random.randrange(10_000)
        print(f"# isobuild benchmark: {machine(python)}; --seed {seed}")
        scratch = root / "scratch"
        scratch.mkdir()
        if not args.skip_builds:
            bench_builds(python, venv, env, scratch, args.rounds, seed)
        if not args.skip_install:
            bench_install(python, env, root, args.install_rounds)
        if not args.skip_scaling:
            bench_scaling(python, venv, env, scratch)
        if not args.skip_real:
            bench_real(python, venv, env, scratch, args.real_projects)
        if not args.skip_exits:
            bench_exits(python, env, BACKENDS)
        if not args.skip_usage:
            bench_usage(python, env, lambda project: fresh_copy(project, scratch), args.rounds, PROJECTS, BACKENDS)


if __name__ == "__main__":
    main()
