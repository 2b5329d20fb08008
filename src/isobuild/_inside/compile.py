"""``compile``: byte-compile with this interpreter (its magic number), as the frontend sends the files.

The first line on stdin holds the options; each next one is a [written path,
final path] pair, sent while the wheel is still being unpacked, so unpacking
and compiling overlap. The first batch is compiled here; later ones go to a
pool of ``jobs`` processes. At EOF the .pyc files written are listed on stdout.
"""
from __future__ import annotations

import json
import os
import py_compile
import sys
from typing import Any, Iterator, List, Optional, Tuple

Job = Tuple[str, str, int, Optional[str]]  # source, final path, level, invalidation mode


def _compile_one(job: Job) -> Optional[List[str]]:
    source, final, level, mode = job
    kwargs: dict[str, Any] = {"optimize": level, "doraise": True}
    if mode:
        kwargs["invalidation_mode"] = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
    try:
        written = py_compile.compile(source, dfile=final, **kwargs)
    except py_compile.PyCompileError:
        return None  # as pip and installer do: a file that does not compile is left without bytecode
    return None if written is None else [written, final]


def _compile_batch(jobs: List[Job]) -> List[Optional[List[str]]]:
    return [_compile_one(job) for job in jobs]


class _Batches:
    """The first batch compiled here, while the pool would still be starting; later ones in the pool."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: Any = None
        self.done: List[Any] = []  # a finished batch's results, or a future of them

    def submit(self, batch: List[Job]) -> None:
        if not self.done or self.jobs < 2:
            self.done.append(_compile_batch(batch))
            return
        if self.pool is None:
            import concurrent.futures
            import multiprocessing

            # fork: workers that spawn or a forkserver start (3.14's default) would
            # re-run __main__.py, and could not import this package by name.
            context = multiprocessing.get_context("fork") if os.name == "posix" else None
            self.pool = concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=context)
        self.done.append(self.pool.submit(_compile_batch, batch))

    def results(self) -> List[List[str]]:
        found: List[Optional[List[str]]] = []
        for item in self.done:
            found.extend(item if isinstance(item, list) else item.result())
        if self.pool is not None:
            self.pool.shutdown()
        return [r for r in found if r]


def compile_files(lines: Iterator[bytes], batch_size: int = 32) -> List[List[str]]:
    options = json.loads(next(lines))
    levels, mode = options["levels"], options["mode"]
    batches = _Batches(options["jobs"])
    batch: List[Job] = []
    for line in lines:
        source, final = json.loads(line)
        batch.extend((source, final, level, mode) for level in levels)
        if len(batch) >= batch_size:
            batches.submit(batch)
            batch = []
    if batch:
        batches.submit(batch)
    return batches.results()


def main(argv: list[str]) -> None:
    print(json.dumps(compile_files(iter(sys.stdin.buffer))))
