"""isobuild.pyz: one file, run by any CPython 3.9-3.15 with nothing installed, its dependencies never
the hooks'; and which interpreter isobuild targets by default (the one running it, or its venv's base)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import InterpreterError

from conftest import REPO, clean_env, copy_fixture, read_report, require_interpreter
from helpers import magic_number

FRONTEND_VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]


def _run(python: str, pyz: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, str(pyz), *args], capture_output=True, text=True, env=clean_env(**env), timeout=300)


@pytest.mark.parametrize("version", FRONTEND_VERSIONS)
def test_the_pyz_builds_on_each_python_with_its_dependencies_off_the_hooks_path(
    tmp_path: Path, pyz: Path, version: str
) -> None:
    python = require_interpreter(version)
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    result = _run(python, pyz, "wheel", str(src), "-o", str(tmp_path / "out"), PROBE_REPORT=str(report))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).name == "probe-1.0-py3-none-any.whl"
    data = read_report(report)
    assert data["executable"] == python  # the default target: the interpreter running the pyz
    assert not any(data["importable"].values()), data["importable"]
    assert not any(str(pyz) in entry for entry in data["sys_path"]), data["sys_path"]
    assert str(pyz) not in data["grandchild"]["sys_path"]  # a child of the hooks' interpreter: the same


@pytest.mark.parametrize("version", FRONTEND_VERSIONS)
def test_dotted_and_mixed_case_distribution_names_are_found_on_each_python(
    tmp_path: Path, pyz: Path, version: str
) -> None:
    """The frontend's importlib.metadata looks them up: 3.9's misses a dotted directory name unless asked
    for that spelling (old wheels and Debian's egg-info dirs keep the project's own spelling)."""
    python = require_interpreter(version)
    site = tmp_path / "site"
    for directory, name in (
        ("zope.interface-6.0.dist-info", "zope.interface"),
        ("ruamel.yaml-0.17.egg-info", "ruamel.yaml"),
        ("Foo_Bar-1.0.dist-info", "Foo_Bar"),
    ):
        (site / directory).mkdir(parents=True)
        metadata = "PKG-INFO" if directory.endswith(".egg-info") else "METADATA"
        version_text = directory.split("-")[1].rsplit(".", 1)[0]
        (site / directory / metadata).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version_text}\n")
    src = copy_fixture("requires-dep", tmp_path)
    (src / "pyproject.toml").write_text(
        (src / "pyproject.toml")
        .read_text()
        .replace('"isobuild-fixture-dep>=1.0"', '"zope-interface>=6", "ruamel.yaml>=0.17", "foo.bar"')
    )

    result = _run(python, pyz, "requires", str(src), "--path", str(site))

    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split("\t")[1].split(" ")[0] for line in result.stdout.splitlines()] == ["satisfied"] * 3, (
        result.stdout
    )


def test_the_pyz_installs_with_the_shebang_of_the_python_running_it(tmp_path: Path, pyz: Path) -> None:
    python = require_interpreter("3.13")
    src = copy_fixture("probe", tmp_path)
    prefix = tmp_path / "prefix"
    result = _run(python, pyz, "install", str(src), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr
    script = prefix / "bin" / "probe-cli"
    assert script.read_text().splitlines()[0] == f"#!{python}"
    assert (prefix / "lib" / "python3.13" / "site-packages" / "probe" / "__pycache__").is_dir()


@pytest.mark.parametrize("version", ["2.7", "3.8"])
def test_a_python_too_old_to_run_the_pyz_is_told_so(tmp_path: Path, pyz: Path, version: str) -> None:
    python = require_interpreter(version)
    result = _run(python, pyz, "wheel", str(copy_fixture("probe", tmp_path)))
    assert result.returncode == InterpreterError.exit_code, result.stderr
    assert (
        result.stderr.startswith("ERROR isobuild.pyz needs Python 3.9 or newer to run")
        and "Traceback" not in result.stderr
    )


def test_the_pyz_is_the_same_file_from_the_same_pins(tmp_path: Path, pyz: Path) -> None:
    """Fixed timestamps, sorted entries: a rebuild from one checkout gives the same bytes."""
    again = tmp_path / "again.pyz"
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_pyz.py"), "-o", str(again)],
        check=True,
        capture_output=True,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
    )
    if os.environ.get("ISOBUILD_PYZ"):
        pytest.skip("ISOBUILD_PYZ may come from another checkout")
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(pyz.read_bytes()).digest()
    names = zipfile.ZipFile(again).namelist()
    assert "__main__.py" in names and "_isobuild_inside/server.py" in names and "isobuild/cli/__init__.py" in names
    assert "isobuild/_inside/server.py" not in names and not [n for n in names if "__pycache__" in n]
    assert any(n.startswith("packaging-") and "LICENSE" in n for n in names)  # the vendored licences


@pytest.mark.parametrize("version", ["3.9", "3.10"])
def test_a_pyz_built_by_an_older_python_is_the_same_file_again(tmp_path: Path, version: str) -> None:
    """Before 3.11, marshal writes a frozenset constant in its strings' hash order, which differs
    from process to process unless the hash seed is fixed: two builds, two random seeds."""
    python = require_interpreter(version)
    builds = [tmp_path / "one.pyz", tmp_path / "two.pyz"]
    for output, seed in zip(builds, ("1", "2")):  # the builds' own seed: make_pyz must fix the compiler's
        subprocess.run(
            [python, str(REPO / "tools" / "make_pyz.py"), "-o", str(output)],
            check=True,
            capture_output=True,
            env=clean_env(PIP_ROOT_USER_ACTION="ignore", PYTHONHASHSEED=seed),
        )
    one, two = (zipfile.ZipFile(path) for path in builds)
    differ = [name for name in one.namelist() if one.read(name) != two.read(name)]
    assert not differ and builds[0].read_bytes() == builds[1].read_bytes(), differ
    assert "isobuild/__init__.pyc" in one.namelist()


def test_the_pyz_imports_bytecode_made_for_the_python_that_built_it(pyz: Path) -> None:
    """zipimport writes no bytecode: without the .pyc files make_pyz puts beside the sources, every run
    of the pyz compiles isobuild and its dependencies anew (about 60 ms a build)."""
    import importlib.util

    with zipfile.ZipFile(pyz) as zf:
        names = set(zf.namelist())
        assert "isobuild/__init__.pyc" in names and "_isobuild_inside/hooks.pyc" in names
        magic = zf.read("isobuild/__init__.pyc")[:4]
    if magic != importlib.util.MAGIC_NUMBER:
        pytest.skip(f"{pyz} was built by another Python version than {sys.version.split()[0]}")
    modules = ["isobuild.cli", "isobuild.runner", "packaging.requirements", "pyproject_hooks", "installer"]
    code = (
        f"import sys; sys.path.insert(0, sys.argv[1]); import {', '.join(modules)}; "
        + "print(*[sys.modules[m].__file__ for m in sys.argv[2:]])"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(pyz), *modules],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    files = result.stdout.split()
    assert len(files) == len(modules) and all(f.endswith(".pyc") for f in files), files


def test_a_failed_pyz_build_leaves_the_previous_one(tmp_path: Path) -> None:
    output = tmp_path / "isobuild.pyz"
    output.write_bytes(b"the previous build")
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_pyz.py"), "-o", str(output), "--find-links", str(empty)],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert result.returncode != 0 and "make_pyz: pip could not vendor" in result.stderr
    assert output.read_bytes() == b"the previous build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["isobuild.pyz", "no-wheels"]


@pytest.mark.parametrize("copies", [False, True], ids=["symlinks", "copies"])
def test_from_a_venv_the_target_is_its_base_and_isobuild_says_so(tmp_path: Path, pyz: Path, copies: bool) -> None:
    """isobuild in a venv of its own (pipx, a venv install) must not write that venv into shebangs."""
    base = require_interpreter("3.12")
    venv = tmp_path / "tools-venv"
    subprocess.run([base, "-m", "venv", "--without-pip", *(["--copies"] if copies else []), str(venv)], check=True)
    src = copy_fixture("probe", tmp_path)
    result = _run(str(venv / "bin" / "python"), pyz, "install", str(src), "--prefix", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    shebang = (tmp_path / "p" / "bin" / "probe-cli").read_text().splitlines()[0]
    assert os.path.realpath(shebang[2:]) == os.path.realpath(base) and str(venv) not in shebang
    assert (
        f"isobuild runs from the venv {venv}: the target is its base interpreter {shebang[2:]}; --python chooses"
        in result.stderr
    )
    chosen = _run(
        str(venv / "bin" / "python"),
        pyz,
        "install",
        str(src),
        "--prefix",
        str(tmp_path / "q"),
        "--python",
        str(venv / "bin" / "python"),
    )
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "q" / "bin" / "probe-cli").read_text().startswith(f"#!{venv}/bin/python\n")
    assert "isobuild runs from the venv" not in chosen.stderr


@pytest.mark.parametrize("version", ["3.15"])
def test_a_pyz_built_by_the_python_that_runs_it_imports_its_bytecode(tmp_path: Path, version: str) -> None:
    """Built by Debian's python3.15 (pip borrowed: it has none), the pyz carries 3.15's bytecode and
    3.15 imports it; the frontend of a wheel build then is 3.15 itself. The pyz of another Python
    (the session's) falls back to source on 3.15: the other tests above."""
    python = require_interpreter(version)
    output = tmp_path / "isobuild.pyz"
    subprocess.run(
        [python, str(REPO / "tools" / "make_pyz.py"), "-o", str(output), "--pip-python", sys.executable],
        check=True,
        capture_output=True,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
    )
    magic = magic_number(python)
    assert zipfile.ZipFile(output).read("isobuild/__init__.pyc")[:4].hex() == magic
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import isobuild.cli, packaging.tags; "
        "print(isobuild.cli.__file__, packaging.tags.__file__)"
    )
    files = subprocess.run(
        [python, "-S", "-c", code, str(output)], capture_output=True, text=True, env=clean_env(), check=True
    ).stdout.split()
    assert all(f.endswith(".pyc") for f in files), files
    src = copy_fixture("probe", tmp_path)
    result = _run(python, output, "install", str(src), "--prefix", str(tmp_path / "prefix"), "--scheme", "deb_system")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "prefix" / "bin" / "probe-cli").read_text().splitlines()[0] == f"#!{python}"
    assert next(
        (tmp_path / "prefix" / "lib" / "python3" / "dist-packages" / "probe" / "__pycache__").glob(
            f"__init__.cpython-{version.replace('.', '')}.pyc"
        )
    )
