"""Command line: argparse, every option's parsing, what is printed, and exit codes.

Results go to stdout, everything else to stderr (console.py); the library
modules raise IsobuildError subclasses, whose exit codes end the process here.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile

from . import __version__, builder
from .console import Console
from .errors import BadInput, FilesystemError, Interrupted, IsobuildError, OutputFailed, exit_codes
from .isolation import REMOVED_VARIABLES, SET_VARIABLES, Isolation, pipeline_site_dirs, split_pythonpath

# Only what is needed before the hook process starts is imported here (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import IO, Any

    from .dependencies import Status
    from .hookprocess import Hello

COMMANDS = {
    "wheel": "build a wheel (build_wheel)",
    "sdist": "build a source distribution (build_sdist)",
    "editable": "build an editable wheel (PEP 660 build_editable)",
    "metadata": "prepare the wheel's .dist-info (falls back to a wheel build); prints its path",
    "requires": "list build requirements, each satisfied or missing in the isolated environment",
    "install": "install wheels (or build SRCDIR's wheel in isolation, then install it) into a scheme",
    "env": "print what the hooks will see: interpreter, sys.path, site dirs removed, environment",
}


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add = common.add_argument
    add("srcdir", nargs="?", default=".", help="project directory (default: .)")
    add("-C", "--config-setting", action="append", default=[], metavar="KEY[=VALUE]",
        help="pass a config setting to the backend; a repeated key becomes a list")
    add("--config-json", metavar="JSON", help="config settings as one JSON object (-C wins on a clash)")
    add("-x", "--skip-dependency-check", action="store_true", help="do not check build requirements")
    add("--python", metavar="PATH", help="interpreter whose hooks run (default: the one running isobuild)")
    add("--path", action="append", default=[], metavar="DIR",
        help="extra build-environment dir, added as a site dir (its .pth files run); repeatable")
    add("--system-site", action="store_true", help="keep the interpreter's own site-packages (never the user site)")
    add("-q", "--quiet", action="store_true", help="no progress; backend output only on failure")
    add("-v", "--verbose", action="store_true", help="also show sys.path and environment of the hooks")
    add("--json", action="store_true", help="print the result as one JSON object")
    return common


def _install_options(cmd: argparse.ArgumentParser) -> None:
    add = cmd.add_argument
    add("wheels", nargs="*", metavar="WHEEL", help="more wheels (SRCDIR may be a wheel too)")
    add("--prefix", help="install under this prefix (scheme posix_prefix unless --scheme)")
    add("--destdir", help="stage under this root; it appears in no installed file")
    add("--scheme", help="sysconfig scheme of the target (posix_local, deb_system, venv, ...)")
    add("--interpreter", help="shebang interpreter (default: --python as named, else this Python)")
    add("--shebang-flags", default="", metavar="FLAGS", help="flags for the shebang, e.g. -sP")
    add("--no-compile", action="store_true", help="write no bytecode")
    add("--optimize", default="0", metavar="LEVELS", help="bytecode levels, comma-separated (default 0)")
    add("--invalidation-mode", choices=["timestamp", "checked-hash", "unchecked-hash"])
    add("-j", "--jobs", type=int, default=0, help="compile in N processes (default: all CPUs)")
    add("--overwrite", action="store_true", help="replace files that exist")
    add("--installer", default="isobuild", help="INSTALLER name to record")
    add("--no-installer-file", action="store_true", help="write no INSTALLER file (as Debian's pybuild)")
    add("--requested", action="store_true", help="write REQUESTED")
    add("--hardlink-dupes", action="store_true",
        help="hard-link .pyc files of several --optimize levels that are identical (as compileall)")
    add("--no-tag-check", action="store_true",
        help="install wheels whose tags the target does not support (cross-builds, staging)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="isobuild",
        description="PEP 517 frontend for packaging pipelines: the hooks run in the real interpreter "
        "with user and system site-packages scrubbed from sys.path.",
        epilog="exit codes: " + "; ".join(f"{code} {text}" for code, text in exit_codes().items()),
    )
    top.add_argument("--version", action="version", version=f"isobuild {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    for name, text in COMMANDS.items():
        cmd = sub.add_parser(name, parents=[common], help=text, description=text)
        if name == "requires":
            cmd.add_argument("--for", dest="kind", choices=["wheel", "sdist", "editable"], default="wheel")
        elif name == "install":
            _install_options(cmd)
        elif name != "env":
            cmd.add_argument("-o", "--outdir", metavar="OUTDIR", help="output directory (default: SRCDIR/dist)")
    return top


# ---------------------------------------------------------------- option values

CONFIG_DEPTH = 64  # pyproject-hooks writes them as JSON for the backend: no backend nests deeper


def _depth(value: object) -> int:
    """How deep a JSON value nests, without recursion (a hostile one may nest thousands deep)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            todo += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            todo += [(child, depth + 1) for child in item]
    return deepest


def _no_nul(args: argparse.Namespace) -> None:
    """A NUL cannot be in a path or a value the OS is handed: say so, rather than fail in os.stat()."""
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and "\0" in item:
                raise BadInput(f"--{name.replace('_', '-')} {item!r}: contains a NUL character")


