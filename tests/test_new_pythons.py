"""Python 3.14 and 3.15 as targets: Debian unstable's interpreters, relocated by tools/fetch_pythons.py.

They have Debian's layout (dist-packages, ``posix_local`` as the default scheme, ``deb_system``), no
pip, and a pyconfig.h that needs ``CPATH``: what a Debian or Ubuntu pipeline meets. Each test runs
the real interpreter; the tests skip, naming the fetch command, where it could not fetch them.
Free-threaded builds (3.14t, 3.15t) cannot be had here: their tag rules are tested on the facts
such a target reports (the last tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging import tags

from isobuild.errors import BadInput, ImportCheckFailed, MissingDependencies, RefusedWheel
from isobuild.install.scheme import Facts, TargetScheme

from conftest import (
    FETCHED,
    REPO,
    build_env,
    c_build_env,
    clean_env,
    copy_fixture,
    is_fetched,
    make_poisoned,
    make_wheel,
    require_interpreter,
    run_isobuild,
)
from helpers import install_for, magic_number, python_says

NEW = ["3.14", "3.15"]
FETCH = REPO / "tools" / "fetch_pythons.py"
DEMO = {
    "demo/__init__.py": b"def main():\n    print('demo ok')\n",
    "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo-cli = demo:main\n",
}


@pytest.fixture(params=NEW)
def target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(X.Y, the interpreter): Debian's, fetched, unless pyenv or PATH has one."""
    return request.param, require_interpreter(request.param)


def _ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-4000:]
    return result.stdout.decode().strip()


def _nodot(version: str) -> str:
    return version.replace(".", "")


# ---------------------------------------------------------------- tools/fetch_pythons.py


