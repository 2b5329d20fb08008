"""The command line's grammar (argparse), each command wired to its function (commands.py) by
``set_defaults(func=...)``; the values are parsed in values.py, the target chosen in target.py."""

from __future__ import annotations

import argparse
from argparse import ArgumentParser, Namespace

from ..errors import BadInput, exit_codes
from . import commands

# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn


COMMANDS = {
    "wheel": "build a wheel (build_wheel)",
    "sdist": "build a source distribution (build_sdist)",
    "editable": "build an editable wheel (PEP 660 build_editable)",
    "metadata": "prepare the wheel's .dist-info (falls back to a wheel build); prints its path",
    "requires": "list build requirements, each satisfied or missing in the isolated environment",
    "install": "install wheels (or build SRCDIR's wheel in isolation, then install it) into a scheme",
    "check": "check wheels' runtime requirements (Requires-Dist) against the isolated environment",
    "env": "print what the hooks will see: interpreter, sys.path, site dirs removed, environment",
}


# Other frontends' spellings that mean something else here (or nothing): refused with isobuild's way. Those
# that mean exactly what an isobuild option means are that option's aliases (-d, --root, -V, -n, ...).
REFUSED_OPTIONS = {
    ("-w", "--wheel"): "a wheel is `isobuild wheel SRCDIR`; its directory is -o OUTDIR (pip's -w)",
    ("-s", "--sdist"): "an sdist is `isobuild sdist SRCDIR`",
    ("--wheel-dir",): "the output directory is -o OUTDIR",
    ("--output-fd",): "stdout is the artifact path; --json prints it with its size and sha256",
    ("--no-deps",): "isobuild installs no dependencies: there is nothing to turn off",
    ("--compile-bytecode",): "bytecode levels are --optimize LEVEL[,LEVEL] (default 0; installer's default is 0,1)",
}
REFUSED_COMMANDS = {"build-wheel": "isobuild wheel SRCDIR", "install-wheel": "isobuild install WHEEL"}


class _Refused(argparse.Action):
    """Another frontend's option that isobuild does not have: BadInput naming isobuild's way, not argparse's usage."""

    def __init__(self, option_strings: Sequence[str], dest: str, hint: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS)
        self.hint = hint

    def __call__(self, parser: ArgumentParser, namespace: Namespace, values: Any, option: str | None = None) -> None:
        raise BadInput(f"{option} is not an isobuild option", hint=self.hint)


class Parser(argparse.ArgumentParser):
    """argparse, whose usage errors are BadInput: one ERROR line and a hint (and, with --json, the JSON error).

    It keeps its arguments (``arguments``, its parents' first) and its commands (``commands``) where
    tools/make_manpage.py reads them for the man page and shell completion."""

    def __init__(self, *, parents: Sequence[Parser] = (), **kwargs: Any) -> None:
        self.arguments: list[argparse.Action] = [action for parent in parents for action in parent.arguments]
        self.commands: dict[str, Parser] = {}
        super().__init__(parents=list(parents), **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message}", hint=f"{self.prog} --help lists what it takes")


