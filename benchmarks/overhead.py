"""Section 1's build overhead, for two checkouts side by side: ``python3 benchmarks/overhead.py --against DIR``.

For a check such as "isobuild's build overhead stays within 5 ms of an earlier
tree's": this checkout (or --this DIR2) and DIR (a clone at the earlier commit, or any other
checkout) are each installed into a venv of their own from a copy of their tree
(DIR is only read), and both are run by the same interpreter, with the same
build env, on run.py's three tiny projects, as section 1 runs isobuild
(``wheel . -o out -q``, a fresh copy of the project for every run). Each round
runs the floor and the two isobuilds back to back, in an order that goes
through all six permutations every six rounds. The last column is the median
of the per-round differences (this - DIR), with the middle half of them: two
runs made a fraction of a second apart, which moves much less with the
machine's slower and faster spells than a difference of two medians.

Run it with two copies of one tree (--this DIR --against DIR) to see the noise floor: what two identical
trees differ by on this machine.

Options: --against DIR (required), --this DIR2 (default: this checkout), --rounds N (default 24),
--keep (leave the throwaway dir).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from run import BACKENDS, FLOOR, PROJECTS, REPO, fresh_copy, machine, sh, throwaway, timed  # benchmarks/ is sys.path[0]

Compare = Callable[[dict[str, str], dict[str, str], Path, int], None]  # pythons, env, root, rounds

# Not part of a checkout's source: left out of the copy that is installed.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache"
)


def install_checkout(checkout: Path, venv: Path) -> str:
    """A venv holding ``checkout``'s isobuild, installed from a copy of its tree; its python."""
    copy = venv.with_name(venv.name + "-src")
    shutil.copytree(checkout, copy, ignore=_NOT_SOURCE, symlinks=True)
    sh([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    sh([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(copy)])
    return python


def setup(root: Path, this: Path, against: Path) -> tuple[dict[str, str], dict[str, str]]:
    """{label: python} for the two checkouts, and the environment every run gets (run.py's)."""
    pythons = {"this": install_checkout(this, root / "this"), "against": install_checkout(against, root / "against")}
    build_env = root / "build-env"
    pip = [pythons["this"], "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    sh([*pip, "--target", str(build_env), "setuptools", "flit_core", "hatchling"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONUSERBASE")}
    env["PYTHONPATH"] = str(build_env)
    return pythons, env


def commands(pythons: dict[str, str], root: Path, backend: str) -> dict[str, list[str]]:
    floor = root / "floor.py"
    floor.write_text(FLOOR)
    return {
        "floor": [pythons["this"], str(floor), backend, "out"],
        **{label: [python, "-m", "isobuild", "wheel", ".", "-o", "out", "-q"] for label, python in pythons.items()},
    }


def compare(pythons: dict[str, str], env: dict[str, str], root: Path, rounds: int) -> None:
    scratch = root / "scratch"
    scratch.mkdir()
    print(f"\n## Build overhead, this against DIR (median of {rounds} rounds, ms; overhead = isobuild - floor)\n")
    print("| project | floor | DIR | this | this - DIR: median of rounds [middle half] |\n|---|---|---|---|---|")
    for label, project in PROJECTS.items():
        tools = commands(pythons, root, BACKENDS[label])
        times: dict[str, list[float]] = {name: [] for name in tools}
        permutations = itertools.cycle(itertools.permutations(tools))
        for _ in range(rounds):
            for name in next(permutations):
                times[name].append(timed(tools[name], fresh_copy(project, scratch), env) * 1000)
        med = {name: statistics.median(values) for name, values in times.items()}
        diffs = [a - b for a, b in zip(times["this"], times["against"])]
        low, _, high = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else diffs * 3
        print(
            f"| {label} | {med['floor']:.0f} | {med['against']:.0f} (+{med['against'] - med['floor']:.0f}) | "
            f"{med['this']:.0f} (+{med['this'] - med['floor']:.0f}) | "
            f"{statistics.median(diffs):+.1f} [{low:+.1f} to {high:+.1f}] |",
            flush=True,
        )


def main_against(doc: str, title: str, rounds: int, compare: Compare) -> None:
    """The command line that overhead.py and stretches.py share: two checkouts installed, then ``compare``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, required=True, metavar="DIR", help="the other checkout (only read)")
    parser.add_argument("--this", type=Path, default=REPO, metavar="DIR2", help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for option, tree in (("--this", args.this), ("--against", args.against)):
        if not (tree / "src" / "isobuild").is_dir():
            parser.error(f"{option} {tree}: not a checkout of isobuild (no src/isobuild)")
    with throwaway(f"{title.replace(' ', '-')}-", args.keep) as root:
        pythons, env = setup(root, args.this.resolve(), args.against.resolve())
        print(f"# {title}: {machine(pythons['this'])}; this = {args.this}, DIR = {args.against}")
        compare(pythons, env, root, args.rounds)


def main() -> None:
    main_against(__doc__ or "", "isobuild overhead", 24, compare)


if __name__ == "__main__":
    main()
