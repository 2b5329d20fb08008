"""isobuild inside real Spack: the PythonPipBuilder patch against Spack's stock pip builder.

Opt-in, because it needs checkouts of Spack and spack-packages (compatible versions: Spack v1.x and
the spack-packages release made with it) and the index for sources: set ISOBUILD_SPACK and
ISOBUILD_SPACK_PACKAGES to the two git checkouts. Both are cloned into tmp, Spack is configured
with an external Python and no mirrors or bootstrapping (clingo comes from a venv that runs Spack),
and the same packages are installed twice: with the stock builder (pip) and, after applying the
``diff spack-builder`` block of docs/pipelines.md, with ISOBUILD_PYZ set. The installed prefixes must be the
same, apart from what each installer is expected to write differently.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import marshal
import os
import re
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import CACHE, REPO, base_python, clean_env, find_interpreter
from helpers import python_says

SPACK = os.environ.get("ISOBUILD_SPACK", "")
SPACK_PACKAGES = os.environ.get("ISOBUILD_SPACK_PACKAGES", "")
# The PythonPipBuilder change is docs/pipelines.md's, applied as written.
PATCH = re.search(r"^```diff spack-builder\n(.*?)^```", (REPO / "docs" / "pipelines.md").read_text(), re.S | re.M)
PACKAGES = ("py-tomli", "py-six", "py-pycodestyle")  # flit_core, setuptools (legacy), a console script
COMPARED = (*PACKAGES, "py-flit-core")  # py-flit-core: a build dependency that the builder builds too
# What pip and isobuild are expected to write differently: who installed, pip's record of the source
# dir, and RECORD (compared by its paths below).
EXPECTED_DIFFERENT = {"INSTALLER", "direct_url.json", "RECORD"}
USER_CONF = "[install]\nuser = true\n"
# Two recipes of a throwaway repo, for what the compared packages do not exercise: a config setting
# that shows in the wheel's name, and an upstream pin (flit_core<3.3) that the recipe relaxes.
DEMO_PACKAGES = {
    "py-six-tagged": """
from spack_repo.builtin.packages.py_six.package import PySix
from spack.package import *

class PySixTagged(PySix):
    pypi = "six/six-1.17.0.tar.gz"

    def config_settings(self, spec, prefix):
        return {"--build-option": "--build-number=7"}
""",
    "py-tomli-pinned": """
import os
from spack_repo.builtin.packages.py_tomli.package import PyTomli
from spack.package import *

class PyTomliPinned(PyTomli):
    pypi = "tomli/tomli-2.0.1.tar.gz"
    isobuild_relax = [name for name in os.environ.get("DEMO_RELAX", "").split(",") if name]

    def patch(self):
        filter_file("flit_core>=3.2.0,<4", "flit_core>=3.2.0,<3.3", "pyproject.toml")
""",
}
PIP_REFUSES = "Can not combine '--user' and '--prefix'"


def _why_skip() -> str | None:
    for var, value in (("ISOBUILD_SPACK", SPACK), ("ISOBUILD_SPACK_PACKAGES", SPACK_PACKAGES)):
        if not value:
            return f"opt-in: set {var} (and its pair) to a git checkout of spack / spack-packages"
        if not (Path(value) / ".git").exists():
            return f"{var}={value} is not a git checkout"
    return None


pytestmark = pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))


@dataclass
class Spack:
    """A throwaway Spack: its root, the environment it runs in, and where its runs keep their files."""

    root: Path
    env: dict[str, str]
    work: Path
    pyz: Path
    wall: dict[str, float] = field(default_factory=dict)

    def run(self, label: str, *args: str, stage: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        """``spack`` with this builder's install tree and a stage of its own: the two share nothing."""
        scope = [
            "-c",
            f"config:install_tree:root:{self.tree(label)}",
            "-c",
            f"config:build_stage:{self.stage(stage or label)}",
        ]
        env = {**self.env, **({"ISOBUILD_PYZ": str(self.pyz)} if label == "isobuild" else {}), **extra}
        return subprocess.run(
            [str(self.root / "bin" / "spack"), *scope, *args], env=env, text=True, capture_output=True, timeout=1800
        )

    def tree(self, label: str) -> Path:
        return self.work / ("opt-" + label)

    def stage(self, name: str) -> Path:
        return self.work / ("stage-" + name)


