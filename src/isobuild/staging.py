"""OUTDIR and atomic placement: a build writes into a staging dir inside OUTDIR, then renames.

OUTDIR never holds a partial artifact, and a failed or interrupted build leaves
OUTDIR as it found it: the staging dir goes, and so do the dirs this build
created (proven by a mkdir that succeeded, never guessed from a later stat).
Interrupts wait while a dir is made and recorded, and while the artifact is
renamed into place: that rename is the build's commit point.

The backend sees the staging dir as its output dir, so its name is fixed by the
build's inputs (OUTDIR/.isobuild-KEY, scratch.py's ``claim``): a second build
with the same inputs and OUTDIR waits for the first.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from .errors import BackendFailed, BadInput, FilesystemError
from .interrupts import signals_deferred
from .scratch import Owned, make_dirs, own, owned_prefix, sweep


def _not_a_directory(outdir: str, path: str) -> BadInput:
    if path == outdir:
        return BadInput(f"output directory {outdir} exists and is not a directory")
    return BadInput(f"output directory {outdir} cannot be created: {path} is not a directory")


def _remove(created: list[str]) -> None:
    """The dirs this build made (deepest last in ``created``), deepest first; forgotten then, so that a second
    call (the build's clean-up after create() failed) removes nothing that another process made since."""
    for path in reversed(created):
        try:
            os.rmdir(path)
        except OSError:
            break
    created.clear()


# .isobuild-KEY (or, where that cannot be ours, .isobuild-HOST-PID-XXXXXXXX), locked while its build lives:
# the next build sweeps it only once it is not (scratch.py).
_STEM = ".isobuild"
_PREFIX = owned_prefix(_STEM)


class Staging:
    """``create()``, build into ``dir``, then once nothing writes in ``dir``: ``commit()`` the artifact, or
    ``remove(failed=True)``."""

    def __init__(self, outdir: str, key: str, say: Callable[[str], None]) -> None:
        self.outdir = os.path.abspath(outdir)
        self.key, self.say = key, say
        self.created: list[str] = []
        self.dir = ""
        self._owned: Owned | None = None

    def create(self) -> None:
        """OUTDIR and its missing parents, each recorded as this build's (removed after a failure), then the
        staging dir in it."""
        try:
            make_dirs(self.outdir, self.created.append)
        except OSError as exc:
            with signals_deferred():
                _remove(self.created)
            if isinstance(exc, FileExistsError):  # a file or a dangling link where a dir must go
                raise _not_a_directory(self.outdir, exc.filename) from None
            raise FilesystemError(f"cannot create output directory {self.outdir}: {exc.strerror or exc}") from None
        sweep(self.outdir, _PREFIX)
        try:
            own(self.outdir, _STEM, self.key, self._keep, self.say)
        except OSError as exc:
            with signals_deferred():
                _remove(self.created)
            raise FilesystemError(f"cannot write in output directory {self.outdir}: {exc.strerror or exc}") from None

    def _keep(self, owned: Owned) -> None:
        self._owned, self.dir = owned, owned.path

    def commit(self, built: str | None) -> str | None:
        """The artifact (None: nothing was built) renamed into OUTDIR and the staging dir removed, interrupts
        held: one that comes before leaves OUTDIR as it was, one that comes after finds the artifact in place."""
        if self._owned is not None and self._owned.replaced():
            # What is there now is not ours to rename from (a symlink leads anywhere): the result is void.
            raise BackendFailed(
                f"the backend replaced its output directory {self.dir} (with a symlink or "
                "another directory): its result is not used"
            )
        with signals_deferred():
            target = None if built is None else self.place(built)
            self.created.clear()  # committed: a later failure removes none of it
            self.remove(failed=False)
        return target

    def place(self, built: str) -> str:
        """Rename the artifact (a file, or a .dist-info dir) from the staging dir into OUTDIR."""
        target = os.path.join(self.outdir, os.path.basename(built))
        if os.path.isdir(built) and os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)  # a metadata dir from an earlier run: directories cannot be replaced in one step
        os.replace(built, target)
        return target

    def remove(self, failed: bool) -> None:
        """The staging dir goes (a symlink a backend put in its place as a link: never followed); after a
        failure, so do the dirs this build created."""
        if self._owned is not None:
            self._owned.remove()
            self._owned = None
        if failed:
            _remove(self.created)
