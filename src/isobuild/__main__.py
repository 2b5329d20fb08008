import os
import sys

from .hookprocess import HookProcess

HookProcess.prestart(sys.argv[1:])  # first of all: the hook process starts while the rest of isobuild loads

import atexit  # noqa: E402

from .cli import main  # noqa: E402
from .errors import OutputFailed  # noqa: E402

code = main()
# Leave without tearing the interpreter down: what is left is garbage, and a
# finalization over every module's objects only delays the exit (about 3 ms of
# a small build; see benchmarks/). So atexit and the std streams are done here.
atexit._run_exitfuncs()
for stream in (sys.stdout, sys.stderr):
    try:
        if stream is not None:
            stream.flush()
    except OSError as exc:
        if stream is sys.stdout and sys.stderr is not None:
            print(f"ERROR cannot write the result to stdout: {exc.strerror or exc}", file=sys.stderr)
        code = code or OutputFailed.exit_code
os._exit(code)
