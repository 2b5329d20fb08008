"""The pipeline recipes in docs/pipelines.md, run exactly as written on real projects; then what each
recipe is for (the scripts, their shebangs, the bytecode) is checked here, not in the recipe."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_TARGET, REPO, build_env, clean_env, copy_fixture
from helpers import python_says

BLOCK = re.compile(r"^```sh recipe-test\n(.*?)^```", re.S | re.M)
SECTIONS = (REPO / "docs" / "pipelines.md").read_text().split("\n## ")[1:]
RECIPES = {s.split("\n", 1)[0]: m.group(1) for s in SECTIONS for m in [BLOCK.search(s)] if m}

# fixture: (its top-level package, its console script); the probe's backend is in-tree, the others are
# built by setuptools and flit_core from BUILD_ENV.
PROJECTS = {
    "probe": ("probe", "probe-cli"),
    "setuptools-pyproject": ("sample_setuptools", "sample-setuptools"),
    "flit": ("sample_flit", "sample-flit"),
}

# What each recipe must have installed ($PKG the package, $SCRIPT its console script): bash, after the recipe.
CHECKS = {
    "Spack": 'test -x "$DESTDIR/spack-prefix/bin/$SCRIPT"',
    "Nix and Guix": 'head -1 "$DESTDIR/nix/store/xyz-pkg-1.0/bin/$SCRIPT" | grep -qx "#!$PYTHON"',
    "Fedora": 'head -1 "$DESTDIR/buildroot/usr/bin/$SCRIPT" | grep -qx "#!$PYTHON -s"\n'
    'test -f "$DESTDIR"/buildroot/usr/lib/python*/site-packages/$PKG/__init__.py',
    "Debian": 'cd "$DESTDIR/debian/python3-pkg"\ntest -f usr/lib/python3.*/site-packages/$PKG/__init__.py\n'
    "head -1 usr/bin/$SCRIPT | grep -qx '#!/usr/bin/python3'",
    "conda-build": 'ls "$DESTDIR"/out/*.whl',
    "Gentoo (gpep517, one to one)": (
        'ls "$DESTDIR"/image/usr/lib/python*/site-packages/$PKG/__pycache__/ | grep -c pyc | grep -qx 3'
    ),
}


def test_recipes_are_found_and_each_has_its_checks() -> None:
    assert set(RECIPES) == set(CHECKS)


def test_no_recipe_names_a_fixture() -> None:
    """Copied onto a real project, a recipe must not look for the test projects' files."""
    for title, recipe in RECIPES.items():
        for package, script in PROJECTS.values():
            assert package not in recipe and script not in recipe, (title, package)


def _bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, timeout=600)


@pytest.mark.parametrize("project", sorted(PROJECTS))
@pytest.mark.parametrize("title", sorted(RECIPES))
def test_recipe(tmp_path: Path, title: str, project: str, pyz: Path) -> None:
    """PYTHON is the real interpreter (the tests' venv's base), ISOBUILD_PYZ the pyz of this checkout."""
    for needed in ("/usr/bin/python3",):
        if needed in RECIPES[title] and not Path(needed).exists():
            pytest.skip(f"the recipe runs {needed}, which this machine lacks")
    src = copy_fixture(project, tmp_path)
    version = python_says(DEFAULT_TARGET, "import sys; print('%d.%d' % sys.version_info[:2])").strip()
    destdir = tmp_path / "destdir"
    destdir.mkdir()
    package, script = PROJECTS[project]
    env = clean_env(
        SRC=str(src),
        BUILD_ENV=str(build_env(version)),
        PYTHON=DEFAULT_TARGET,
        ISOBUILD_PYZ=str(pyz),
        DESTDIR=str(destdir),
        HOME=str(tmp_path / "home"),
        PKG=package,
        SCRIPT=script,
    )
    result = _bash(RECIPES[title], env)
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
    checked = _bash(CHECKS[title], env)
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode(errors="replace")