def spack_python() -> str:
    """A venv with clingo, to run Spack: its own bootstrap fetches from hosts this suite may not reach."""
    venv = CACHE / "spack-python"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([base_python(), "-m", "venv", "--clear", str(venv)], check=True)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "clingo"],
            capture_output=True,
            text=True,
            env=clean_env(PIP_ROOT_USER_ACTION="ignore"),
        )
        if result.returncode:
            pytest.skip(f"cannot pip install clingo for Spack's python: {result.stderr[-500:]}")
        (venv / ".complete").touch()
    return str(python)


def external_python() -> tuple[str, str]:
    """(version, prefix) of the real Python that Spack uses as an external: ISOBUILD_SPACK_PYTHON, or the
    tests' own version."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    python = os.environ.get("ISOBUILD_SPACK_PYTHON") or find_interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} for Spack's external python (set ISOBUILD_SPACK_PYTHON)")
    out = python_says(python, "import sys, platform; print(platform.python_version(), sys.prefix)").split()
    if out[0].rsplit(".", 1)[0] != f"{sys.version_info[0]}.{sys.version_info[1]}":
        pytest.skip(
            f"Spack's Python {out[0]} is not the tests' {sys.version.split()[0]}: the bytecode of the "
            "two installs is compared with this interpreter's marshal"
        )
    return out[0], out[1]


def write_config(root: Path, packages_repo: Path, work: Path) -> None:
    """Site scope of the cloned Spack: the cloned repo, no mirrors, no bootstrap, external python."""
    version, prefix = external_python()
    site = root / "etc" / "spack"
    (site / "repos.yaml").write_text(f"repos::\n  builtin: {packages_repo / 'repos' / 'spack_repo' / 'builtin'}\n")
    (site / "mirrors.yaml").write_text("mirrors:: {}\n")
    (site / "bootstrap.yaml").write_text("bootstrap:\n  enable: false\n")
    (site / "packages.yaml").write_text(
        "packages:\n  python:\n    buildable: false\n    externals:\n"
        f"    - spec: python@{version}+ctypes\n      prefix: {prefix}\n"
    )
    (site / "config.yaml").write_text(
        f"config:\n  source_cache: {CACHE / 'spack-sources'}\n  misc_cache: {work / 'misc-cache'}\n  build_jobs: 2\n"
    )


def clone(source: str, dest: Path) -> Path:
    """A clone of the checkout's HEAD: the checkout's own uncommitted changes and installs stay out."""
    subprocess.run(["git", "clone", "-q", "--shared", source, str(dest)], check=True)
    return dest


def install(spack: Spack, label: str) -> None:
    """Install PACKAGES with one builder; the wall time includes concretization and the build deps."""
    start = time.monotonic()
    result = spack.run(label, "install", *PACKAGES)
    spack.wall[label] = time.monotonic() - start
    assert result.returncode == 0, f"spack install ({label}) failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def spack(tmp_path_factory: pytest.TempPathFactory, pyz: Path) -> Spack:
    """Both installs, once: stock builder first, then the patched one with ISOBUILD_PYZ."""
    work = tmp_path_factory.mktemp("spack")
    root, repo = clone(SPACK, work / "spack"), clone(SPACK_PACKAGES, work / "spack-packages")
    write_config(root, repo, work)
    env = clean_env(
        SPACK_PYTHON=spack_python(),
        SPACK_USER_CONFIG_PATH=str(work / "user-config"),
        SPACK_USER_CACHE_PATH=str(work / "user-cache"),
        HOME=str(work / "home"),
    )
    for name in ("ISOBUILD_PYZ", "PIP_CONFIG_FILE", "PIP_USER", "XDG_CONFIG_HOME"):
        env.pop(name, None)  # the stock run is pip as Spack runs it, with no user pip.conf
    spack = Spack(root, env, work, pyz)
    warm = spack.run("pip", "spec", *PACKAGES)  # the first concretization fills caches: not pip's time
    assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-3000:]
    install(spack, "pip")
    assert PATCH is not None, "no ```diff spack-builder block in docs/pipelines.md"
    subprocess.run(["git", "-C", str(repo), "apply", "-"], input=PATCH.group(1), text=True, check=True)
    install(spack, "isobuild")
    return spack


def prefixes(tree: Path) -> dict[str, Path]:
    """name -> prefix of everything Spack installed in a tree (its .spack/install_times.json names it)."""
    found = {}
    for times in tree.glob("*/*/.spack/install_times.json"):
        found[json.loads(times.read_text())["name"]] = times.parent.parent
    return found


def install_seconds(prefix: Path) -> float:
    """The install phase as Spack timed it: the builder's build and install, nothing of Spack's own."""
    phases = json.loads((prefix / ".spack" / "install_times.json").read_text())["phases"]
    return float(next(p["seconds"] for p in phases if p["name"] == "install"))


def build_log(prefix: Path) -> str:
    with gzip.open(prefix / ".spack" / "spack-build-out.txt.gz", "rt", errors="replace") as f:
        return f.read()


def _code(code: types.CodeType, tree: str) -> types.CodeType:
    """A code object with the tree's path taken out of co_filename, its nested code objects too."""
    consts = tuple(_code(c, tree) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=code.co_filename.replace(tree, "<TREE>"), co_consts=consts)


