"""Bootstrap from sdists (tools/bootstrap.py), as Arch and Gentoo bring up their Python toolchain: with
only CPython and the sdists of isobuild, flit_core and isobuild's dependencies, isobuild run from this
tree builds and installs them all into an empty prefix, the hooks seeing the stdlib and flit_core alone;
then the isobuild installed there builds a project, the prefix being the pipeline's environment."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import BadInput, MissingDependencies

from conftest import (
    CACHE,
    FIXTURES,
    REPO,
    base_python,
    build_env,
    clean_env,
    copy_fixture,
    read_report,
    require_interpreter,
    run_isobuild,
)

LAUNCHER = REPO / "tools" / "bootstrap.py"
# flit_core 3.12: installer's sdist asks for flit_core<4; the rest are the pyz's pins (3.9 and newer).
_PYZ_PINS = (REPO / "tools" / "pyz-requirements.txt").read_text().splitlines()
PINS = ["flit_core==3.12.0"] + [line.strip() for line in _PYZ_PINS if line.strip() and not line.startswith("#")]
TOOLCHAIN = {"flit_core", "packaging", "pyproject_hooks", "installer", "dependency_groups"}


@pytest.fixture(scope="session")
def toolchain() -> dict[str, Path]:
    """The pinned sdists, downloaded once into CACHE (delete the dir to refresh), by import name."""
    cache = CACHE / f"bootstrap-sdists-{hashlib.sha256(' '.join(PINS).encode()).hexdigest()[:8]}"
    if not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(cache),
                *PINS,
            ],
            check=True,
            env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
        )
        (cache / ".complete").touch()
    return {path.name.rpartition("-")[0]: path for path in cache.glob("*.tar.gz")}


def _sdist(src: Path, out: Path, **env: str) -> Path:
    result = run_isobuild("sdist", str(src), "-o", str(out), "-q", env=clean_env(**env))
    assert result.returncode == 0, result.stderr.decode()
    return Path(result.stdout.decode().strip())


@pytest.fixture(scope="session")
def own_sdists(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """isobuild's sdist, made from this checkout (flit_core from the suite's build env), and the probe's."""
    out = tmp_path_factory.mktemp("own-sdists")
    flit = build_env(f"{sys.version_info[0]}.{sys.version_info[1]}")
    return [
        _sdist(REPO, out, PYTHONPATH=str(flit)),
        _sdist(copy_fixture("probe", tmp_path_factory.mktemp("probe")), out),
    ]


def _sdists_dir(tmp_path: Path, sdists: list[Path]) -> Path:
    directory = tmp_path / "sdists"
    directory.mkdir()
    for sdist in sdists:
        shutil.copy(sdist, directory)
    return directory