class _Version(argparse.Action):
    """--version: isobuild's, the Python running it, and the libraries it runs on (imported for this alone)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            help="print the versions of isobuild, Python and pyproject-hooks, packaging and installer, and exit",
        )

    def __call__(self, parser: ArgumentParser, namespace: Namespace, values: Any, option: str | None = None) -> None:
        from .render import versions  # the libraries are imported by --version alone

        print(versions())  # on stdout, as argparse's own version action
        parser.exit()


def _habits() -> Parser:
    """The refused spellings, on the top level and on every command."""
    habits = Parser(add_help=False)
    for names, hint in REFUSED_OPTIONS.items():
        habits.add_argument(*names, action=_Refused, hint=hint, dest=argparse.SUPPRESS)
    return habits


def _environment_options() -> Parser:
    """The isolated environment and the check's policy: every command has them."""
    common = Parser(add_help=False, parents=[_habits()])
    add = common.add_argument
    add(
        "--python",
        metavar="PATH",
        help="interpreter whose hooks run, CPython 3.8 to 3.15 (default: the one running "
        "isobuild; from a venv, its base)",
    )
    add(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="extra build-environment dir, added as a site dir (its .pth files run); repeatable",
    )
    add("--system-site", action="store_true", help="keep the interpreter's own site-packages (never the user site)")
    add(
        "--relax",
        action="append",
        default=[],
        metavar="NAME",
        help="requirement NAME must be present, its version is not checked (* for all); repeatable",
    )
    add(
        "--remove",
        action="append",
        default=[],
        metavar="NAME",
        help="requirement NAME is not checked at all (* for all); repeatable",
    )
    add(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress lines, backend output only on failure; warnings and errors still reach stderr",
    )
    add("-v", "--verbose", action="store_true", help="also show sys.path and environment of the hooks")
    add("--json", action="store_true", help="print the result as one JSON object")
    return common


def _project_options() -> Parser:
    """What the commands that run a project's hooks have besides."""
    common = Parser(add_help=False, parents=[_environment_options()])
    add = common.add_argument
    add("srcdir", nargs="?", default=".", help="project directory or sdist archive (default: .)")
    add(
        "-C",
        "--config-setting",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="pass a config setting to the backend; a repeated key becomes a list",
    )
    add("--config-json", metavar="JSON", help="config settings as one JSON object (-C wins on a clash)")
    add("-x", "--skip-dependency-check", action="store_true", help="do not check build requirements")
    add(
        "-n",
        "--no-isolation",
        action="store_true",
        help="accepted for build's sake, and changes nothing: isobuild never installs anything",
    )
    return common


def _install_options(cmd: argparse.ArgumentParser) -> None:
    add = cmd.add_argument
    add("wheels", nargs="*", metavar="WHEEL", help="more wheels (SRCDIR may be a wheel too)")
    add("--prefix", help="install under this prefix (scheme posix_prefix unless --scheme)")
    add("-d", "--destdir", "--root", help="stage under this root; it appears in no installed file")
    add("--scheme", help="sysconfig scheme of the target (posix_local, deb_system, venv, ...)")
    add("--interpreter", help="shebang interpreter (default: the target, --python as named)")
    add("--shebang-flags", default="", metavar="FLAGS", help="flags for the shebang, e.g. -sP")
    add("--no-compile", "--no-compile-bytecode", action="store_true", help="write no bytecode")
    add("--optimize", default="0", metavar="LEVELS", help="bytecode levels, comma-separated (default 0)")
    add("--invalidation-mode", choices=["timestamp", "checked-hash", "unchecked-hash"])
    add("-j", "--jobs", type=int, default=0, help="compile in N processes (default: all CPUs)")
    add(
        "--overwrite",
        "--overwrite-existing",
        action="store_true",
        help="replace files that exist, and the project's installed version",
    )
    add("--installer", default="isobuild", help="INSTALLER name to record")
    add("--no-installer-file", action="store_true", help="write no INSTALLER file (as Debian's pybuild)")
    add("--requested", action="store_true", help="write REQUESTED")
    add(
        "--hardlink-dupes",
        action="store_true",
        help="hard-link .pyc files of several --optimize levels that are identical (as compileall)",
    )
    add(
        "--check-deps",
        action="store_true",
        help="before writing, check the wheels' Requires-Dist against the destination and the build environment",
    )
    add(
        "--check-imports",
        nargs="?",
        const="",
        metavar="MODULE,...",
        help="after installing, import the wheel's top-level modules (or these) and load its entry points "
        "in the isolated target; exit 9 (and a rollback) if one fails",
    )
    add(
        "--no-tag-check",
        action="store_true",
        help="install wheels whose tags the target does not support (cross-builds, staging)",
    )


def _outdir_option(cmd: Parser) -> None:
    cmd.add_argument("-o", "--outdir", metavar="OUTDIR", help="output directory (default: SRCDIR/dist)")


