"""The pipeline recipes in docs/pipelines.md, run exactly as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import DEFAULT_TARGET, REPO, clean_env, copy_fixture

BLOCK = re.compile(r"^```sh recipe-test\n(.*?)^```", re.S | re.M)
SECTIONS = (REPO / "docs" / "pipelines.md").read_text().split("\n## ")[1:]
RECIPES = {s.split("\n", 1)[0]: m.group(1) for s in SECTIONS for m in [BLOCK.search(s)] if m}


def test_recipes_are_found() -> None:
    assert {"Spack", "Nix and Guix", "Fedora", "Debian", "conda-build", "Gentoo (gpep517, one to one)"} <= set(RECIPES)


@pytest.mark.parametrize("title", sorted(RECIPES))
def test_recipe(tmp_path: Path, title: str, pyz: Path) -> None:
    """PYTHON is the real interpreter (the tests' venv's base), ISOBUILD_PYZ the pyz of this checkout."""
    for needed in ("/usr/bin/python3",):
        if needed in RECIPES[title] and not Path(needed).exists():
            pytest.skip(f"the recipe runs {needed}, which this machine lacks")
    src = copy_fixture("probe", tmp_path)
    build_env = tmp_path / "build-env"
    build_env.mkdir()
    destdir = tmp_path / "destdir"
    destdir.mkdir()
    env = clean_env(SRC=str(src), BUILD_ENV=str(build_env), PYTHON=DEFAULT_TARGET, ISOBUILD_PYZ=str(pyz),
                    DESTDIR=str(destdir), HOME=str(tmp_path / "home"))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", RECIPES[title]], env=env, capture_output=True)
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")
