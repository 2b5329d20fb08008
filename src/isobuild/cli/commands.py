"""The commands: each parses its options, runs, prints its result and returns its exit code.

Each takes the arguments, the console, the file backend output goes to under -q (else None) and, when
SRCDIR named an sdist, that archive (``args.srcdir`` is then its unpacked tree)."""

from __future__ import annotations

import os
import tempfile

from .. import builder
from ..errors import BadInput, NotReproducible, UndeclaredMatters
from .render import (
    check_summary,
    declared_check_json,
    document,
    environment_json,
    install_summary,
    installed_json,
    outcome_json,
    render_environment,
    reproducible_json,
    scheme_lines,
    status_json,
    usage_json,
)
from .target import isolation, target_python
from .values import config_settings, optimize_levels, shebang_flags

# Imported where used (lazy): a command that does not reach that code does not pay for them.
#   install (installer): install alone
#   dependencies, runtime (packaging): check, install --check-deps and --check-imports
#   reproducible, compare: --check-reproducible alone
#   checkdeclared: --check-declared alone
# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import IO

    from ..console import Console
    from ..usage import Usage

    Command = Callable[[argparse.Namespace, Console, IO[bytes] | None, str | None], int]


def check_working_directory() -> None:
    """Relative paths and PYTHONPATH entries are resolved against it: a deleted one is named, not an errno."""
    try:
        os.getcwd()
    except FileNotFoundError:
        try:  # Linux names it still, with " (deleted)"; elsewhere the shell's $PWD is the best guess
            where = os.readlink("/proc/self/cwd").removesuffix(" (deleted)")
        except OSError:
            where = os.environ.get("PWD", "(unknown)")
        raise BadInput(
            f"the working directory no longer exists: {where}",
            hint="cd to a directory that exists, then run isobuild again",
        ) from None


def _request(args: argparse.Namespace, console: Console, log: IO[bytes] | None) -> builder.Request:
    if args.no_isolation:
        console.warn(
            "-n/--no-isolation changes nothing: isobuild never installs anything, the hooks always "
            "run with the build environment you give (PYTHONPATH, --path)"
        )
    return builder.Request(
        srcdir=args.srcdir,
        isolation=isolation(args),
        config_settings=config_settings(args.config_setting, args.config_json),
        skip_dependency_check=args.skip_dependency_check,
        log=log,
        relax=tuple(args.relax),
        remove=tuple(args.remove),
        only_declared=getattr(args, "only_declared", False),
    )


def report_usage(console: Console, usage: Usage | None) -> None:
    """One line when the hooks loaded distributions the build does not declare; -v lists them."""
    if usage is None or not usage.undeclared:
        return
    count = len(usage.undeclared)
    console.warn(
        f"the hooks loaded {count} distribution{'s' if count > 1 else ''} the build does not "
        f"declare{'' if console.verbose else ' (-v lists them)'}"
    )
    for used in usage.undeclared:
        console.detail(f"  undeclared: {used.name} {used.version} at {used.location} ({used.how})")


def install(args: argparse.Namespace, console: Console, log: IO[bytes] | None, archive: str | None) -> int:
    from ..install import Target, install_paths  # installer's import is paid by install alone

    python = target_python(args.python)
    target = Target(
        python=python,
        interpreter=args.interpreter or python,
        shebang_flags=shebang_flags(args.shebang_flags),
        prefix=args.prefix and os.path.abspath(args.prefix),
        scheme=args.scheme,
        destdir=args.destdir and os.path.abspath(args.destdir),
        levels=optimize_levels(args.optimize, args.no_compile),
        invalidation_mode=args.invalidation_mode,
        jobs=args.jobs,
        overwrite=args.overwrite,
        installer_name="" if args.no_installer_file else args.installer,
        requested=args.requested,
        tag_check=not args.no_tag_check,
        hardlink_dupes=args.hardlink_dupes,
    )
    request = _request(args, console, log)

    def check_deps(wheels: list[str], site_dirs: list[str]) -> None:
        """--check-deps: the wheels' Requires-Dist against the destination plus the build environment."""
        from ..dependencies import Policy  # lazy: see the top
        from ..runtime import check_wheels  # lazy: see the top

        check_wheels(wheels, isolation(args, site_dirs), [], Policy.of(args.relax, args.remove), log)

    def check_imports(wheels: list[str], site_dirs: list[str]) -> None:
        """--check-imports: each top-level module and entry point, in the isolated target."""
        from ..runtime import check_imports as run_check, wheel_imports  # lazy: see the top

        env = isolation(args)
        modules: list[str] = []
        entry_points: list[tuple[str, str]] = []
        for wheel in wheels:
            found, scripts = wheel_imports(wheel)
            modules += found if args.check_imports == "" else []
            entry_points += scripts
        modules += [m.strip() for m in args.check_imports.split(",") if m.strip()]
        run_check(python, [*site_dirs, *env.pythonpath, *env.site_dirs], modules, entry_points, log)
        console.progress(f"imported {len(modules)} modules, loaded {len(entry_points)} entry points")

    def build_wheel(outdir: str) -> str:
        outcome = builder.build("wheel", outdir, request, console.step)
        report_usage(console, outcome.usage)
        return outcome.path or ""

    results = install_paths(
        [args.srcdir, *args.wheels],
        target,
        build_wheel,
        console.warn,
        check_deps if args.check_deps else None,
        check_imports if args.check_imports is not None else None,
    )
    infos = [installed_json(result) for result in results]
    for info in infos:
        console.progress(install_summary(info, target.destdir))
        for line in scheme_lines(info):
            console.detail(line)
    if args.json:
        console.result(document({"installed": infos, "interpreter": target.interpreter}))
    else:
        console.result("\n".join(r.dist_info for r in results))
    return 0