# The build commands' switches: the commands that take each, and its help.
_SWITCHES = {
    "--check-reproducible": (
        ("wheel", "sdist"),
        "build twice (another path, TMPDIR, umask, PYTHONHASHSEED, TZ, LC_ALL), keep the first, compare; "
        "exit 10 with a report if they differ",
    ),
    "--only-declared": (
        ("wheel", "sdist", "editable", "metadata", "install"),
        "the hooks and their Python children see only the stdlib, the source tree, backend-path and the "
        "declared build requirements with their own requirements",
    ),
    "--check-declared": (
        ("wheel", "sdist", "editable"),
        "build as usual, then in a copy of the tree with and without each undeclared distribution the build "
        "used; keep the first; exit 11 naming each one that changes the artifact",
    ),
}


def _switches(cmd: Parser, name: str) -> None:
    for flag, (names, text) in _SWITCHES.items():
        if name in names:
            cmd.add_argument(flag, action="store_true", help=text)


def _requires_options(cmd: Parser) -> None:
    add = cmd.add_argument
    add(
        "--for",
        dest="kind",
        choices=["wheel", "sdist", "editable"],
        default="wheel",
        help="whose get_requires hook: wheel (default), sdist or editable",
    )
    add(
        "--runtime",
        action="store_true",
        help="also the project's Requires-Dist (prepare_metadata_for_build_wheel) and groups",
    )
    add("--extra", action="append", default=[], metavar="EXTRA", help="with --runtime; repeatable")
    add(
        "--group",
        action="append",
        default=[],
        metavar="GROUP",
        help="a PEP 735 dependency group, with --runtime; repeatable",
    )


def _check_options(cmd: Parser) -> None:
    cmd.add_argument("wheels", nargs="+", metavar="WHEEL", help="wheels whose Requires-Dist to check")
    cmd.add_argument("--extra", action="append", default=[], metavar="EXTRA", help="an extra asked for; repeatable")


def parser() -> Parser:
    top = Parser(
        prog="isobuild",
        description="PEP 517 frontend for packaging pipelines: the hooks run in the real interpreter "
        "with user and system site-packages scrubbed from sys.path. Runs on CPython 3.9 to 3.15; "
        "targets (--python) CPython 3.8 to 3.15. The result goes to stdout; progress, "
        "warnings and errors to stderr: -q silences progress only, never a warning or an error.",
        epilog="exit codes: " + "; ".join(f"{code} {text}" for code, text in exit_codes().items()),
        parents=[_habits()],
    )
    top.add_argument("-V", "--version", action=_Version)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project, environment = _project_options(), _environment_options()

    def command(name: str, func: commands.Command, parent: Parser = project) -> Parser:
        """The command ``name``, in COMMANDS' order; argparse hands its function back as ``args.func``."""
        cmd = top.commands[name] = sub.add_parser(
            name, parents=[parent], help=COMMANDS[name], description=COMMANDS[name]
        )
        cmd.set_defaults(func=func)
        return cmd

    for name in ("wheel", "sdist", "editable", "metadata"):
        cmd = command(name, commands.build)
        _outdir_option(cmd)
        _switches(cmd, name)
    _requires_options(command("requires", commands.requires))
    install = command("install", commands.install)
    _install_options(install)
    _switches(install, "install")
    _check_options(command("check", commands.check, environment))
    command("env", commands.env)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments; ``help [COMMAND]`` is ``[COMMAND] --help``, gpep517's commands are refused with
    isobuild's (BadInput); argparse exits (SystemExit) for --help, --version and its own usage errors."""
    argv = list(argv)
    first = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if first is not None and argv[first] == "help":
        argv = [*argv[:first], *argv[first + 1 : first + 2], "--help"]
    elif first is not None and argv[first] in REFUSED_COMMANDS:
        raise BadInput(
            f"{argv[first]} is not an isobuild command", hint=f"isobuild's is `{REFUSED_COMMANDS[argv[first]]}`"
        )
    return parser().parse_args(argv)
