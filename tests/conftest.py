"""Shared test machinery: target interpreters, real build environments, poisoned site dirs.

Everything here is real: interpreters from pyenv (3.8-3.13) and Debian unstable's
3.14 and 3.15 relocated by tools/fetch_pythons.py, backends installed with
``pip install --target`` into a build-env dir that PYTHONPATH names, and site
dirs that record every piece of foreign code that runs in them.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
CACHE = Path(os.environ.get("ISOBUILD_TEST_CACHE", REPO / ".cache" / "tests"))
TARGET_VERSIONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
BACKENDS = ["setuptools>=70", "flit_core>=3.9", "hatchling", "editables"]  # editables: hatchling's build_editable

# Variables of the developer's shell that would change what the tests see.
_SCRUBBED = ("PYTHONPATH", "PYTHONUSERBASE", "PYTHONNOUSERSITE", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out) if out else None


def _load_fetcher() -> ModuleType:
    """tools/fetch_pythons.py as a module: it alone knows where it caches the interpreters (not a package)."""
    spec = importlib.util.spec_from_file_location("fetch_pythons", REPO / "tools" / "fetch_pythons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FETCHED = _load_fetcher()


def find_interpreter(version: str) -> str | None:
    """A real (non-venv) CPython X.Y: pyenv's newest patch release, else one fetched by
    tools/fetch_pythons.py (Debian's 3.14 and 3.15), else one on PATH."""
    root = _pyenv_root()
    if root is not None:
        found = sorted(glob.glob(str(root / "versions" / f"{version}.*" / "bin" / f"python{version}")))
        found = [p for p in found if Path(p).parent.parent.name.replace(version + ".", "", 1).isdigit()]
        if found:
            return found[-1]
    if FETCHED.complete(version):
        return str(FETCHED.interpreter(version))
    return shutil.which(f"python{version}")


def is_fetched(python: str) -> bool:
    """An interpreter of tools/fetch_pythons.py: Debian's layout, and C extensions need its CPATH."""
    return Path(python).is_relative_to(FETCHED.cache_dir())


def c_build_env(python: str, version: str) -> dict[str, str]:
    """What a C extension's build needs from the environment: for a fetched interpreter, CPATH
    (Debian's pyconfig.h includes <x86_64-linux-gnu/python3.X/pyconfig.h> from D/usr/include)."""
    return {"CPATH": str(FETCHED.include_dir(version))} if is_fetched(python) else {}


def require_interpreter(version: str) -> str:
    python = find_interpreter(version)
    if python is None:
        why = (
            f"run `python3 tools/fetch_pythons.py {version}` to fetch Debian's (it caches them in "
            f"{FETCHED.cache_dir()})"
            if version in FETCHED.VERSIONS
            else "looked in `pyenv root`/versions and PATH"
        )
        pytest.skip(f"no Python {version} on this machine ({why})")
    return python


def base_python() -> str:
    """The interpreter behind the one running the tests (not a venv): it has a user site."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return find_interpreter(version) or os.path.join(sys.base_prefix, "bin", f"python{version}")


def _default_target() -> str:
    """Whom isobuild targets without --python when run by this interpreter: itself, or its venv's base."""
    if sys.prefix == sys.base_prefix:
        return sys.executable
    with open(os.path.join(sys.prefix, "pyvenv.cfg")) as f:
        home = next(line.partition("=")[2].strip() for line in f if line.partition("=")[0].strip() == "home")
    return os.path.join(home, os.path.basename(sys.executable))


DEFAULT_TARGET = _default_target()


def build_env(version: str) -> Path:
    """setuptools, flit_core and hatchling for Python X.Y, installed once with pip install --target.

    Kept in CACHE between runs; delete it to refresh.
    """
    target = CACHE / f"build-env-{version}-{hashlib.sha256(' '.join(BACKENDS).encode()).hexdigest()[:8]}"
    stamp = target / ".complete"
    if not stamp.exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        pip, options = _pip_for(version)
        subprocess.run(
            [
                *pip,
                "install",
                *options,
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(target),
                *BACKENDS,
            ],
            check=True,
            env=clean_env(PIP_NO_WARN_SCRIPT_LOCATION="1", PIP_ROOT_USER_ACTION="ignore"),
        )
        stamp.touch()
    return target


def _pip_for(version: str) -> tuple[list[str], list[str]]:
    """The target's own pip, so that Requires-Python and markers are the target's. Debian's python3.X has
    none (its ensurepip has no wheels): then this pip, told the target's version and given wheels only
    (pure-Python backends; the platform markers are this machine's, as the target's)."""
    python = require_interpreter(version)
    if subprocess.run([python, "-c", "import pip"], capture_output=True).returncode == 0:
        return [python, "-m", "pip"], []
    return [sys.executable, "-m", "pip"], ["--python-version", version, "--only-binary", ":all:"]


def _not_installed(packages: tuple[str, ...]) -> list[str]:
    """Debian packages not installed: with none missing, apt_install neither updates nor installs."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages], capture_output=True, text=True
    ).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


def _apt(args: list[str], timeout: float) -> None:
    """apt-get ARGS as root on a Debian-like machine; a failure fails the test (CI can reach the repositories)."""
    env = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-q", "-q", "-o", "DPkg::Lock::Timeout=120", *args]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} took over {timeout:.0f} s")
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}")


def apt_install(packages: tuple[str, ...], why: str) -> None:
    """Debian packages a test needs, installed with apt-get unless present, and only where ISOBUILD_TEST_APT=1
    asks for it (.ci/run does: a developer's suite never changes the system unasked); skips (saying ``why``)
    otherwise, and where there is no apt-get or no root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        pytest.skip(f"no apt-get/dpkg-query to install {', '.join(packages)} ({why})")
    missing = _not_installed(packages)
    if not missing:
        return
    if os.environ.get("ISOBUILD_TEST_APT") != "1":
        pytest.skip(f"needs {', '.join(missing)} ({why}): set ISOBUILD_TEST_APT=1 to let the test apt-get install them")
    if os.geteuid() != 0:
        pytest.skip(f"needs root to apt-get install {', '.join(missing)} ({why})")
    _apt(["update"], timeout=300)
    _apt(["install", "-y", "--no-install-recommends", *missing], timeout=600)
    assert not _not_installed(packages), _not_installed(packages)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(extra)
    return env


# With ISOBUILD_PYZ naming an isobuild.pyz, the tests run isobuild through it (CI does, for part of the suite).
PYZ = os.environ.get("ISOBUILD_PYZ")


def isobuild_command(python: str | None = None) -> list[str]:
    """How the tests start isobuild: ``python -m isobuild``, or ``python ISOBUILD_PYZ``."""
    return [python or sys.executable, *([os.path.abspath(PYZ)] if PYZ else ["-m", "isobuild"])]


def run_isobuild(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    python: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m isobuild ARGS`` as a pipeline runs it: a real process, bytes out."""
    return subprocess.run(
        [*isobuild_command(python), *args],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
    )


def make_pyz(directory: Path) -> Path:
    """isobuild.pyz built from this checkout by the documented command (pins from the index)."""
    output = directory / "isobuild.pyz"
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_pyz.py"), "-o", str(output)],
        check=True,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
        capture_output=True,
    )
    return output


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One isobuild.pyz per test session, or ISOBUILD_PYZ's."""
    return Path(PYZ).resolve() if PYZ else make_pyz(tmp_path_factory.mktemp("pyz"))


def copy_fixture(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("__pycache__", "dist", "build", "*.egg-info"))
    return dest


# ---------------------------------------------------------------- poisoned site dirs

_MARK = """\
import os
open(os.path.join({markers!r}, "{kind}-{tag}-%d" % os.getpid()), "w").close()
"""

FIXTURE_DEP = "isobuild_fixture_dep"  # the requires-dep fixture's requirement


def _dist_info(site: Path, name: str, version: str, entry_points: str = "") -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    (info / "RECORD").write_text("")


def poison_site(site: Path, markers: Path, tag: str) -> Path:
    """Fill a site dir with code that leaves a marker file whenever it runs.

    A .pth line, sitecustomize, usercustomize, a module, and a distribution whose
    entry points sit in the groups setuptools calls during a build; plus
    distributions that would mask missing build requirements.
    """
    site.mkdir(parents=True, exist_ok=True)
    markers.mkdir(parents=True, exist_ok=True)

    def mark(kind: str) -> str:
        return _MARK.format(markers=str(markers), kind=kind, tag=tag)

    (site / f"zz_poison_{tag}.pth").write_text(mark("pth").replace("\n", "; ").rstrip("; ") + "\n")
    (site / "sitecustomize.py").write_text(mark("sitecustomize"))
    (site / "usercustomize.py").write_text(mark("usercustomize"))
    (site / "poisonmod.py").write_text(
        mark("import")
        + textwrap.dedent(f"""
        def hook(*args, **kwargs):
            open(os.path.join({str(markers)!r}, "entrypoint-{tag}-%d" % os.getpid()), "w").close()
        """)
    )
    groups = [
        "setuptools.finalize_distribution_options",
        "distutils.setup_keywords",
        "setuptools.file_finders",
        "egg_info.writers",
    ]
    entry_points = "".join(f"[{group}]\npoison_{tag} = poisonmod:hook\n\n" for group in groups)
    _dist_info(site, "poison", "1.0", entry_points + "[console_scripts]\npoison = poisonmod:hook\n")
    _dist_info(site, FIXTURE_DEP, "1.0")
    _dist_info(site, "wheel", "99.0")
    return site


def user_site(home: Path, version: str) -> Path:
    return home / ".local" / "lib" / f"python{version}" / "site-packages"


@dataclass
class Poisoned:
    """A fake HOME with a poisoned user site, and a venv (its site-packages is its system site) poisoned too."""

    home: Path
    markers: Path
    venv_python: str
    venv_site: Path

    def fired(self) -> list[str]:
        return sorted(p.name for p in self.markers.iterdir())

    def env(self, pythonpath: str = "", **extra: str) -> dict[str, str]:
        return clean_env(HOME=str(self.home), PYTHONPATH=pythonpath, **extra)


def make_poisoned(tmp_path: Path, python: str, version: str) -> Poisoned:
    home, markers = tmp_path / "home", tmp_path / "markers"
    poison_site(user_site(home, version), markers, "user")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    venv_site = venv / "lib" / f"python{version}" / "site-packages"
    poison_site(venv_site, markers, "system")
    return Poisoned(home, markers, str(venv / "bin" / "python"), venv_site)


def read_report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


# ---------------------------------------------------------------- hand-made wheels


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under root: its kind and content (a link's target), to compare before and after."""
    found: dict[str, tuple[str, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", "")
        else:
            found[rel] = ("file", path.read_bytes())
    return found


def make_wheel(
    directory: Path,
    files: dict[str, bytes],
    *,
    name: str = "demo",
    version: str = "1.0",
    record: str | None = None,
    symlinks: tuple[str, ...] = (),
    wheel_name: str | None = None,
) -> Path:
    """A wheel with a correct RECORD unless ``record`` replaces it; dist-info files are added when absent."""
    info = f"{name}-{version}.dist-info"
    files = dict(files)
    files.setdefault(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode())
    files.setdefault(
        f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    lines = [f"{p},{digest(d)},{len(d)}" for p, d in files.items() if d is not None] + [f"{info}/RECORD,,"]
    path = directory / (wheel_name or f"{name}-{version}-py3-none-any.whl")
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            if data is None:
                continue
            zi = zipfile.ZipInfo(member)
            if member in symlinks:
                zi.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(zi, data)
        if record is not False:
            zf.writestr(f"{info}/RECORD", record if record is not None else "\n".join(lines) + "\n")
    return path