def requires(args: argparse.Namespace, console: Console, log: IO[bytes] | None, archive: str | None) -> int:
    runtime = builder.Runtime(tuple(args.extra), tuple(args.group)) if args.runtime else None
    if not args.runtime and (args.extra or args.group):
        raise BadInput("--extra and --group go with --runtime")
    outcome = builder.requires(args.kind, _request(args, console, log), console.step, runtime)
    if args.json:
        console.result(document(outcome_json(outcome), outcome.missing))
    else:
        for status in outcome.requirements:
            where = f"\t{status.origin}" if args.runtime else ""
            console.result(f"{status.requirement}\t{status.describe()}{where}")
    if outcome.missing is not None:
        console.error(outcome.missing, in_result=args.json)
        return outcome.missing.exit_code
    return 0


def env(args: argparse.Namespace, console: Console, log: IO[bytes] | None, archive: str | None) -> int:
    info = environment_json(builder.environment(_request(args, console, log)))
    console.result(document(info) if args.json else render_environment(info))
    return 0


def build(args: argparse.Namespace, console: Console, log: IO[bytes] | None, archive: str | None) -> int:
    request = _request(args, console, log)
    console.detail(
        f"build environment: PYTHONPATH {os.pathsep.join(request.isolation.pythonpath) or '(none)'}; "
        f"site dirs {', '.join(request.isolation.site_dirs) or '(none)'}"
    )
    # an sdist's artifact goes beside it
    outdir = args.outdir or (
        os.path.dirname(os.path.abspath(archive)) if archive else os.path.join(args.srcdir, "dist")
    )
    if getattr(args, "check_declared", False):
        if getattr(args, "check_reproducible", False):
            raise BadInput(
                "--check-declared and --check-reproducible each run builds of their own",
                hint="run the command once with each",
            )
        return _check_declared(args, console, outdir, request, log)
    if getattr(args, "check_reproducible", False):
        return _check_reproducible(args, console, outdir, request)
    outcome = builder.build(args.command, outdir, request, console.step)
    for line in ["hook sys.path:", *(f"  {entry}" for entry in outcome.hello.sys_path)]:
        console.detail(line)
    report_usage(console, outcome.usage)
    info = {**outcome_json(outcome), **usage_json(outcome, request.config_settings)}
    console.result(document(info) if args.json else str(outcome.path))
    return 0


def _check_reproducible(args: argparse.Namespace, console: Console, outdir: str, request: builder.Request) -> int:
    """Built twice and compared (reproducible.py): the first artifact is the result; exit 10 if they differ."""
    from .. import reproducible  # tarfile, shutil's tree copy and the comparison: for this option alone
    from ..compare import render as render_comparison  # lazy: see the top

    outcome, report = reproducible.check(args.command, outdir, request, console.step)
    failure = None
    if not report.comparison.identical:
        failure = NotReproducible(
            f"not reproducible: the two builds differ ({len(report.comparison.members)} member(s), "
            f"{len(report.comparison.archive)} difference(s) in the archive itself)",
            details=render_comparison(report.comparison),
            hint=f"the first build is kept: {outcome.path}; each member's hint names the likely cause",
        )
    if args.json:
        console.result(document({**outcome_json(outcome), "reproducible": reproducible_json(report)}, failure))
    else:
        console.result(str(outcome.path))
    if failure is None:
        console.progress(f"reproducible: both builds gave the same bytes (sha256 {report.comparison.first_sha256})")
        return 0
    console.error(failure, in_result=args.json)
    return failure.exit_code


