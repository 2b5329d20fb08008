"""Command line: argparse, output and exit codes. Results on stdout, everything else on stderr."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: start-up is on every build's clock
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import IO, Any

from . import __version__
from .console import Console
from .errors import EXIT_CODES, BadInput, Interrupted, IsobuildError

COMMANDS = {
    "wheel": "build a wheel (build_wheel)",
    "sdist": "build a source distribution (build_sdist)",
    "editable": "build an editable wheel (PEP 660 build_editable)",
    "metadata": "prepare the wheel's .dist-info (falls back to a wheel build); prints its path",
    "requires": "list build requirements, each satisfied or missing in the isolated environment",
    "install": "install wheels (or build SRCDIR's wheel in isolation, then install it) into a scheme",
    "env": "print what the hooks will see: interpreter, sys.path, site dirs removed, environment",
}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """With ``command``, only that command's options are built: the others' only serve --help."""
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("srcdir", nargs="?", default=".", help="project directory (default: .)")
    common.add_argument("-C", "--config-setting", action="append", default=[], metavar="KEY[=VALUE]",
                        help="pass a config setting to the backend; a repeated key becomes a list")
    common.add_argument("--config-json", metavar="JSON", help="config settings as one JSON object (-C wins on a clash)")
    common.add_argument("-x", "--skip-dependency-check", action="store_true", help="do not check build requirements")
    common.add_argument("--python", metavar="PATH", help="interpreter whose hooks run (default: the one running isobuild)")
    common.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="extra build-environment dir, added as a site dir (its .pth files run); repeatable")
    common.add_argument("--system-site", action="store_true",
                        help="keep the interpreter's own site-packages (never the user site)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress; backend output only on failure")
    common.add_argument("-v", "--verbose", action="store_true", help="also show sys.path and environment of the hooks")
    common.add_argument("--json", action="store_true", help="print the result as one JSON object")

    parser = argparse.ArgumentParser(
        prog="isobuild",
        description="PEP 517 frontend for packaging pipelines: the hooks run in the real interpreter "
        "with user and system site-packages scrubbed from sys.path.",
        epilog="exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"isobuild {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        if command in COMMANDS and name != command:
            sub.add_parser(name, help=text)
            continue
        cmd = sub.add_parser(name, parents=[common], help=text, description=text)
        if name == "requires":
            cmd.add_argument("--for", dest="kind", choices=["wheel", "sdist", "editable"], default="wheel")
        elif name == "install":
            _install_options(cmd)
        elif name != "env":
            cmd.add_argument("-o", "--outdir", metavar="OUTDIR", help="output directory (default: SRCDIR/dist)")
    return parser


def _install_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("wheels", nargs="*", metavar="WHEEL", help="more wheels (SRCDIR may be a wheel too)")
    cmd.add_argument("--prefix", help="install under this prefix (scheme posix_prefix unless --scheme)")
    cmd.add_argument("--destdir", help="stage under this root; it appears in no installed file")
    cmd.add_argument("--scheme", help="sysconfig scheme of the target (posix_local, deb_system, venv, ...)")
    cmd.add_argument("--interpreter", help="shebang interpreter (default: --python as named, else this Python)")
    cmd.add_argument("--shebang-flags", default="", metavar="FLAGS", help="flags for the shebang, e.g. -sP")
    cmd.add_argument("--no-compile", action="store_true", help="write no bytecode")
    cmd.add_argument("--optimize", default="0", metavar="LEVELS", help="bytecode levels, comma-separated (default 0)")
    cmd.add_argument("--invalidation-mode", choices=["timestamp", "checked-hash", "unchecked-hash"])
    cmd.add_argument("-j", "--jobs", type=int, default=0, help="compile in N processes (default: all CPUs)")
    cmd.add_argument("--overwrite", action="store_true", help="replace files that exist")
    cmd.add_argument("--installer", default="isobuild", help="INSTALLER name to record")
    cmd.add_argument("--requested", action="store_true", help="write REQUESTED")


def _install(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    import json

    from . import frontend
    from .install import Target, install_paths, parse_levels
    from .isolation import target_python

    python = target_python(args.python)
    target = Target(python=python, interpreter=args.interpreter or python, shebang_flags=args.shebang_flags,
                    prefix=args.prefix and os.path.abspath(args.prefix), scheme=args.scheme,
                    destdir=args.destdir and os.path.abspath(args.destdir),
                    levels=parse_levels(args.optimize, args.no_compile), invalidation_mode=args.invalidation_mode,
                    jobs=args.jobs, overwrite=args.overwrite, installer_name=args.installer, requested=args.requested)
    results = install_paths([args.srcdir, *args.wheels], target,
                            lambda outdir: frontend.build("wheel", outdir, _request(args, log), console.progress).path or "")
    for result in results:
        console.detail(f"{result.name} {result.version}: {result.files} files, scheme {result.scheme}")
    if args.json:
        console.result(json.dumps({"installed": [vars(r) for r in results], "interpreter": target.interpreter}, indent=2))
    else:
        console.result("\n".join(r.dist_info for r in results))
    return 0


def _request(args: argparse.Namespace, log: IO[bytes] | None) -> Any:
    from .frontend import Request, config_settings
    from .isolation import Isolation, pipeline_site_dirs, split_pythonpath, target_python

    for directory in args.path:
        if not os.path.isdir(directory):
            raise BadInput(f"--path {directory}: not a directory")
    isolation = Isolation(
        python=target_python(args.python),
        pythonpath=tuple(split_pythonpath(os.environ.get("PYTHONPATH"))),
        site_dirs=tuple([os.path.abspath(d) for d in args.path] + pipeline_site_dirs(os.environ)),
        system_site=args.system_site,
    )
    return Request(
        srcdir=args.srcdir,
        isolation=isolation,
        config_settings=config_settings(args.config_setting, args.config_json),
        skip_dependency_check=args.skip_dependency_check,
        log=log,
    )


def _run(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    import json

    from . import frontend

    request = _request(args, log)
    console.detail(f"build environment: PYTHONPATH {request.isolation.pythonpath}, --path {request.isolation.site_dirs}")
    if args.command == "install":
        return _install(args, console, log)
    if args.command == "env":
        from .isolation import render

        info = frontend.environment(_request(args, log))
        console.result(json.dumps(info, indent=2) if args.json else render(info))
        return 0
    if args.command == "requires":
        outcome = frontend.requires(args.kind, request, console.progress)
        if args.json:
            console.result(json.dumps(outcome.as_json(), indent=2))
        else:
            for status in outcome.requirements:
                console.result(f"{status.requirement}\t{status.describe()}")
        if outcome.missing is not None:
            console.error(outcome.missing)
            return outcome.missing.exit_code
        return 0
    outdir = args.outdir or os.path.join(args.srcdir, "dist")
    outcome = frontend.build(args.command, outdir, request, console.progress)
    console.detail(f"hook sys.path: {outcome.hello.sys_path}")
    console.result(json.dumps(outcome.as_json(), indent=2) if args.json else str(outcome.path))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from .hookprocess import HookProcess

    argv = sys.argv[1:] if argv is None else list(argv)
    HookProcess.prestart(argv)  # the hook process starts while argparse and the rest load
    try:
        return _main(argv)
    finally:
        HookProcess.discard_early()


def _main(argv: list[str]) -> int:
    import signal

    from .hookprocess import HookProcess

    try:
        args = _parser(argv[0] if argv else None).parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else 2
    console = Console(args.quiet, args.verbose)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM: as Ctrl-C
    if args.quiet:
        import tempfile

        log: IO[bytes] | None = HookProcess.early_log() or tempfile.TemporaryFile()
    else:
        log = None
    try:
        return _run(args, console, log)
    except (IsobuildError, KeyboardInterrupt) as exc:
        error = exc if isinstance(exc, IsobuildError) else Interrupted("interrupted; the hook process was killed")
        if log is not None and not isinstance(exc, KeyboardInterrupt):
            import shutil

            log.seek(0)
            sys.stderr.flush()
            shutil.copyfileobj(log, sys.stderr.buffer)
            sys.stderr.buffer.flush()
        console.error(error)
        return error.exit_code
    except Exception as exc:  # a bug in isobuild: say so, with the traceback only when asked
        if args.verbose:
            import traceback

            traceback.print_exc()
        console.error(IsobuildError(f"internal error: {exc!r}", hint="rerun with -v for the traceback, and report it"))
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if log is not None:
            log.close()