def _digest(path: Path, tree: str) -> str:
    """What must match in a file: bytecode minus its header (source mtime) with the tree's path out of
    co_filename (marshal records lengths, so no bytes replace); a console script's shebang and AST
    (pip's and isobuild's launchers quote differently); anything else its bytes, the tree's path out."""
    data = path.read_bytes()
    if path.suffix == ".pyc" and data[:4] == importlib.util.MAGIC_NUMBER:  # external_python() is this version
        data = data[:8] + marshal.dumps(_code(marshal.loads(data[16:]), tree))  # magic and flags kept
    elif path.parent.name == "bin" and data.startswith(b"#!"):
        shebang, _, body = data.decode().partition("\n")
        data = (shebang.replace(tree, "<TREE>") + ast.dump(ast.parse(body))).encode()
    else:
        data = data.replace(tree.encode(), b"<TREE>")
    return hashlib.sha256(data).hexdigest()[:16]


def snapshot(prefix: Path, tree: Path) -> dict[str, str]:
    """Relative path -> digest and x bit; .spack/ and the files expected to differ left out."""
    result: dict[str, str] = {}
    for path in sorted(prefix.rglob("*")):
        rel = path.relative_to(prefix).as_posix()
        if rel.startswith(".spack") or path.is_dir() or path.name in EXPECTED_DIFFERENT:
            continue
        result[rel] = f"{'x' if os.access(path, os.X_OK) else '-'} {_digest(path, str(tree))}"
    return result


def record_paths(prefix: Path) -> set[str]:
    """Paths in the dist-info's RECORD, but for those of files expected to differ."""
    (record,) = prefix.glob("lib/python*/site-packages/*.dist-info/RECORD")
    paths = {line.split(",")[0] for line in record.read_text().splitlines() if line}
    return {p for p in paths if p.rsplit("/", 1)[-1] not in EXPECTED_DIFFERENT}


def shebangs(prefix: Path, tree: Path) -> list[str]:
    return (
        [
            f"bin/{p.name}: {p.read_text().splitlines()[0].replace(str(tree), '<TREE>')}"
            for p in sorted((prefix / "bin").glob("*"))
        ]
        if (prefix / "bin").is_dir()
        else []
    )


