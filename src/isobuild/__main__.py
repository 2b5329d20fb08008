import atexit
import os
import sys

from .cli import main
from .errors import OutputFailed

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