def config_settings(pairs: Sequence[str], json_text: str | None) -> dict[str, Any]:
    """-C KEY=VALUE pairs over --config-json: a repeated key becomes a list, as pip and build make it."""
    settings: dict[str, Any] = {}
    if json_text is not None:
        try:
            settings = json.loads(json_text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BadInput(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise BadInput("--config-json must be a JSON object")
        if _depth(settings) > CONFIG_DEPTH:
            raise BadInput(f"--config-json is nested more than {CONFIG_DEPTH} deep")
    seen: set[str] = set()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key:
            raise BadInput(f"-C {pair!r}: the key is empty")
        if key not in seen:
            settings[key] = value
        elif isinstance(settings[key], list):
            settings[key].append(value)
        else:
            settings[key] = [settings[key], value]
        seen.add(key)
    return settings


def target_python(value: str | None) -> str:
    """The target as named: absolute, but symlinks kept (/usr/bin/python3 stays /usr/bin/python3)."""
    if value is None:
        return sys.executable
    if os.sep not in value:
        found = shutil.which(value)
        if found is None:
            raise BadInput(f"--python {value}: not found on PATH")
        value = found
    return os.path.abspath(value)


def optimize_levels(text: str, no_compile: bool) -> tuple[int, ...]:
    try:
        levels = () if no_compile else tuple(sorted({int(x) for x in text.split(",")}))
    except ValueError:
        raise BadInput(f"--optimize {text!r}: give levels such as 0,1,2") from None
    if any(level not in (0, 1, 2) for level in levels):
        raise BadInput(f"--optimize {text!r}: levels are 0, 1 and 2")
    return levels


def shebang_flags(text: str) -> str:
    """Flags go on a script's first line: a control character (a newline) would end it and inject code."""
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise BadInput(f"--shebang-flags {text!r}: control characters (such as a newline) are not allowed")
    return text.strip()


def build_request(args: argparse.Namespace, log: IO[bytes] | None) -> builder.Request:
    for directory in args.path:
        if not os.path.isdir(directory):
            raise BadInput(f"--path {directory}: not a directory")
    isolation = Isolation(
        python=target_python(args.python),
        pythonpath=tuple(split_pythonpath(os.environ.get("PYTHONPATH"))),
        site_dirs=tuple([os.path.abspath(d) for d in args.path] + pipeline_site_dirs(os.environ)),
        system_site=args.system_site,
    )
    return builder.Request(srcdir=args.srcdir, isolation=isolation,
                           config_settings=config_settings(args.config_setting, args.config_json),
                           skip_dependency_check=args.skip_dependency_check, log=log)


# ---------------------------------------------------------------- what is printed

def _status_json(status: Status) -> dict[str, Any]:
    return {"requirement": status.requirement, "origin": status.origin, "satisfied": status.satisfied,
            "needed": status.needed, "found": status.found, "unmet": [list(chain) for chain in status.unmet]}


def _outcome_json(outcome: builder.Outcome) -> dict[str, Any]:
    info: dict[str, Any] = {"path": outcome.path, "size": None, "sha256": None}
    if outcome.path and os.path.isfile(outcome.path):
        import hashlib  # for --json only

        with open(outcome.path, "rb") as f:
            data = f.read()
        info.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    info.update(requirements=[_status_json(s) for s in outcome.requirements], interpreter=outcome.hello.executable,
                python_version=outcome.hello.version_text, seconds=round(outcome.seconds, 3))
    return info


def _environment_json(hello: Hello) -> dict[str, Any]:
    """What ``env`` reports: the hooks' view, and the rule for their children."""
    removed = {name: os.environ[name] for name in REMOVED_VARIABLES if name in os.environ and name != "PYTHONPATH"}
    children = dict(hello.child_env)
    restored = json.loads(children.pop("_ISOBUILD_HOOK_PATH"))
    return {
        "interpreter": hello.executable,
        "python_version": hello.version_text,
        "sys_path": hello.sys_path,
        "excluded": {"user_site": hello.excluded_user_site, "system_site": hello.excluded_system_site},
        "environment": {"set": dict(SET_VARIABLES), "removed": removed, "children": children},
        "children": {
            "same_interpreter": {"executable": hello.executable, "sys_path": restored["path"],
                                 "site_dirs": restored["site_dirs"]},
            "other_interpreters": "left alone: their own sys.path, site dirs and sitecustomize (no user site)",
        },
    }


def _render_environment(info: dict[str, Any]) -> str:
    """``isobuild env``'s text: one fact a line, paths indented."""
    lines = [f"interpreter: {info['interpreter']} (Python {info['python_version']})", "sys.path:"]
    lines += [f"  {entry}" for entry in info["sys_path"]]
    lines.append(f"excluded user site: {info['excluded']['user_site']}")
    lines += [f"excluded system site: {entry}" for entry in info["excluded"]["system_site"]]
    env = info["environment"]
    lines += [f"set: {key}={value}" for key, value in env["set"].items()]
    lines += [f"removed: {key} (was {value!r})" for key, value in env["removed"].items()]
    lines += [f"children: {key}={value}" for key, value in env["children"].items()]
    same = info["children"]["same_interpreter"]
    lines.append(f"children run by {same['executable']}: sys.path restored to")
    lines += [f"  {entry}" for entry in same["sys_path"]]
    lines += [f"  {entry} (site dir)" for entry in same["site_dirs"]]
    lines.append(f"children run by another interpreter: {info['children']['other_interpreters']}")
    return "\n".join(lines)


# ---------------------------------------------------------------- commands

def _install(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    from .install import Target, install_paths  # installer's import is paid by install alone

    python = target_python(args.python)
    target = Target(python=python, interpreter=args.interpreter or python, shebang_flags=shebang_flags(args.shebang_flags),
                    prefix=args.prefix and os.path.abspath(args.prefix), scheme=args.scheme,
                    destdir=args.destdir and os.path.abspath(args.destdir),
                    levels=optimize_levels(args.optimize, args.no_compile), invalidation_mode=args.invalidation_mode,
                    jobs=args.jobs, overwrite=args.overwrite, installer_name="" if args.no_installer_file else args.installer,
                    requested=args.requested, tag_check=not args.no_tag_check, hardlink_dupes=args.hardlink_dupes)
    request = build_request(args, log)
    results = install_paths([args.srcdir, *args.wheels], target,
                            lambda outdir: builder.build("wheel", outdir, request, console.progress).path or "",
                            lambda note: console.progress(f"warning: {note}"))
    for result in results:
        console.detail(f"{result.name} {result.version}: {result.files} files, scheme {result.scheme}")
    if args.json:
        console.result(json.dumps({"installed": [vars(r) for r in results], "interpreter": target.interpreter}, indent=2))
    else:
        console.result("\n".join(r.dist_info for r in results))
    return 0


def _requires(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    outcome = builder.requires(args.kind, build_request(args, log), console.progress)
    if args.json:
        console.result(json.dumps(_outcome_json(outcome), indent=2))
    else:
        for status in outcome.requirements:
            console.result(f"{status.requirement}\t{status.describe()}")
    if outcome.missing is not None:
        console.error(outcome.missing)
        return outcome.missing.exit_code
    return 0


def _env(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    info = _environment_json(builder.environment(build_request(args, log)))
    console.result(json.dumps(info, indent=2) if args.json else _render_environment(info))
    return 0


def _build(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> int:
    request = build_request(args, log)
    console.detail(f"build environment: PYTHONPATH {request.isolation.pythonpath}, --path {request.isolation.site_dirs}")
    outdir = args.outdir or os.path.join(args.srcdir, "dist")
    outcome = builder.build(args.command, outdir, request, console.progress)
    console.detail(f"hook sys.path: {outcome.hello.sys_path}")
    console.result(json.dumps(_outcome_json(outcome), indent=2) if args.json else str(outcome.path))
    return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    """The command, with backend output captured under -q and shown only if it fails."""
    _no_nul(args)
    command = {"install": _install, "requires": _requires, "env": _env}.get(args.command, _build)
    try:
        log = tempfile.TemporaryFile() if args.quiet else None
    except OSError as exc:
        raise BadInput(f"cannot create a temp file for -q in {tempfile.gettempdir()}: {exc.strerror or exc}") from None
    try:
        return command(args, console, log)
    except IsobuildError:
        if log is not None:
            log.seek(0)
            sys.stderr.flush()
            shutil.copyfileobj(log, sys.stderr.buffer)
            sys.stderr.buffer.flush()
        raise
    finally:
        if log is not None:
            log.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else 2
    console = Console(args.quiet, args.verbose)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM: as Ctrl-C
    try:
        return _run(args, console)
    except IsobuildError as exc:
        console.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        interrupted = Interrupted("interrupted; the hook process was killed")
        console.error(interrupted)
        return interrupted.exit_code
    except OSError as exc:  # the filesystem refused (read-only, full, quota) where no module said more
        where = f" ({exc.filename})" if exc.filename else ""
        refused = FilesystemError(f"{exc.strerror or exc}{where}")
        console.error(refused)
        return refused.exit_code
    except Exception as exc:  # a bug in isobuild: say so, with the traceback only when asked
        if args.verbose:
            import traceback  # on isobuild's own bugs only

            traceback.print_exc()
        console.error(IsobuildError(f"internal error: {exc!r}", hint="rerun with -v for the traceback, and report it"))
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _leave(status: list[int]) -> None:
    """The last atexit handler (registered first, so every other one has run): flush, then exit
    without tearing down every module of packaging, pyproject-hooks and the rest (about 20 ms a
    build; benchmarks/run.py, section 5). A result that cannot be flushed is exit 120, as Python's."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError) as exc:
        if sys.stderr is not None:
            print(f"ERROR cannot write the result to stdout: {exc}", file=sys.stderr)
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

    SIGTERM is Ctrl-C's twin for the life of the process (main() restores what it
    found: this); once main() has decided the exit code, neither signal changes it.
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    status = [Interrupted.exit_code]  # until main() returns: an interrupt it did not catch
    atexit.register(_leave, status)
    _open_std_fds()
    try:
        status[0] = main()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(status[0])