def _check_declared(
    args: argparse.Namespace, console: Console, outdir: str, request: builder.Request, log: IO[bytes] | None
) -> int:
    """The usual build kept, then the comparison builds (checkdeclared.py); exit 11 if an undeclared one matters."""
    from ..checkdeclared import check as check_declared  # builds, copies, comparisons: for this option alone

    with tempfile.TemporaryFile() as quiet:  # the copies' backend output: for -v only
        outcome, verdicts = check_declared(
            args.command, outdir, request, (console.step, console.detail), log if console.verbose else quiet
        )
    if verdicts.unreproducible:
        console.progress(
            f"--check-declared: not blamed on any distribution, these members differ between two usual "
            f"builds: {', '.join(verdicts.unreproducible)}"
        )
    for name in verdicts.harmless:
        console.detail(f"  harmless: {name}")
    failure = _undeclared_matters(verdicts.matters, args.command, outcome.path) if verdicts.matters else None
    if failure is None:
        console.progress(
            f"--check-declared: {len(verdicts.harmless)} undeclared distribution(s) used, all harmless: "
            f"the artifact is the same with the declared ones alone ({verdicts.builds} builds compared)"
        )
    if args.json:
        info = {
            **outcome_json(outcome),
            **usage_json(outcome, request.config_settings),
            "declared_check": declared_check_json(verdicts),
        }
        console.result(document(info, failure))
    else:
        console.result(str(outcome.path))
    if failure is None:
        return 0
    console.error(failure, in_result=args.json)
    return failure.exit_code


def _undeclared_matters(matters: tuple[tuple[str, str], ...], kind: str, kept: str | None) -> UndeclaredMatters:
    """The error that --check-declared's exit 11 prints: a line a distribution that matters, and how to declare it."""
    from ..checkdeclared import UNRECORDED  # lazy: see the top

    names = [name for name, _ in matters]
    if names == [UNRECORDED]:
        hint = (
            "the build uses something it does not declare where the record does not see it: compare the "
            "artifact with one built with --only-declared"
        )
    else:
        hint = (
            f"declare {' and '.join(names)} in build-system.requires (or have get_requires_for_build_{kind} return it)"
        )
    return UndeclaredMatters(
        f"--check-declared: the artifact changes without what the build does not declare: {', '.join(names)}",
        details="\n".join(f"  {name} matters: {changed}" for name, changed in matters),
        hint=f"{hint}; the usual build is kept: {kept}",
    )


def check(args: argparse.Namespace, console: Console, log: IO[bytes] | None, archive: str | None) -> int:
    """Each wheel's Requires-Dist against the isolated environment: a line a requirement, exit 3 if one is unmet."""
    from ..dependencies import Policy  # lazy: see the top
    from ..runtime import UnmetRuntime, check_wheels  # lazy: see the top

    for wheel in args.wheels:
        if not os.path.isfile(wheel):
            raise BadInput(f"{wheel}: no such wheel file")
    missing: UnmetRuntime | None = None
    try:
        results = check_wheels(args.wheels, isolation(args), args.extra, Policy.of(args.relax, args.remove), log)
    except UnmetRuntime as exc:  # every wheel's statuses are reported, then the error
        results, missing = exc.results, exc
    if args.json:
        console.result(
            document(
                {
                    "wheels": [
                        {"wheel": wheel, "requirements": [status_json(s) for s in statuses]}
                        for wheel, statuses in results
                    ]
                },
                missing,
            )
        )
    else:
        for wheel, statuses in results:
            for status in statuses:
                if status.needed or status.policy or args.verbose:  # marker-excluded: only with -v
                    console.result(f"{os.path.basename(wheel)}\t{status.requirement}\t{status.describe()}")
    console.progress(f"check: {check_summary([s for _, statuses in results for s in statuses])}")
    if missing is not None:
        console.error(missing, in_result=args.json)
        return missing.exit_code
    return 0
