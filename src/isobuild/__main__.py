"""``python -m isobuild``, and the ``isobuild`` command (its entry point is ``run`` here).

Signals are handled from the first line: until the CLI has its own handlers, Ctrl-C,
SIGTERM, SIGHUP or SIGQUIT (interrupts.FATAL) ends the process at once with exit 130
(Interrupted's code), not with a traceback from an import; nothing has been started or
written by then.
"""

import os
import signal

from .interrupts import FATAL


def _interrupted(signum: int, frame: object) -> None:
    os._exit(130)


for _signum in FATAL:
    signal.signal(_signum, _interrupted)

from .cli import run  # noqa: E402  (after the handlers above)

if __name__ == "__main__":
    run()
