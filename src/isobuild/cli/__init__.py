"""Command line: argparse, every option's parsing, what is printed, and exit codes.

Results go to stdout, everything else to stderr (console.py); the library
modules raise IsobuildError subclasses, whose exit codes end the process here.
``options`` has the grammar, ``commands`` the commands, ``render`` their output.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile

from .. import interrupts
from ..console import Console
from ..errors import BadInput, FilesystemError, Interrupted, IsobuildError, OutputFailed
from ..reaper import reaping
from ..scratch import private_tempdir, source_key
from . import commands
from .options import parse
from .target import default_python
from .values import no_nul

# Imported where used (lazy): a command that does not reach that code does not pay for them.
#   ..sdists (tarfile, zipfile, bz2, lzma): only when SRCDIR is an sdist archive
#   traceback: only for an internal error (isobuild's own bug) under -v
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")  # what sdists.py unpacks

# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def _run(args: argparse.Namespace, console: Console) -> int:
    """The command, its temp files in a dir of its own (scratch.py), no process of it left (reaper.py)."""
    no_nul(args)
    commands.check_working_directory()
    if args.python is None:  # every command has --python: the target is chosen here when it is not named
        args.python = default_python(console.progress)
    key = source_key(getattr(args, "srcdir", None), getattr(args, "python", None), *getattr(args, "wheels", []))
    # Named by the inputs: backends may record it (scratch.py). The processes end first, then their temp dir goes.
    with private_tempdir(key, console.step), reaping():
        return _logged(args.func, args, console)


def _logged(command: commands.Command, args: argparse.Namespace, console: Console) -> int:
    """The command, with backend output captured under -q and shown only if it fails."""
    try:
        log = tempfile.TemporaryFile() if args.quiet else None
    except OSError as exc:
        raise BadInput(f"cannot create a temp file for -q in {tempfile.gettempdir()}: {exc.strerror or exc}") from None
    try:
        srcdir = getattr(args, "srcdir", None)
        if srcdir and srcdir.lower().endswith(ARCHIVE_SUFFIXES) and os.path.isfile(srcdir):
            from ..sdists import unpacked  # lazy: see the top

            with unpacked(srcdir) as tree:  # an sdist: built from its unpacked tree
                args.srcdir = tree
                return command(args, console, log, srcdir)
        return command(args, console, log, None)
    except IsobuildError:
        if log is not None:
            try:
                log.seek(0)
                sys.stderr.flush()
                shutil.copyfileobj(log, sys.stderr.buffer)
                sys.stderr.buffer.flush()
            except OSError:  # stderr nobody reads: the error's exit code stands (console.py)
                pass
        raise
    finally:
        if log is not None:
            log.close()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(argv)
    except SystemExit as exc:  # --help, --version: argparse has printed
        return exc.code if isinstance(exc.code, int) else 2
    except BadInput as exc:  # a usage error, or another frontend's spelling: ERROR, and isobuild's way
        Console(quiet=False, verbose=False, json="--json" in argv).error(exc)
        return exc.exit_code
    console = Console(args.quiet, args.verbose, json=args.json)
    previous = interrupts.handle()  # SIGTERM, SIGHUP, SIGQUIT: as Ctrl-C
    try:
        return _run(args, console)
    except IsobuildError as exc:
        console.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        interrupted = Interrupted("interrupted")
        console.error(interrupted)
        return interrupted.exit_code
    except OSError as exc:  # the filesystem refused (read-only, full, quota) where no module said more
        where = f" ({exc.filename})" if exc.filename else ""
        refused = FilesystemError(f"{exc.strerror or exc}{where}")
        console.error(refused)
        return refused.exit_code
    except Exception as exc:  # a bug in isobuild: say so, with the traceback only when asked
        if args.verbose:
            import traceback  # lazy: see the top

            traceback.print_exc()
        console.error(IsobuildError(f"internal error: {exc!r}", hint="rerun with -v for the traceback, and report it"))
        return 1
    finally:
        interrupts.restore(previous)


def _leave(status: list[int]) -> None:
    """The last atexit handler (registered first, so every other one has run): flush, then exit
    without tearing down every module of packaging, pyproject-hooks and the rest (what that teardown
    costs: benchmarks/run.py, section 5). A result that cannot be flushed is exit 120, as Python's."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError) as exc:
        try:
            if sys.stderr is not None:
                print(f"ERROR cannot write the result to stdout: {exc}", file=sys.stderr)
        except (OSError, ValueError):  # stderr nobody reads: the exit code says it
            pass
        status[0] = status[0] or OutputFailed.exit_code
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(status[0])


def _open_std_fds() -> None:
    """A pipeline may start isobuild with fd 0, 1 or 2 closed: /dev/null takes the number, so that no
    pipe of the hook process lands there (sys.stdout stays None: the result is then exit 120)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def run() -> None:
    """The ``isobuild`` command and ``python -m isobuild``: main(), then _leave().

    SIGTERM, SIGHUP and SIGQUIT are Ctrl-C's twins for the life of the process
    (interrupts.py; main() restores what it found: this); once main() has decided
    the exit code, no signal changes it.
    """
    interrupts.handle()
    status = [Interrupted.exit_code]  # until main() returns: an interrupt it did not catch
    atexit.register(_leave, status)
    _open_std_fds()
    try:
        status[0] = main()
    except KeyboardInterrupt:
        pass
    finally:
        interrupts.handle(signal.SIG_IGN)
    sys.exit(status[0])
