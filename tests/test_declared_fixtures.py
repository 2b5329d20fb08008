"""Each declared-* fixture (and a clean project), built with real backends in an environment holding more
than it declares: the record, --only-declared's exit code, hint and wheel, and that wheel compared member by
member with one built in the same dirs once every undeclared distribution is uninstalled (issue 23); and
what the hint is built from: what the hider refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from isobuild.compare import compare, render
from isobuild.errors import BackendFailed, UndeclaredMatters
from test_declared import VERSION, extra_dists, pip_target, setuptools_scm, write_dist

from conftest import FIXTURES, build_env, clean_env, require_interpreter, run_isobuild

EP = "entry point setuptools.finalize_distribution_options"
SETUPTOOLS_PLUGINS = {"setuptools-scm": EP, "isobuild-setuptools-plugin": EP, "vcs-versioning": "import"}
# (fixture, the undeclared distributions of the environment (beyond the build env's own) that a normal build
# records, with how; the distributions --only-declared's hint names: none when it builds)
CASES = [
    ("flit", {}, ()),
    ("declared-setuptools-scm", SETUPTOOLS_PLUGINS, ()),
    ("declared-plugins", SETUPTOOLS_PLUGINS, ()),
    ("declared-optional-import", {"isobuild-optional": "import"}, ()),
    ("declared-namespace", {}, ()),
    ("declared-egg-info", {}, ()),
    ("declared-hatch-hook", {"isobuild-undeclared": "import"}, ("isobuild-undeclared",)),
    ("declared-metadata", {}, ("isobuild-undeclared",)),
    ("declared-codegen", {"isobuild-codegen": "child process"}, ("isobuild-codegen",)),
    ("declared-numpy-headers", {**SETUPTOOLS_PLUGINS, "isobuild-numpylike": "import"}, ("isobuild-numpylike",)),
]


def _environment(tmp_path: Path) -> tuple[Path, list[Path]]:
    """The build env and the --path dirs, copied into ``tmp_path`` (distributions are removed from them
    later): every distribution the fixtures use, declared or not, and plugins none of them asks for."""
    env = tmp_path / "env"
    shutil.copytree(build_env(VERSION), env)
    extra = extra_dists(tmp_path)
    write_dist(extra, "isobuild-optional", "1.0", {"isobuild_optional.py": ""})
    write_dist(extra, "isobuild-ns-kept", "1.0", {"isobuild_nsp/kept.py": "VALUE = 'kept'\n"})
    write_dist(extra, "isobuild-ns-gone", "1.0", {"isobuild_nsp/gone.py": "VALUE = 'gone'\n"})
    write_dist(extra, "isobuild-debian", "1.0", {"isobuild_debian/__init__.py": ""}, record=False)
    plugin = "def finalize(dist):\n    pass  # configured by nothing here, as pbr without pbr=True\n"
    write_dist(extra, "isobuild-setuptools-plugin", "1.0", {"isobuild_setuptools_plugin.py": plugin})
    (extra / "isobuild_setuptools_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[setuptools.finalize_distribution_options]\nisobuild = isobuild_setuptools_plugin:finalize\n"
    )
    numpylike = pip_target(
        "declared-numpylike",
        "--no-build-isolation",
        str(FIXTURES / "declared-numpy-headers" / "numpylike"),
        PYTHONPATH=str(build_env(VERSION)),
    )
    paths = [extra]
    for source in (setuptools_scm(), numpylike):
        paths.append(tmp_path / source.name)
        shutil.copytree(source, paths[-1])
    return env, paths


def _remove_all_but(directory: Path, kept: set[tuple[str, str]]) -> None:
    """Uninstall from ``directory`` every distribution whose (location, canonical name) is not ``kept``: the
    files its RECORD lists (a Debian-style .egg-info: its top-level names), then its metadata."""
    for info in [*directory.glob("*.dist-info"), *directory.glob("*.egg-info")]:
        headers = (info / ("METADATA" if info.suffix == ".dist-info" else "PKG-INFO")).read_text()
        name = re.sub(r"[-_.]+", "-", re.search(r"^Name: (.*)$", headers, re.M).group(1).strip()).lower()  # type: ignore[union-attr]
        if (str(directory), name) in kept:
            continue
        if (info / "RECORD").exists():
            files = [directory / line.split(",")[0] for line in (info / "RECORD").read_text().splitlines() if line]
        else:
            tops = (info / "top_level.txt").read_text().split()
            files = [directory / top for top in tops] + [directory / f"{top}.py" for top in tops]
        for path in files:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists() and directory in path.resolve().parents:
                path.unlink()
                pycache = path.parent / "__pycache__"
                for pyc in pycache.glob(f"{path.stem}.*.pyc"):  # as pip: the module's bytecode goes with it
                    pyc.unlink()
                if pycache.is_dir() and not any(pycache.iterdir()):
                    pycache.rmdir()
                while path.parent != directory and not any(path.parent.iterdir()):  # as pip: an empty dir
                    path = path.parent  # would still import, as a namespace package
                    path.rmdir()
        shutil.rmtree(info, ignore_errors=True)


def _wheel(
    src: Path, fixture: str, env: Path, paths: list[Path], out: Path, *args: str
) -> subprocess.CompletedProcess[bytes]:
    """A fresh copy of ``fixture`` at ``src`` (always the same path: a C extension records it), built."""
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(FIXTURES / fixture, src)
    return run_isobuild(
        "wheel",
        str(src),
        "--python",
        require_interpreter(VERSION),
        "-o",
        str(out),
        "--json",
        *(arg for path in paths for arg in ("--path", str(path))),
        *args,
        env=clean_env(PYTHONPATH=str(env), SOURCE_DATE_EPOCH="1700000000"),
    )


@pytest.mark.parametrize(("fixture", "undeclared", "hint"), CASES, ids=[case[0] for case in CASES])
def test_each_fixture_against_the_declared_closure_alone(
    tmp_path: Path, fixture: str, undeclared: dict[str, str], hint: tuple[str, ...]
) -> None:
    """The record of a normal build; --only-declared's exit code, hint and wheel; --check-declared's verdicts;
    and the wheel (or the failure) of a normal build in the same dirs once every undeclared distribution is
    uninstalled."""
    env, paths = _environment(tmp_path)
    src = tmp_path / "src"
    usual = _wheel(src, fixture, env, paths, tmp_path / "usual")
    assert usual.returncode == 0, usual.stderr.decode(errors="replace")
    deps = json.loads(usual.stdout)["dependencies"]
    assert {item["name"]: item["how"] for item in deps["undeclared"] if item["location"] != str(env)} == undeclared

    only = _wheel(src, fixture, env, paths, tmp_path / "only", "--only-declared")
    stderr = only.stderr.decode(errors="replace")
    hints = re.findall(r"--only-declared hid (.*), which the build asked for", stderr)
    assert only.returncode == (BackendFailed.exit_code if hint else 0), stderr
    assert hints == ([", ".join(hint)] if hint else [])

    # --check-declared's verdicts: "matters" exactly where the closure alone fails, "harmless" everywhere else.
    checked = _wheel(src, fixture, env, paths, tmp_path / "checked", "--check-declared")
    verdicts = json.loads(checked.stdout)["declared_check"]
    assert checked.returncode == (UndeclaredMatters.exit_code if hint else 0), checked.stderr.decode(errors="replace")
    assert sorted(verdicts["matters"]) == sorted(hint) and verdicts["unreproducible"] == []
    assert set(verdicts["harmless"]) == {item["name"] for item in deps["undeclared"]} - set(hint)

    declared = [item for item in deps["used"] if item not in deps["undeclared"]] + deps["unused"]
    kept = {(item["location"], item["name"]) for item in declared}
    for directory in (env, *paths):
        _remove_all_but(directory, kept)
    clean = _wheel(src, fixture, env, paths, tmp_path / "clean")
    assert clean.returncode == only.returncode, clean.stderr.decode(errors="replace")
    if not hint:
        comparison = compare(json.loads(only.stdout)["path"], json.loads(clean.stdout)["path"])
        assert not comparison.members, render(comparison)


SHIM = Path(__file__).resolve().parent.parent / "src" / "isobuild" / "_shim" / "sitecustomize.py"


def test_the_hider_refuses_only_what_is_asked_for_and_found_nowhere_else(tmp_path: Path) -> None:
    """entry_points() goes through every distribution: the hidden ones are not "asked for" by it, as they
    are by version(NAME). A hidden module that a later sys.path entry also has (setuptools' own copy of
    packaging) is no refusal either: the import succeeds."""
    site, later = tmp_path / "site", tmp_path / "later"
    write_dist(site, "kept", "1.0", {"kept.py": ""})
    write_dist(site, "gone", "1.0", {"gone.py": "", "twice.py": ""})
    write_dist(later, "twice", "1.0", {"twice.py": ""})
    script = f"""
import importlib.metadata, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("shim", {str(SHIM)!r})
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
sys.path[:0] = [{str(site)!r}, {str(later)!r}]
hider = shim.hide([{str(site / "gone.py")!r}, {str(site / "twice.py")!r}], [[{str(site)!r}, "gone"]])
import twice, kept
groups = importlib.metadata.entry_points()
scanned = list(hider.refused)
try:
    importlib.metadata.version("gone")
except importlib.metadata.PackageNotFoundError:
    pass
try:
    import gone
except ImportError:
    pass
print(json.dumps({{"twice": twice.__file__, "scanned": scanned, "refused": hider.refused}}))
"""
    out = subprocess.run([require_interpreter(VERSION), "-S", "-c", script], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert json.loads(out.stdout) == {
        "twice": str(later / "twice.py"),
        "scanned": [],
        "refused": ["gone", str(site / "gone.py")],
    }
