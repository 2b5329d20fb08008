"""``compile``: byte-compile with this interpreter (its magic number), as the frontend sends the files.

The first line on stdin holds the options; each next one is a [written path,
final path] pair, sent while the wheel is still being unpacked, so unpacking
and compiling overlap. The first batch is compiled here; later ones go to a
pool of ``jobs`` processes. At EOF the .pyc files written are listed on stdout.
With ``hardlink_dupes``, a level's .pyc identical to the previous level's
becomes a hard link to it, as compileall's --hardlink-dupes does.
"""

from __future__ import annotations

import filecmp
import json
import os
import py_compile
import sys
from typing import Any, Iterator, List, Optional, Tuple

# Imported where used (lazy): concurrent.futures, multiprocessing: only for a pool, when there are
# enough files to compile for one to pay (one batch is compiled in this process).

Job = Tuple[str, str, List[int], Optional[str], bool]  # source, final path, levels, invalidation mode, hardlink


def _compile_one(job: Job) -> List[List[str]]:
    """[written .pyc, final path of its source] for each level; none for a file that does not compile."""
    source, final, levels, mode, hardlink = job
    kwargs: dict[str, Any] = {"doraise": True}
    if mode:
        kwargs["invalidation_mode"] = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
    done: List[List[str]] = []
    for level in levels:
        try:
            written = py_compile.compile(source, dfile=final, optimize=level, **kwargs)
        except py_compile.PyCompileError:
            return done  # as pip and installer do: a file that does not compile is left without bytecode
        if written is None:
            continue
        if hardlink and done and filecmp.cmp(done[-1][0], written, shallow=False):
            os.unlink(written)
            os.link(done[-1][0], written)
        done.append([written, final])
    return done


def _compile_batch(jobs: List[Job]) -> List[List[List[str]]]:
    return [_compile_one(job) for job in jobs]


def _let_go() -> None:
    """In a forked worker: the frontend's pipe (our stdin) is not the worker's to hold. Were this compiler
    killed (the OOM killer), a worker holding it would leave the frontend blocked writing to it, for ever."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


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
            import concurrent.futures  # lazy: see the top
            import multiprocessing  # lazy: see the top

            # fork: workers that spawn or a forkserver start (3.14's default) would
            # re-run __main__.py, and could not import this package by name.
            context = multiprocessing.get_context("fork") if os.name == "posix" else None
            self.pool = concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_let_go)
        self.done.append(self.pool.submit(_compile_batch, batch))

    def results(self) -> List[List[str]]:
        found: List[List[str]] = []
        for item in self.done:
            for pycs in item if isinstance(item, list) else item.result():
                found.extend(pycs)
        if self.pool is not None:
            self.pool.shutdown()
        return found


def compile_files(lines: Iterator[bytes], batch_size: int = 32) -> List[List[str]]:
    options = json.loads(next(lines))
    levels, mode, hardlink = options["levels"], options["mode"], bool(options.get("hardlink_dupes"))
    batches = _Batches(options["jobs"])
    batch: List[Job] = []
    for line in lines:
        source, final = json.loads(line)
        batch.append((source, final, levels, mode, hardlink))
        if len(batch) * len(levels) >= batch_size:
            batches.submit(batch)
            batch = []
    if batch:
        batches.submit(batch)
    return batches.results()


def main(argv: list[str]) -> None:
    """The .pyc list on stdout; a filesystem that refuses (full, read-only) is one line on stderr, exit 1."""
    try:
        written = compile_files(iter(sys.stdin.buffer))
    except OSError as exc:
        sys.stderr.write(
            "cannot write bytecode: {}{}\n".format(
                exc.strerror or exc, " ({})".format(exc.filename) if exc.filename else ""
            )
        )
        sys.exit(1)
    print(json.dumps(written))
