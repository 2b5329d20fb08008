"""One private temp dir per command, inside TMPDIR, for every temp file of isobuild and pyproject-hooks.

tempfile.TemporaryDirectory alone cannot promise that nothing is left: an
interrupt that lands between its mkdtemp and the finalizer it registers leaves
the dir behind (tests/test_faults.py delivers one after each mkdir). With
``tempfile.tempdir`` naming this dir for the command's life, whatever such a
window leaves goes with it; only SIGKILL leaves it behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import FilesystemError
from .interrupts import signals_deferred


@contextmanager
def private_tempdir() -> Iterator[str]:
    """``tempfile``'s default dir is a new one of ours until the block ends, however it ends."""
    previous, path = tempfile.tempdir, ""
    try:
        with signals_deferred():  # made and recorded before an interrupt can strike
            try:
                path = tempfile.mkdtemp(prefix="isobuild-")
            except OSError as exc:
                raise FilesystemError(f"cannot make a temp dir in {tempfile.gettempdir()}: "
                                      f"{exc.strerror or exc}") from None
            tempfile.tempdir = path
        yield path
    finally:
        with signals_deferred():
            tempfile.tempdir = previous
            if path:
                shutil.rmtree(path, ignore_errors=True)