def launchers_differ(pip: Path, iso: Path, pip_tree: Path, iso_tree: Path) -> list[str]:
    """Console scripts whose text differs beyond the tree's path (they still must have the same AST)."""

    def text(path: Path, tree: Path) -> bytes:
        return path.read_bytes().replace(bytes(tree), b"<TREE>")

    return [
        p.name
        for p in sorted((pip / "bin").glob("*"))
        if (iso / "bin" / p.name).exists() and text(p, pip_tree) != text(iso / "bin" / p.name, iso_tree)
    ]


def compare(spack: Spack, name: str) -> tuple[list[str], str]:
    """Differences between the two installs of one package, and its line for the summary."""
    pip_tree, iso_tree = spack.tree("pip"), spack.tree("isobuild")
    pip, iso = prefixes(pip_tree)[name], prefixes(iso_tree)[name]
    a, b = snapshot(pip, pip_tree), snapshot(iso, iso_tree)
    problems = [
        f"{name}: {rel}: pip {a.get(rel, 'absent')}, isobuild {b.get(rel, 'absent')}"
        for rel in sorted(set(a) | set(b))
        if a.get(rel) != b.get(rel)
    ]
    if record_paths(pip) != record_paths(iso):
        problems.append(f"{name}: RECORD paths differ: {sorted(record_paths(pip) ^ record_paths(iso))}")
    if shebangs(pip, pip_tree) != shebangs(iso, iso_tree):
        problems.append(f"{name}: shebangs {shebangs(pip, pip_tree)} != {shebangs(iso, iso_tree)}")
    pip_only = sorted(p.name for p in pip.rglob("*.dist-info/*") if not (iso / p.relative_to(pip)).exists())
    texts = launchers_differ(pip, iso, pip_tree, iso_tree)
    line = (
        f"{name:15} {len(a):2} files {'same' if not problems else 'DIFFERENT'}; install phase "
        f"pip {install_seconds(pip):.2f}s, isobuild {install_seconds(iso):.2f}s; "
        f"pip only: {','.join(pip_only) or '-'}"
        + "".join(f"; {s}" for s in shebangs(iso, iso_tree))
        + (f" (launcher text differs, same AST: {','.join(texts)})" if texts else "")
    )
    return problems, line


def test_isobuild_installs_what_pip_installs(spack: Spack) -> None:
    """Same files, same module contents and bytecode, same shebangs (each tree's own venv python)."""
    problems, lines = [], []
    for name in COMPARED:
        found, line = compare(spack, name)
        problems += found
        lines.append(line)
    print("\n== spack install, stock pip builder vs isobuild builder (same specs, separate trees)")
    print("\n".join(lines))
    print(
        f"spack install {' '.join(PACKAGES)} wall time (concretize + build deps): "
        + ", ".join(f"{label} {seconds:.1f}s" for label, seconds in spack.wall.items())
    )
    assert not problems, "\n".join(problems)


def test_each_tree_was_built_by_its_builder(spack: Spack) -> None:
    """A comparison of pip with pip proves nothing: the build logs name the command that ran."""
    for name in COMPARED:
        pip_log = build_log(prefixes(spack.tree("pip"))[name])
        iso_log = build_log(prefixes(spack.tree("isobuild"))[name])
        assert "'-m' 'pip'" in pip_log and "isobuild.pyz" not in pip_log, pip_log[:2000]
        assert f"{spack.pyz}' 'install'" in iso_log and "'-m' 'pip'" not in iso_log, iso_log[:2000]
        assert "user and system site excluded" in iso_log, iso_log[:2000]


