"""The frontend's own stretches of a build, for two checkouts: ``python3 benchmarks/stretches.py --against DIR``.

overhead.py's wall clock moves by ±10 ms with the backend's own run, more than what a change to the
frontend adds or saves. The frontend is alone on a build's critical path in three stretches, which
this measures alone, in the process that runs isobuild (``wheel . -o out -q``, a fresh copy of the
project each run, overhead.py's venvs and build env):

- start: from the first line of the process to the hook process's Popen. All of it delays the build.
- setup: from that Popen to the first message to the hook process, the setup it waits for once it
  has booted. It delays the build where it is longer than the target interpreter's start-up.
- tail: from the last reply read from the hook process to the exit: the artifact placed, the record
  of what the hooks used made, the result printed. All of it delays the build.

Rounds alternate the two checkouts (ABBA), on run.py's three tiny projects. The columns are medians,
in ms; the differences are medians of the per-round differences (this - DIR).

Options: --against DIR (required), --this DIR2 (default: this checkout), --rounds N (default 40), --keep.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

from overhead import main_against  # benchmarks/ is sys.path[0]
from run import PROJECTS, fresh_copy

# Runs isobuild in this process, noting the times (ms since its first line) of the stretches' ends.
# Only public objects are wrapped: Popen, the pipes it made, and os._exit (the CLI leaves through it).
DRIVER = """
import time
zero = time.perf_counter()
import os, runpy, subprocess, sys  # what isobuild imports before the hook process starts anyway

marks, record, popen, leave = {}, sys.argv[1], subprocess.Popen.__init__, os._exit

def mark(name):
    marks.setdefault(name, (time.perf_counter() - zero) * 1000)

class Pipe:
    def __init__(self, stream, name):
        self.stream, self.name = stream, name
    def write(self, data):
        mark(self.name)
        return self.stream.write(data)
    def readline(self, *args):
        line = self.stream.readline(*args)
        marks[self.name] = (time.perf_counter() - zero) * 1000  # the last reply's
        return line
    def __getattr__(self, name):
        return getattr(self.stream, name)

def started(self, *args, **kwargs):
    subprocess.Popen.__init__ = popen  # the hook process is the first
    mark("start")
    popen(self, *args, **kwargs)
    self.stdin, self.stdout = Pipe(self.stdin, "setup"), Pipe(self.stdout, "reply")

def exit(code):
    mark("exit")
    import json  # only now: isobuild imports it after the hook process's start, and that is timed
    with open(record, "w") as f:
        json.dump(marks, f)
    leave(code)

subprocess.Popen.__init__, os._exit = started, exit
sys.argv = ["isobuild", "wheel", ".", "-o", "out", "-q"]
runpy.run_module("isobuild", run_name="__main__", alter_sys=True)
"""

STRETCHES = ("start", "setup", "tail")
Runs = dict[str, list[dict[str, float]]]  # checkout: each round's stretches


def stretches(python: str, cwd: Path, env: dict[str, str], record: Path) -> dict[str, float]:
    """One build's three stretches, in ms."""
    proc = subprocess.run([python, "-c", DRIVER, str(record)], cwd=cwd, env=env, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed in {cwd}:\n{proc.stderr.decode(errors='replace')}")
    marks = json.loads(record.read_text())
    return {"start": marks["start"], "setup": marks["setup"] - marks["start"], "tail": marks["exit"] - marks["reply"]}


def alternated(pythons: dict[str, str], env: dict[str, str], root: Path, project: str, rounds: int) -> Runs:
    """Each checkout's stretches, round by round, the two in turn (ABBA)."""
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
    runs: Runs = {"this": [], "against": []}
    for round_ in range(rounds):
        for name in ("this", "against") if round_ % 2 == 0 else ("against", "this"):
            runs[name].append(stretches(pythons[name], fresh_copy(project, scratch), env, root / "marks.json"))
    return runs


def compare(pythons: dict[str, str], env: dict[str, str], root: Path, rounds: int) -> None:
    print(f"\n## The frontend's stretches, this against DIR (medians of {rounds} rounds, ms)\n")
    print("| project | stretch | DIR | this | this - DIR: median of rounds |\n|---|---|---|---|---|")
    for label, project in PROJECTS.items():
        runs = alternated(pythons, env, root, project, rounds)
        for stretch in STRETCHES:
            this, against = ([run[stretch] for run in runs[name]] for name in ("this", "against"))
            diff = statistics.median(a - b for a, b in zip(this, against))
            print(
                f"| {label} | {stretch} | {statistics.median(against):.1f} | {statistics.median(this):.1f} | "
                f"{diff:+.1f} |",
                flush=True,
            )


def main() -> None:
    main_against(__doc__ or "", "isobuild stretches", 40, compare)


if __name__ == "__main__":
    main()
