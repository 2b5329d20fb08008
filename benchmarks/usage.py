"""Section 6: what the record of what a build used costs (every build makes it), and what --only-declared costs.

Every build records the distributions its hooks used: the hook process lists the
files of the modules each hook loaded (src/isobuild/_inside/loaded.py), and the
frontend maps them to the distributions that own them (src/isobuild/usage.py)
once the hook process has ended. Nothing turns the record off (and no switch is
added for a benchmark alone), so its cost is taken where it is paid:
- the frontend's mapping: the -v progress line "recorded what the hooks used:
  N distributions (S s)" times exactly that step, read from each build's stderr;
- the hook process's listing: loaded.report() timed in a process that has
  imported the backend and built the wheel, as the hook process has when it
  lists them after build_wheel (the listing that sees every module; the ones
  after earlier hooks see fewer).
--only-declared's cost is the wall-clock difference to a plain build run in the
same round (its own -v line, "--only-declared: N distributions hidden (S s)",
times the hiding alone; the rest is the backend's import no longer overlapping
the frontend's start). The three builds of a round (plain, --only-declared, -x)
run back to back in an order that goes through all six permutations every six
rounds, each with -v and a fresh copy of the project.
"""

from __future__ import annotations

import itertools
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

RECORD = re.compile(r"recorded what the hooks used: .*\((\d+\.\d+) s\)$", re.M)
HIDING = re.compile(r"--only-declared: \d+ distributions hidden \((\d+\.\d+) s\)$", re.M)

# The hook process's side of the record: loaded.py (stdlib only) loaded by its path, as isobuild's
# _inside runs in the target; the backend imported and build_wheel run first, then report() timed.
LISTING = """
import importlib, importlib.util, sys, tempfile, time
spec = importlib.util.spec_from_file_location("loaded", sys.argv[1])
loaded = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loaded)
importlib.import_module(sys.argv[2]).build_wheel(tempfile.mkdtemp())
start = time.perf_counter()
files = loaded.report({})["loaded"]["files"]
print((time.perf_counter() - start) * 1000, len(files))
"""


def step_seconds(pattern: re.Pattern[str], stderr: str) -> float | None:
    """The seconds a -v progress line gives its step; None if the line is not there."""
    found = pattern.search(stderr)
    return float(found.group(1)) if found else None


def _build(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock ms of one build, and its stderr (-v: the progress lines)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed in {cwd}:\n{proc.stderr}")
    return elapsed, proc.stderr


def _listing_ms(python: str, env: dict[str, str], tree: Path, backend: str) -> tuple[float, int]:
    """ms of the hook process's listing after build_wheel, and how many files it listed."""
    where = subprocess.run(
        [python, "-c", "import isobuild._inside.loaded as m; print(m.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = (
        subprocess.run(
            [python, "-S", "-s", "-c", LISTING, where, backend],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.splitlines()[-1]
        .split()
    )  # after what the backend prints
    return float(out[0]), int(out[1])


def _middle(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"{statistics.median(values):+.1f} [{low:+.1f} to {high:+.1f}]"


def bench_usage(
    python: str,
    env: dict[str, str],
    copy: Callable[[str], Path],
    rounds: int,
    projects: dict[str, str],
    backends: dict[str, str],
) -> None:
    print(f"\n## 6. What a build used: the record (every build) and --only-declared (median of {rounds} rounds, ms)\n")
    print(
        "| project | isobuild | --only-declared | -x | --only-declared - isobuild: median of rounds [middle half] "
        "| record: mapping, frontend (-v line) | record: listing, hook process (files) | hiding (-v line) |"
    )
    print("|---" * 8 + "|")
    base = [python, "-m", "isobuild", "wheel", ".", "-o", "out", "-v"]
    variants = {"isobuild": base, "--only-declared": [*base, "--only-declared"], "-x": [*base, "-x"]}
    for label, project in projects.items():
        walls: dict[str, list[float]] = {name: [] for name in variants}
        record: list[float] = []
        hiding: list[float] = []
        permutations = itertools.cycle(itertools.permutations(variants))
        for _ in range(rounds):
            for name in next(permutations):
                elapsed, stderr = _build(variants[name], copy(project), env)
                walls[name].append(elapsed)
                seconds = step_seconds(RECORD, stderr)
                if seconds is not None and name == "isobuild":
                    record.append(seconds * 1000)
                seconds = step_seconds(HIDING, stderr)
                if seconds is not None:
                    hiding.append(seconds * 1000)
        listings = [_listing_ms(python, env, copy(project), backends[label]) for _ in range(min(rounds, 5))]
        med = {name: statistics.median(values) for name, values in walls.items()}
        extra = [a - b for a, b in zip(walls["--only-declared"], walls["isobuild"])]
        print(
            f"| {label} | {med['isobuild']:.0f} | {med['--only-declared']:.0f} | {med['-x']:.0f} | {_middle(extra)} "
            f"| {statistics.median(record):.1f} | {statistics.median(ms for ms, _ in listings):.2f} "
            f"({listings[0][1]}) | {statistics.median(hiding):.1f} |",
            flush=True,
        )