@pytest.mark.parametrize("where", ["PIP_CONFIG_FILE", "HOME"])
def test_a_user_pip_conf_breaks_pip_not_isobuild(spack: Spack, where: str) -> None:
    """``user = true`` in a user's pip.conf reaches Spack's pip, which then refuses --prefix; isobuild
    reads no pip configuration. Reinstalled with --overwrite: Spack restores the prefix on failure."""
    conf = spack.work / f"pip-conf-{where}" / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(USER_CONF)
    extra = {"PIP_CONFIG_FILE": str(conf)} if where == "PIP_CONFIG_FILE" else {"HOME": str(conf.parents[2])}
    outcome = {}
    for label in ("pip", "isobuild"):
        result = spack.run(label, "install", "--overwrite", "-y", "py-tomli", stage=f"{label}-{where}", **extra)
        logs = list(spack.stage(f"{label}-{where}").glob("**/spack-stage-py-tomli-*/spack-build-out.txt"))
        refused = any(PIP_REFUSES in log.read_text(errors="replace") for log in logs)
        outcome[label] = (result.returncode, refused)
    print(
        f"\n== user = true via {where}: pip builder exit {outcome['pip'][0]} (pip refused --prefix: "
        f"{outcome['pip'][1]}), isobuild builder exit {outcome['isobuild'][0]}"
    )
    assert outcome["pip"] == (1, True) and outcome["isobuild"][0] == 0, outcome


def demo_scope(work: Path) -> Path:
    """A config scope that adds the throwaway repo with DEMO_PACKAGES."""
    repo = work / "demo-repo" / "spack_repo" / "demo"
    for name, source in DEMO_PACKAGES.items():
        (repo / "packages" / name.replace("-", "_")).mkdir(parents=True, exist_ok=True)
        (repo / "packages" / name.replace("-", "_") / "package.py").write_text(source.lstrip())
    (repo / "repo.yaml").write_text("repo:\n  namespace: demo\n  api: v2.2\n")
    scope = work / "demo-scope"
    scope.mkdir(exist_ok=True)
    (scope / "repos.yaml").write_text(f"repos:\n  demo: {repo}\n")
    return scope


def test_config_settings_reach_the_backend(spack: Spack) -> None:
    """config_settings() of a recipe reaches setuptools through either builder: wheel build number 7."""
    scope = demo_scope(spack.work)
    for label in ("pip", "isobuild"):
        result = spack.run(label, "-C", str(scope), "install", "py-six-tagged")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        prefix = prefixes(spack.tree(label))["py-six-tagged"]
        (wheel,) = prefix.glob("lib/python*/site-packages/*.dist-info/WHEEL")
        assert "Build: 7" in wheel.read_text(), (label, wheel.read_text())
        assert (f"{spack.pyz}' 'install'" in build_log(prefix)) == (label == "isobuild"), label  # not pip twice
    print("\n== config_settings {'--build-option': '--build-number=7'}: Build: 7 with pip and with isobuild")


def test_a_pin_the_recipe_relaxes_needs_isobuild_relax(spack: Spack) -> None:
    """pip (no build isolation) checks no build requirement; isobuild refuses flit_core 3.12 against
    upstream's <3.3 until the recipe's isobuild_relax names it, and then only the version is let go."""
    scope = demo_scope(spack.work)
    strict = spack.run("isobuild", "-C", str(scope), "install", "py-tomli-pinned", stage="isobuild-strict")
    logs = list(spack.stage("isobuild-strict").glob("**/spack-stage-py-tomli-pinned-*/spack-build-out.txt"))
    refusal = next((log.read_text() for log in logs), "")
    assert strict.returncode != 0 and "flit_core>=3.2.0,<3.3: missing (found flit_core 3.12" in refusal, refusal
    assert "exited with status 3" in strict.stdout + strict.stderr  # isobuild's missing-dependencies exit
    relaxed = spack.run("isobuild", "-C", str(scope), "install", "py-tomli-pinned", DEMO_RELAX="flit_core")
    assert relaxed.returncode == 0, relaxed.stdout[-3000:] + relaxed.stderr[-3000:]
    assert "relaxed: flit_core>=3.2.0,<3.3" in build_log(prefixes(spack.tree("isobuild"))["py-tomli-pinned"])
    stock = spack.run("pip", "-C", str(scope), "install", "py-tomli-pinned")
    assert stock.returncode == 0, stock.stdout[-3000:] + stock.stderr[-3000:]
    print(
        "\n== upstream pin flit_core<3.3, Spack's flit-core 3.12: isobuild exit 3 (missing), "
        "with isobuild_relax = ['flit_core'] installed; pip installed without checking"
    )
