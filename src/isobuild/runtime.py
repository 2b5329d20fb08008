"""Runtime dependencies: a wheel's Requires-Dist (or a project's, and its PEP 735 dependency groups)
checked against the isolated environment of the target, as Nix's pythonRuntimeDepsCheck does by hand.

The environment is the one the hooks would see (PYTHONPATH, --path, NIX/GUIX_PYTHONPATH, with
--system-site the interpreter's own), as a hook process of the target reports its sys.path; wheels checked
together count as installed. Markers are the target's, with the extras asked for; pre-releases
satisfy a specifier, as in the build-requirement check.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import zipfile
from email.parser import HeaderParser

from installer.exceptions import InstallerError
from installer.sources import WheelFile
from installer.utils import parse_entrypoints

from .dependencies import Environment, Installed, Policy, Status, check, summary
from .errors import BadInput, ImportCheckFailed, InterpreterError, MissingDependencies
from .hookprocess import HookProcess
from .inside import inside_command
from .isolation import Isolation, hook_environ
from .reaper import end_group

IMPORT_TIMEOUT = 600  # seconds for the whole import check: an import that waits for ever is a failure to run it

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import IO


def _dist_info(path: str, zf: zipfile.ZipFile) -> WheelFile:
    """installer's view of the wheel: its one .dist-info dir and the files in it."""
    source = WheelFile(zf)
    try:
        source.dist_info_dir  # noqa: B018  (raises unless there is exactly one)
    except InstallerError as exc:
        raise BadInput(f"{path} is not a readable wheel: {exc}") from None
    return source


def wheel_metadata(path: str) -> tuple[str, str, list[str]]:
    """(name, version, Requires-Dist) from a wheel's METADATA."""
    try:
        with zipfile.ZipFile(path) as zf:
            text = _dist_info(path, zf).read_dist_info("METADATA")
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise BadInput(f"{path} is not a readable wheel: {exc}") from None
    headers = HeaderParser().parsestr(text)
    return str(headers.get("Name", "")), str(headers.get("Version", "")), list(headers.get_all("Requires-Dist") or [])


class UnmetRuntime(MissingDependencies):
    """A wheel's requirement is unmet (exit 3); ``results`` holds every wheel's statuses, for the report."""

    def __init__(self, message: str, results: list[tuple[str, list[Status]]], *, hint: str, details: str) -> None:
        super().__init__(message, hint=hint, details=details)
        self.results = results


def check_wheels(
    wheels: Sequence[str], isolation: Isolation, extras: Iterable[str], policy: Policy, log: IO[bytes] | None = None
) -> list[tuple[str, list[Status]]]:
    """Each wheel's statuses; UnmetRuntime (exit 3) if any requirement is unmet."""
    metadata = [(wheel, *wheel_metadata(wheel)) for wheel in wheels]
    known = {name: Installed(version, tuple(requires), wheel) for wheel, name, version, requires in metadata}
    with HookProcess(isolation, log=log) as process:
        process.setup()
        hello = process.hello()
        env = Environment(hello.sys_path, hello.markers, policy, known)
        results = [
            (wheel, check(requires, f"{os.path.basename(wheel)} Requires-Dist", env, extras))
            for wheel, _, _, requires in metadata
        ]
    unmet = [(wheel, s) for wheel, statuses in results for s in statuses if not s.satisfied]
    if not unmet:
        return results
    names, advice = summary(sorted((s for _, s in unmet), key=lambda s: s.requirement))
    raise UnmetRuntime(
        f"missing runtime dependencies (checked against {hello.executable}, the build environment and the "
        f"wheels named together): {names}",
        results,
        details="\n".join(f"  {os.path.basename(wheel)}: {s.requirement}: {s.describe()}" for wheel, s in unmet),
        hint=f"put them on PYTHONPATH or --path, or name their wheels too; {advice}",
    )


def wheel_imports(path: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A wheel's top-level modules (top_level.txt, else its files) and its console/GUI entry points."""
    with zipfile.ZipFile(path) as zf:
        source = _dist_info(path, zf)
        files = source.dist_info_filenames
        if "top_level.txt" in files:
            modules = [line.strip() for line in source.read_dist_info("top_level.txt").splitlines() if line.strip()]
        else:
            modules = sorted({_top_module(name) for name in zf.namelist()} - {""})
        scripts = parse_entrypoints(source.read_dist_info("entry_points.txt")) if "entry_points.txt" in files else []
    importable = [m for m in modules if all(part.isidentifier() for part in m.split("."))]
    return importable, [(module, attr) for _, module, attr, _ in scripts]


def _top_module(member: str) -> str:
    """The importable top-level name a member belongs to ("" for metadata, .data, bytecode and the like)."""
    top, sep, _ = member.partition("/")
    if top.endswith((".dist-info", ".data")) or "__pycache__" in member:
        return ""
    if sep:  # a package's directory
        return top
    if top.endswith(".py"):
        return top[: -len(".py")]
    if top.endswith((".so", ".pyd")):  # an extension module: NAME.cpython-311-x86_64-linux-gnu.so
        return top.split(".", 1)[0]
    return ""


def check_imports(
    python: str,
    path: Sequence[str],
    modules: Sequence[str],
    entry_points: Sequence[tuple[str, str]],
    log: IO[bytes] | None = None,
) -> None:
    """Import ``modules`` and load ``entry_points`` in the isolated target with ``path`` first; else ImportCheckFailed.

    It runs in a session of its own, with files (not pipes) for its request and answer: when it has exited,
    whatever the modules started in its group is killed (a child that forked keeps no pipe open to wait on),
    and what escaped the group is ended with the command (reaper.py). It writes no bytecode: the modules are
    the installed ones, and a .pyc would hold the staging path (DESTDIR) and be in no RECORD."""
    request = json.dumps(
        {"path": list(path), "modules": list(modules), "entry_points": [list(e) for e in entry_points]}
    )
    env = {**hook_environ(dict(os.environ)), "PYTHONDONTWRITEBYTECODE": "1"}  # for the modules' own Pythons too
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as answer:
        stdin.write(request.encode())
        stdin.seek(0)
        try:
            proc = subprocess.Popen(
                inside_command(python, "imports"),
                stdin=stdin,
                stdout=answer,
                stderr=log,
                env=env,
                start_new_session=True,
            )
            end_group(proc, IMPORT_TIMEOUT)
            answer.seek(0)
            failures = json.loads(answer.read())["failures"]
        except (OSError, ValueError, KeyError, TypeError, subprocess.TimeoutExpired) as exc:
            raise InterpreterError(f"{python} could not run the import check: {exc}") from None
    if failures:
        raise ImportCheckFailed(
            "installed, but does not import: " + ", ".join(what for what, _ in failures),
            details="\n".join(f"  {what}: {why}" for what, why in failures),
            hint="the install was rolled back; the modules were imported with the destination and the build "
            "environment on sys.path, nothing else",
        )