def test_fetch_reuses_a_complete_cache_without_apt(tmp_path: Path) -> None:
    """Cached, it prints the interpreters with no apt-get on PATH and no archive to reach."""
    for version in NEW:
        require_interpreter(version)
        if not FETCHED.complete(version):
            pytest.skip(f"Python {version} is not one fetched by tools/fetch_pythons.py")
    env = clean_env(PATH=str(tmp_path), ISOBUILD_DEBIAN_MIRROR="http://unreachable.invalid/debian")
    result = subprocess.run([sys.executable, str(FETCH)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(FETCHED.interpreter(v)) for v in NEW]


def test_fetch_says_why_it_cannot(tmp_path: Path) -> None:
    """No apt-get: exit 2 and one ERROR line (.ci/run carries on, the tests skip), nothing printed."""
    cache = tmp_path / "cache"
    env = clean_env(PATH=str(tmp_path), ISOBUILD_PYTHONS_CACHE=str(cache))
    result = subprocess.run([sys.executable, str(FETCH), "3.15"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == BadInput.exit_code and result.stdout == ""
    assert result.stderr.startswith("ERROR cannot fetch Python 3.15") and "apt-get" in result.stderr
    assert "Traceback" not in result.stderr and not (cache / "3.15").exists()


def test_fetch_without_the_archive_says_so_and_never_takes_this_machines_packages(tmp_path: Path) -> None:
    """apt-get update exits 0 when the archive is unreachable, and apt-get download then takes the
    installed (older) versions from the machine's own sources: the fetch stops before that."""
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get here")
    cache = tmp_path / "cache"
    env = clean_env(ISOBUILD_PYTHONS_CACHE=str(cache), ISOBUILD_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    result = subprocess.run([sys.executable, str(FETCH), "3.15"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == BadInput.exit_code and result.stdout == "", result.stderr
    assert "got no sid package list from http://127.0.0.1:9/debian" in result.stderr, result.stderr
    assert not (cache / "3.15").exists() and not list(cache.rglob("*.deb"))


def test_fetched_interpreter_has_debian_layout(target: tuple[str, str]) -> None:
    version, python = target
    if not is_fetched(python):
        pytest.skip(f"Python {version} is not one fetched by tools/fetch_pythons.py")
    code = (
        "import sys, sysconfig; print(json.dumps([sys.executable, sysconfig.get_default_scheme(), "
        "sysconfig.get_scheme_names()]))"
    )
    out = subprocess.run([python, "-c", "import json; " + code], capture_output=True, text=True, check=True).stdout
    executable, default, schemes = json.loads(out)
    assert executable == python and default == "posix_local" and "deb_system" in schemes


# ---------------------------------------------------------------- the hooks: build, env, requires, check


@pytest.mark.parametrize("fixture", ["flit", "hatch", "setuptools-pyproject"])
def test_each_backend_builds_isolated(tmp_path: Path, target: tuple[str, str], fixture: str) -> None:
    """Each backend's wheel, with a poisoned user site and venv site: nothing of them runs."""
    version, python = target
    poisoned = make_poisoned(tmp_path, python, version)
    src = copy_fixture(fixture, tmp_path)
    wheel = Path(
        _ok(
            run_isobuild(
                "wheel",
                str(src),
                "--python",
                python,
                "-o",
                str(tmp_path / "out"),
                env=poisoned.env(str(build_env(version))),
            )
        )
    )
    assert wheel.is_file() and wheel.name.endswith("-none-any.whl")
    assert poisoned.fired() == []


def test_env_keeps_every_debian_site_dir_out(tmp_path: Path, target: tuple[str, str]) -> None:
    version, python = target
    report = json.loads(_ok(run_isobuild("env", str(REPO / "fixtures" / "probe"), "--python", python, "--json")))
    assert report["interpreter"] == python and report["python_version"].startswith(version + ".")
    site_dirs = python_says(python, "import site; print('\\n'.join(site.getsitepackages()))").split()
    assert site_dirs and set(site_dirs) <= set(report["excluded"]["system_site"])
    assert not set(site_dirs) & set(report["sys_path"] + report["children"]["same_interpreter"]["sys_path"])


def test_another_interpreter_run_by_a_hook_is_left_alone(tmp_path: Path, target: tuple[str, str]) -> None:
    """The hooks on one new Python run a tool of a venv of the other: it keeps its site-packages and
    its own sitecustomize; isobuild's shim is not on its sys.path."""
    version, python = target
    other = NEW[1 - NEW.index(version)]
    venv = tmp_path / "tool-venv"
    subprocess.run([require_interpreter(other), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{other}" / "site-packages"
    (site / "toolmod.py").write_text("VALUE = 1\n")
    (site / "sitecustomize.py").write_text("TOOL_OWN = True\n")
    report = tmp_path / "foreign.json"
    _ok(
        run_isobuild(
            "wheel",
            str(copy_fixture("probe", tmp_path)),
            "--python",
            python,
            "-o",
            str(tmp_path / "out"),
            "-C",
            f"foreign-python={venv / 'bin' / 'python'}",
            "-C",
            f"foreign-report={report}",
            "-C",
            "foreign-import=toolmod",
            env=make_poisoned(tmp_path, python, version).env(),
        )
    )
    found = json.loads(report.read_text())
    assert found["imported"] is True and found["sitecustomize"] == str(site / "sitecustomize.py"), found
    assert not any("_shim" in entry for entry in found["sys_path"]), found["sys_path"]


def _marker_project(root: Path, requirement: str) -> Path:
    """fixtures/requires-dep with one build requirement under a marker."""
    root.mkdir()
    src = copy_fixture("requires-dep", root)
    text = (src / "pyproject.toml").read_text()
    (src / "pyproject.toml").write_text(
        text.replace('requires = ["isobuild-fixture-dep>=1.0"]', f"requires = [{json.dumps(requirement)}]")
    )
    return src


def test_requires_markers_are_the_targets(tmp_path: Path, target: tuple[str, str]) -> None:
    """A requirement only for 3.15 is missing on 3.15 (exit 3) and not asked for on 3.14."""
    version, python = target
    src = _marker_project(tmp_path / "p", "isobuild-fixture-dep>=1.0; python_version >= '3.15'")
    result = run_isobuild("requires", str(src), "--python", python)
    assert result.returncode == (MissingDependencies.exit_code if version == "3.15" else 0), result.stderr


def test_check_markers_are_the_targets(tmp_path: Path, target: tuple[str, str]) -> None:
    version, python = target
    metadata = (
        b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: absent-dist; python_version >= '3.15'\n"
    )
    wheel = make_wheel(tmp_path / "w", {**DEMO, "demo-1.0.dist-info/METADATA": metadata})
    result = run_isobuild("check", str(wheel), "--python", python)
    assert result.returncode == (MissingDependencies.exit_code if version == "3.15" else 0), result.stderr
    if version == "3.15":
        assert b"absent-dist" in result.stderr


def test_sdist_input(tmp_path: Path, target: tuple[str, str]) -> None:
    version, python = target
    env = clean_env(PYTHONPATH=str(build_env(version)))
    src = copy_fixture("flit", tmp_path)
    sdist = _ok(run_isobuild("sdist", str(src), "--python", python, "-o", str(tmp_path / "sd"), env=env))
    wheel = Path(_ok(run_isobuild("wheel", sdist, "--python", python, "-o", str(tmp_path / "wh"), env=env)))
    assert wheel.is_file() and wheel.parent == tmp_path / "wh"


# ---------------------------------------------------------------- install: schemes, shebangs, bytecode, tags

SCHEMES = {  # --scheme -> (purelib, scripts) under --prefix P, as these Debian interpreters lay them out
    "posix_prefix": ("lib/python{v}/site-packages", "bin"),
    "posix_local": ("local/lib/python{v}/dist-packages", "local/bin"),
    "deb_system": ("lib/python3/dist-packages", "bin"),
}


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_install_into_each_scheme_through_destdir(tmp_path: Path, target: tuple[str, str], scheme: str) -> None:
    version, python = target
    if scheme != "posix_prefix" and not is_fetched(python):
        pytest.skip(f"the {scheme} scheme is Debian's; Python {version} here is not")
    wheel = make_wheel(tmp_path / "w", DEMO)
    stage, prefix = tmp_path / "stage", "/usr"
    _ok(
        run_isobuild(
            "install", str(wheel), "--python", python, "--prefix", prefix, "--destdir", str(stage), "--scheme", scheme
        )
    )
    purelib, scripts = (stage / "usr" / part.format(v=version) for part in SCHEMES[scheme])
    assert (purelib / "demo" / "__init__.py").is_file()
    script = scripts / "demo-cli"
    assert script.read_bytes().split(b"\n", 1)[0] == f"#!{python}".encode()
    ran = subprocess.run([str(script)], env=clean_env(PYTHONPATH=str(purelib)), capture_output=True)
    assert ran.stdout == b"demo ok\n", ran.stderr


def test_install_into_a_venv_of_the_target(tmp_path: Path, target: tuple[str, str]) -> None:
    """No --prefix: the venv's own scheme (site-packages, even on Debian)."""
    version, python = target
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel = make_wheel(tmp_path / "w", DEMO)
    _ok(run_isobuild("install", str(wheel), "--python", str(venv / "bin" / "python")))
    assert (venv / "lib" / f"python{version}" / "site-packages" / "demo" / "__init__.py").is_file()
    ran = subprocess.run([str(venv / "bin" / "demo-cli")], env=clean_env(), capture_output=True)
    assert ran.stdout == b"demo ok\n", ran.stderr


PYC_FLAGS = {"timestamp": 0, "unchecked-hash": 1, "checked-hash": 3}  # PEP 552's flags word


@pytest.mark.parametrize("mode", sorted(PYC_FLAGS))
def test_bytecode_every_level_and_invalidation_mode(tmp_path: Path, target: tuple[str, str], mode: str) -> None:
    version, python = target
    wheel = make_wheel(tmp_path / "w", {**DEMO, "demo/mod.py": b'"""doc"""\nassert True\nX = 1\n'})
    prefix = tmp_path / "prefix"
    _ok(install_for(python, wheel, prefix, "--optimize", "0,1,2", "--invalidation-mode", mode))
    cache = prefix / "lib" / f"python{version}" / "site-packages" / "demo" / "__pycache__"
    tag = f"cpython-{_nodot(version)}"
    assert sorted(p.name for p in cache.glob("mod.*")) == [
        f"mod.{tag}.opt-1.pyc",
        f"mod.{tag}.opt-2.pyc",
        f"mod.{tag}.pyc",
    ]
    magic = magic_number(python)
    for pyc in cache.glob("mod.*"):
        header = pyc.read_bytes()[:8]
        assert header[:4].hex() == magic and int.from_bytes(header[4:8], "little") == PYC_FLAGS[mode], pyc


def _tagged(directory: Path, tag: str) -> Path:
    wheel_file = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    return make_wheel(directory, {**DEMO, "demo-1.0.dist-info/WHEEL": wheel_file}, wheel_name=f"demo-1.0-{tag}.whl")


def test_tags_of_the_target(tmp_path: Path, target: tuple[str, str]) -> None:
    """cp3X and abi3 up to the target's version install; another version, a free-threaded ABI
    (cp3Xt) and abi3 of a later version are refused."""
    version, python = target
    nodot, other = _nodot(version), "315" if version == "3.14" else "314"
    expected = {
        f"cp{nodot}-cp{nodot}-linux_x86_64": 0,
        "cp312-abi3-linux_x86_64": 0,
        f"cp{nodot}-abi3-linux_x86_64": 0,
        "py3-none-any": 0,
        f"cp{other}-cp{other}-linux_x86_64": RefusedWheel.exit_code,
        f"cp{nodot}-cp{nodot}t-linux_x86_64": RefusedWheel.exit_code,
        "cp316-abi3-linux_x86_64": RefusedWheel.exit_code,
    }
    got = {}
    for i, tag in enumerate(expected):
        wheel = _tagged(tmp_path / f"w{i}", tag)
        got[tag] = run_isobuild(
            "install", str(wheel), "--python", python, "--prefix", str(tmp_path / f"p{i}"), "--no-compile"
        ).returncode
    assert got == expected


def test_check_imports_on_the_target(tmp_path: Path, target: tuple[str, str]) -> None:
    version, python = target
    good = make_wheel(tmp_path / "good", DEMO)
    prefix = tmp_path / "prefix"
    _ok(
        run_isobuild(
            "install",
            str(good),
            "--python",
            python,
            "--prefix",
            str(prefix),
            "--scheme",
            "posix_prefix",
            "--check-imports",
        )
    )
    bad = make_wheel(tmp_path / "bad", {"broken/__init__.py": b"import not_a_module_anywhere\n"}, name="broken")
    result = run_isobuild("install", str(bad), "--python", python, "--prefix", str(prefix), "--check-imports")
    assert result.returncode == ImportCheckFailed.exit_code, result.stderr
    assert not (prefix / "lib" / f"python{version}" / "site-packages" / "broken").exists()


C_SETUP = """\
from setuptools import Extension, setup
setup(name="cdemo", version="1.0", ext_modules=[Extension("cdemo", ["cdemo.c"])])
"""
C_SOURCE = """\
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "cdemo", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_cdemo(void) { return PyModule_Create(&def); }
"""


def test_c_extension_into_a_debian_prefix(tmp_path: Path, target: tuple[str, str]) -> None:
    """setuptools compiles against the target's headers (CPATH for Debian's multiarch pyconfig.h);
    the wheel carries the target's tag and imports from deb_system's dist-packages."""
    version, python = target
    src = tmp_path / "cdemo"
    src.mkdir()
    (src / "setup.py").write_text(C_SETUP)
    (src / "cdemo.c").write_text(C_SOURCE)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    env = clean_env(PYTHONPATH=str(build_env(version)), **c_build_env(python, version))
    wheel = Path(_ok(run_isobuild("wheel", str(src), "--python", python, "-o", str(tmp_path / "out"), env=env)))
    assert wheel.name.startswith(f"cdemo-1.0-cp{_nodot(version)}-cp{_nodot(version)}-linux_x86_64")
    assert any(n.endswith(f".cpython-{_nodot(version)}-x86_64-linux-gnu.so") for n in zipfile.ZipFile(wheel).namelist())
    prefix = tmp_path / "usr"
    _ok(install_for(python, wheel, prefix, "--scheme", "deb_system", "--check-imports", env=env))
    assert next((prefix / "lib" / "python3" / "dist-packages").glob("cdemo.cpython-*.so")).is_file()


# ---------------------------------------------------------------- free-threaded targets, on their facts


def _supported(facts: dict[str, object]) -> set[str]:
    return {str(tag) for tag in TargetScheme("posix_prefix", {}, Facts.of(facts), "python").supported_tags()}


def _free_threaded_sysconfig(directory: Path, python: str) -> dict[str, str]:
    """The environment under which the real ``python`` reports a free-threaded build's facts: its own
    sysconfig data with Py_GIL_DISABLED=1, ABI flag ``t`` and SOABI cpython-3Xt, chosen by
    _PYTHON_SYSCONFIGDATA_NAME (how cross-build environments such as crossenv describe a target)."""
    probe = "import sysconfig; print(sysconfig.get_path('stdlib')); print(sysconfig.get_config_var('SOABI'))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    stdlib, soabi = Path(out[0]), out[1]
    name = f"_sysconfigdata_t_linux_{soabi.split('-', 2)[2]}"
    (original,) = [p for p in stdlib.glob("_sysconfigdata_*_linux_*.py")]
    text = (
        original.read_text()
        .replace("'Py_GIL_DISABLED': 0", "'Py_GIL_DISABLED': 1")
        .replace("'ABIFLAGS': ''", "'ABIFLAGS': 't'")
        .replace(soabi, soabi.replace("-", "t-", 1))
    )
    assert "'Py_GIL_DISABLED': 1" in text, original
    directory.mkdir()
    (directory / f"{name}.py").write_text(text)
    return {"_PYTHON_SYSCONFIGDATA_NAME": name, "PYTHONPATH": str(directory)}


def test_a_free_threaded_target_takes_t_wheels_only(tmp_path: Path, target: tuple[str, str]) -> None:
    """Through the real interpreter reporting a free-threaded build's sysconfig: a cp3Xt wheel installs,
    a cp3X and an abi3 one are refused (exit 7); abi3t as packaging rules (PEP 803, 3.15)."""
    version, python = target
    if not is_fetched(python):
        pytest.skip(f"the sysconfig data rewritten here is Debian's; Python {version} here is not")
    env = clean_env(**_free_threaded_sysconfig(tmp_path / "sysconfig", python))
    nodot = _nodot(version)
    knows_abi3t = "abi3t" in {tag.abi for tag in tags.cpython_tags((3, int(nodot[1:])), [f"cp{nodot}t"], ["x"])}
    expected = {
        f"cp{nodot}-cp{nodot}t-linux_x86_64": 0,
        f"cp{nodot}-cp{nodot}-linux_x86_64": RefusedWheel.exit_code,
        f"cp{nodot}-abi3-linux_x86_64": RefusedWheel.exit_code,
        "py3-none-any": 0,
        f"cp{nodot}-abi3t-linux_x86_64": 0 if knows_abi3t else RefusedWheel.exit_code,
    }
    got = {}
    for i, tag in enumerate(expected):
        wheel = _tagged(tmp_path / f"w{i}", tag)
        got[tag] = run_isobuild(
            "install", str(wheel), "--python", python, "--prefix", str(tmp_path / f"p{i}"), "--no-compile", env=env
        ).returncode
    assert got == expected


@pytest.mark.parametrize("version", NEW)
def test_free_threaded_tags_are_packagings(version: str) -> None:
    """cp3Xt wheels only for a free-threaded target, cp3X and abi3 ones only for a default build."""
    nodot, platform = _nodot(version), "linux_x86_64"
    facts = {
        "implementation": "cpython",
        "version": [3, int(version.split(".")[1])],
        "platform": sysconfig.get_platform(),
        "bits": 64,
    }
    default, threaded = _supported({**facts, "abi": f"cp{nodot}"}), _supported({**facts, "abi": f"cp{nodot}t"})
    assert f"cp{nodot}-cp{nodot}-{platform}" in default and f"cp{nodot}-cp{nodot}t-{platform}" not in default
    assert f"cp{nodot}-cp{nodot}t-{platform}" in threaded and f"cp{nodot}-cp{nodot}-{platform}" not in threaded
    assert f"cp{nodot}-abi3-{platform}" in default
    assert not any("-abi3-" in tag for tag in threaded), "abi3 extensions do not load on a free-threaded build"
    assert f"cp{nodot}-none-{platform}" in threaded and "py3-none-any" in threaded
