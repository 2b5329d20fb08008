"""Section 5: what an interpreter's teardown costs, the measurement behind isobuild's two exits.

isobuild's frontend and its hook process both end with a last atexit handler
that calls os._exit() (every other atexit handler has run by then), instead of
tearing down every module they imported. Here each kind of process is started,
made to import what it imports in a build, and then told to exit, once
normally and once the way isobuild exits; the time from the request to the
process's end is what the teardown costs.
"""

from __future__ import annotations

import statistics
import subprocess
import time

# Imports what the process imports, says it is ready, exits when stdin closes.
PROCESS = """
import atexit, os, sys
{imports}
if sys.argv[1] == "os._exit":
    atexit.register(os._exit, 0)
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
"""

FRONTEND = "import isobuild.cli, isobuild.builder, isobuild.runner, isobuild.dependencies, isobuild.project, tomllib"
HOOK_PROCESS = "import sys; sys.path[:0] = [__import__('os').environ['PYTHONPATH']]; import {module}"


def _exit_ms(argv: list[str], mode: str, env: dict[str, str]) -> float:
    proc = subprocess.Popen([*argv, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.readline()
    start = time.perf_counter()
    proc.stdin.close()
    proc.wait()
    return (time.perf_counter() - start) * 1000


def bench_exits(python: str, env: dict[str, str], backends: dict[str, str], rounds: int = 15) -> None:
    print(f"\n## 5. Exit: interpreter teardown, normal exit against os._exit() after atexit (median of {rounds}, ms)\n")
    print("| process | imports | normal exit | os._exit() | teardown |\n|---|---|---|---|---|")
    cases = [("frontend", "isobuild's (packaging, pyproject-hooks, tomllib)", [python, "-c"], FRONTEND)]
    cases += [
        ("hook process", module, [python, "-S", "-s", "-c"], HOOK_PROCESS.format(module=module))
        for module in backends.values()
    ]
    for kind, label, argv, imports in cases:
        code = PROCESS.format(imports=imports)
        times: dict[str, list[float]] = {"normal": [], "os._exit": []}
        for _ in range(rounds):
            for mode in times:  # alternating
                times[mode].append(_exit_ms([*argv, code], mode, env))
        normal, fast = statistics.median(times["normal"]), statistics.median(times["os._exit"])
        print(f"| {kind} | {label} | {normal:.1f} | {fast:.1f} | {normal - fast:.1f} |")
