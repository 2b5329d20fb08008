"""``wheel --check-reproducible`` and ``sdist --check-reproducible``: the build run twice, with what it
should not depend on varied between the two, and the artifacts compared (compare.py).

Both builds run in this process, one after the other, through builder.build: the hook process inherits
os.environ and the umask, so the second build's are set around it and restored after. Varied: the
tree's path (the second build gets a copy, made before the first build writes anything), TMPDIR,
the umask (022, then 002), PYTHONHASHSEED, TZ, LC_ALL (C.UTF-8, then another installed locale), and
the order in which directories list where the filesystem of TMPDIR makes it differ in the copy (tmpfs
does; ext4 lists by a hash of the name, the same for both: then it is said not to vary). The varied
build runs first, so that OUTDIR only ever gets the kept one (the "first" of the report).
SOURCE_DATE_EPOCH is the same for both: the environment's, else the newest mtime in the tree (an
sdist's unpacked files keep the archive's mtimes), and it is said which. The first artifact is the
result; the second goes with the command's temp dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import builder
from .compare import Comparison, compare
from .errors import BackendFailed, BadInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .builder import Kind, Outcome, Progress, Request

_UMASKS = (0o022, 0o002)
_HASH_SEEDS = ("0", "1")
_TIME_ZONES = ("UTC0", "<+14>-14")  # POSIX TZ strings: they need no tzdata; 14 hours apart
_FIRST_LOCALE = "C.UTF-8"
_NOT_OTHER = {"c", "posix", "c.utf8", "c.utf-8"}


@dataclass(frozen=True)
class Variation:
    """One thing that differs between the two builds: what it is, and its value in each."""

    name: str
    first: str
    second: str


@dataclass(frozen=True)
class Report:
    """What --check-reproducible found: the comparison, what was varied, the SOURCE_DATE_EPOCH used."""

    comparison: Comparison
    variations: tuple[Variation, ...]
    source_date_epoch: str
    source_date_epoch_from: str


def _newest_mtime(tree: str) -> int:
    newest = 0
    for root, _dirs, files in os.walk(tree):
        for name in files:
            try:
                newest = max(newest, int(os.lstat(os.path.join(root, name)).st_mtime))
            except OSError:
                continue
    return newest


def source_date_epoch(tree: str) -> tuple[str, str]:
    """The environment's SOURCE_DATE_EPOCH, else the newest mtime of a file in ``tree``; and whence."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value:
        return value, "the environment"
    return str(_newest_mtime(tree)), f"the newest mtime in {tree}"


def other_locale() -> str:
    """An installed locale (``locale -a``) other than C and POSIX, else POSIX: all that is there to vary."""
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        listed = []
    others = sorted(name for name in listed if name.lower() not in _NOT_OTHER)
    return others[0] if others else "POSIX"


def _listing_varied(first: str, second: str) -> bool:
    """Whether any directory of the copy lists its entries in another order than the original's."""
    for root, _dirs, _files in os.walk(first):
        copy = os.path.join(second, os.path.relpath(root, first))
        try:
            if os.listdir(root) != os.listdir(copy):
                return True
        except OSError:
            continue
    return False


def copy_tree(tree: str, into: str, option: str = "--check-reproducible") -> tuple[str, bool]:
    """A copy of ``tree`` under ``into`` (symlinks as links, mtimes kept), and whether it lists differently."""
    copy = os.path.join(into, os.path.basename(tree.rstrip(os.sep)) or "tree")
    try:
        shutil.copytree(tree, copy, symlinks=True)
    except (OSError, shutil.Error) as exc:
        raise BadInput(
            f"{option}: cannot copy {tree} for another build: {exc}",
            hint="a tree with sockets or unreadable files cannot be copied; build without the check",
        ) from None
    return copy, _listing_varied(tree, copy)


@contextmanager
def environment(variables: dict[str, str], umask: int) -> Iterator[None]:
    """os.environ (which the hook process inherits), tempfile's dir and the umask set for one build."""
    saved = {name: os.environ.get(name) for name in variables}
    saved_tempdir, saved_umask = tempfile.tempdir, os.umask(umask)
    os.environ.update(variables)
    if "TMPDIR" in variables:
        tempfile.tempdir = variables["TMPDIR"]
    try:
        yield
    finally:
        os.umask(saved_umask)
        tempfile.tempdir = saved_tempdir
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _settings(first_tmp: str, second_tmp: str, epoch: str) -> tuple[dict[str, str], dict[str, str]]:
    locales = (_FIRST_LOCALE, other_locale())
    first, second = (
        {"SOURCE_DATE_EPOCH": epoch, "TMPDIR": tmp, "PYTHONHASHSEED": seed, "TZ": tz, "LC_ALL": loc}
        for tmp, seed, tz, loc in zip((first_tmp, second_tmp), _HASH_SEEDS, _TIME_ZONES, locales)
    )
    return first, second


def check(kind: Kind, outdir: str, request: Request, progress: Progress) -> tuple[Outcome, Report]:
    """Build from a copy of the tree with the rest varied, then into ``outdir``; compare the two."""
    scratch = os.path.join(tempfile.gettempdir(), "second")  # in the command's own dir (scratch.py)
    second_tmp, second_out = os.path.join(scratch, "tmp"), os.path.join(scratch, "out")
    for path in (scratch, second_tmp):
        os.mkdir(path, 0o700)
    epoch, whence = source_date_epoch(request.srcdir)
    progress(f"SOURCE_DATE_EPOCH={epoch} for both builds (from {whence})")
    tree, listing = copy_tree(os.path.abspath(request.srcdir), scratch)
    first_env, second_env = _settings(tempfile.gettempdir(), second_tmp, epoch)
    variations = [
        Variation("tree", os.path.abspath(request.srcdir), tree),
        Variation("umask", *(f"{mask:03o}" for mask in _UMASKS)),
    ]
    variations += [
        Variation(name, first_env[name], second_env[name]) for name in ("TMPDIR", "PYTHONHASHSEED", "TZ", "LC_ALL")
    ]
    variations.append(
        Variation(
            "directory listing order",
            "as the tree lists",
            "another order" if listing else "the same: TMPDIR's filesystem lists by name hash",
        )
    )
    progress("varied for the second build: " + "; ".join(f"{v.name} {v.first} vs {v.second}" for v in variations))
    # The varied build runs first, in its copy: should it fail, OUTDIR is left as it was, and the kept
    # build still runs in a tree nothing has written to yet.
    again = request._replace(srcdir=tree)
    with environment(second_env, _UMASKS[1]):
        second = builder.build(kind, second_out, again, lambda text: progress(f"second build: {text}"))
    with environment(first_env, _UMASKS[0]):
        outcome = builder.build(kind, outdir, request, progress)
    assert outcome.path is not None and second.path is not None  # build() returns the artifact
    try:
        comparison = compare(
            outcome.path, second.path, (os.path.abspath(request.srcdir), first_env["TMPDIR"]), (tree, second_tmp)
        )
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
        raise BackendFailed(f"--check-reproducible: {outcome.path} cannot be read as a {kind}: {exc}") from None
    return outcome, Report(comparison, tuple(variations), epoch, whence)