def _bootstrap(python: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The launcher as documented, with a temp dir of its own that must be empty once it is done."""
    tmpdir, home = tmp_path / "tmp", tmp_path / "home"
    tmpdir.mkdir()
    home.mkdir()
    result = subprocess.run(
        [python, str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(TMPDIR=str(tmpdir), HOME=str(home), **env),
    )
    assert list(tmpdir.iterdir()) == [], result.stderr  # no temp dir left behind, success or failure
    return result


def _installed_isobuild_builds_flit(tmp_path: Path, python: str, bindir: Path, site: Path) -> None:
    """The prefix is now the pipeline's environment: its isobuild and flit_core, on PYTHONPATH."""
    env = clean_env(PYTHONPATH=str(site), HOME=str(tmp_path / "home"))
    probe = "import isobuild.cli, packaging; print(isobuild.__file__, packaging.__file__)"
    where = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert all(Path(path).is_relative_to(site) for path in where), where  # not the interpreter's packaging 26.2
    result = subprocess.run(
        [str(bindir / "isobuild"), "wheel", str(copy_fixture("flit", tmp_path)), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    wheel = Path(result.stdout.strip())
    assert wheel.name == "sample_flit-1.0-py2.py3-none-any.whl"
    assert "sample_flit/__init__.py" in zipfile.ZipFile(wheel).namelist()


def _dist_infos(site: Path) -> set[str]:
    return {path.name for path in site.glob("*.dist-info")}


def test_bootstrap_into_a_destdir_the_hooks_seeing_flit_core_alone(
    tmp_path: Path, toolchain: dict[str, Path], own_sdists: list[Path]
) -> None:
    """Python 3.11 needs no tomli; the probe's sdist, built with the rest, reports what the hooks saw."""
    python = base_python()  # the real interpreter, whose own site-packages holds packaging 26.2
    sdists = _sdists_dir(tmp_path, [path for name, path in toolchain.items() if name != "tomli"] + own_sdists)
    report, root = tmp_path / "probe.json", tmp_path / "root"
    result = _bootstrap(
        python,
        tmp_path,
        str(sdists),
        "--prefix",
        "/usr",
        "--destdir",
        str(root),
        PROBE_REPORT=str(report),
        PYTHONPATH=str(FIXTURES),
    )
    assert result.returncode == 0, result.stderr
    assert "PYTHONPATH ignored: the hooks' build env is flit_core alone" in result.stderr
    site = root / "usr" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    expected = {path.name[: -len(".tar.gz")] + ".dist-info" for path in sdists.iterdir()}
    assert _dist_infos(site) == expected and len(expected) == 7
    assert sorted(result.stdout.split()) == sorted(str(site / name) for name in expected)
    assert (root / "usr" / "bin" / "isobuild").read_text().splitlines()[0] == f"#!{python}"
    data = read_report(report)
    assert not any(data["importable"].values()), data["importable"]  # isobuild's own deps stayed the frontend's
    assert [dist["name"] for dist in data["distributions"]] == ["flit_core"]
    assert not any(str(REPO) in entry or str(FIXTURES) in entry for entry in data["sys_path"]), data["sys_path"]
    _installed_isobuild_builds_flit(tmp_path, python, root / "usr" / "bin", site)


def test_bootstrap_on_python_3_9_with_tomli(tmp_path: Path, toolchain: dict[str, Path], own_sdists: list[Path]) -> None:
    python = require_interpreter("3.9")
    sdists = _sdists_dir(tmp_path, [*toolchain.values(), own_sdists[0]])
    prefix = tmp_path / "prefix"
    result = _bootstrap(python, tmp_path, str(sdists), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr
    site = prefix / "lib" / "python3.9" / "site-packages"
    assert {name.partition("-")[0] for name in _dist_infos(site)} == TOOLCHAIN | {"tomli", "isobuild"}
    assert list(site.glob("isobuild/__pycache__/*.cpython-39.pyc"))  # compiled by the target
    _installed_isobuild_builds_flit(tmp_path, python, prefix / "bin", site)


@pytest.mark.parametrize("version", ["3.15"])
def test_bootstrap_on_the_newest_python(
    tmp_path: Path, toolchain: dict[str, Path], own_sdists: list[Path], version: str
) -> None:
    """Debian's python3.15 (no pip, dist-packages, posix_local by default) runs the launcher; --prefix
    installs into posix_prefix, and the isobuild installed there builds a project on 3.15."""
    python = require_interpreter(version)
    sdists = _sdists_dir(tmp_path, [path for name, path in toolchain.items() if name != "tomli"] + own_sdists[:1])
    prefix = tmp_path / "prefix"
    result = _bootstrap(python, tmp_path, str(sdists), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr
    site = prefix / "lib" / f"python{version}" / "site-packages"
    assert {name.partition("-")[0] for name in _dist_infos(site)} == TOOLCHAIN | {"isobuild"}
    assert list(site.glob(f"isobuild/__pycache__/*.cpython-{version.replace('.', '')}.pyc"))
    assert (prefix / "bin" / "isobuild").read_text().splitlines()[0] == f"#!{python}"
    _installed_isobuild_builds_flit(tmp_path, python, prefix / "bin", site)


def _tarball(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


@pytest.mark.parametrize("case", ["missing", "two", "no-package", "not-a-dir"])
def test_bad_input_is_one_line_naming_it_and_nothing_is_left(
    tmp_path: Path, toolchain: dict[str, Path], own_sdists: list[Path], case: str
) -> None:
    sdists = _sdists_dir(tmp_path, [path for name, path in toolchain.items() if name != "packaging"] + own_sdists[:1])
    culprit = {
        "missing": "no sdist of packaging in",
        "two": "packaging-1.0.tar.gz and packaging-26.3.tar.gz",
        "no-package": "packaging-1.0.tar.gz: no package packaging/ at its top or in src/",
        "not-a-dir": "nowhere: not a directory of sdists",
    }[case]
    if case in ("two", "no-package"):
        _tarball(sdists / "packaging-1.0.tar.gz", {"packaging-1.0/pyproject.toml": "[project]\nname = 'packaging'\n"})
    if case == "two":
        shutil.copy(toolchain["packaging"], sdists)
    prefix = tmp_path / "prefix"
    result = _bootstrap(
        base_python(), tmp_path, str(tmp_path / "nowhere" if case == "not-a-dir" else sdists), "--prefix", str(prefix)
    )
    assert result.returncode == BadInput.exit_code, result.stderr
    assert result.stderr.count("\n") == 1 and culprit in result.stderr, result.stderr
    assert result.stderr.startswith("bootstrap: ERROR ") and not prefix.exists()


def test_a_failed_build_installs_nothing_and_exits_with_isobuilds_code(
    tmp_path: Path, toolchain: dict[str, Path], own_sdists: list[Path]
) -> None:
    """An sdist whose backend is not flit_core: its requirement is missing from the build env (exit 3)."""
    sdists = _sdists_dir(tmp_path, [*toolchain.values(), own_sdists[0]])
    _tarball(
        sdists / "needs_setuptools-1.0.tar.gz",
        {"needs_setuptools-1.0/pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'},
    )
    prefix = tmp_path / "prefix"
    result = _bootstrap(base_python(), tmp_path, str(sdists), "--prefix", str(prefix))
    assert result.returncode == MissingDependencies.exit_code, result.stderr
    assert "missing build dependencies" in result.stderr and "setuptools" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "bootstrap: ERROR isobuild wheel needs_setuptools-1.0.tar.gz failed"
        " (exit 3; its error is above); nothing was installed"
    )
    assert not prefix.exists()
