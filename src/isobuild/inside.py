"""How the frontend starts isobuild's stdlib-only code in the target interpreter (``_inside/``).

The build's hook process and import check (hookprocess.py, runtime.py) and the install's scheme
query and bytecode compiler (install/) all start the target through ``inside_command``, and read
its exit status through ``describe_exit``. The code inside cannot import the frontend (nothing
of isobuild's is on the target's sys.path), so the exit code that means "too old" is defined
here alone and handed to it as its first argument (see _inside/__main__.py).
"""

from __future__ import annotations

import os
import signal

_HERE = os.path.dirname(os.path.abspath(__file__))
# In isobuild.pyz (tools/make_pyz.py) this package is a directory of a zip file: the target
# runs the archive's __main__ with --inside, and children import the shim through zipimport.
ARCHIVE = os.path.dirname(_HERE) if os.path.isfile(os.path.dirname(_HERE)) else None
INSIDE = [ARCHIVE, "--inside"] if ARCHIVE else [os.path.join(_HERE, "_inside", "__main__.py")]
SHIM_DIR = os.path.join(_HERE, "_shim")
TARGET_HINT = "--python takes the path of a CPython 3.8+ executable"
TOO_OLD = 86  # the target's exit code for a Python older than 3.8 (it says so on stderr)
CHANNEL_LOST = 87  # _inside/server.py's exit code when the backend closed the channel's fds (handed to it)


def inside_command(python: str, command: str, *args: str) -> list[str]:
    """The target running isobuild's stdlib-only code: no site, no user site, nothing of ours on sys.path."""
    return [python, "-S", "-s", *INSIDE, str(TOO_OLD), command, *args]


def describe_exit(returncode: int) -> str:
    """How a process of the target ended, for an error message."""
    if returncode == CHANNEL_LOST:
        return (
            "lost its channel to isobuild (the backend closed file descriptors it does not own, "
            "as os.closerange() does)"
        )
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"
