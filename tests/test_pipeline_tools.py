"""What pipelines bolt on by hand: relaxed and removed pins, the runtime-dependency check, requirement
generation (Requires-Dist, extras, PEP 735 groups), building from sdist archives, typo warnings."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import BadInput, ImportCheckFailed, MissingDependencies

from conftest import FIXTURE_DEP, build_env, clean_env, copy_fixture, make_wheel, run_isobuild

MISSING, BAD_INPUT = MissingDependencies.exit_code, BadInput.exit_code
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _dist(site: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"] + [
        f"Requires-Dist: {r}" for r in requires
    ]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def _setuptools_pinned(tmp_path: Path, pin: str) -> Path:
    src = copy_fixture("setuptools-pyproject", tmp_path)
    pyproject = src / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("requires = [")
    end = text.index("]", start) + 1
    pyproject.write_text(text[:start] + f"requires = [{pin!r}]" + text[end:])
    return src


def test_a_relaxed_pin_builds_with_a_real_backend_and_says_so(tmp_path: Path) -> None:
    src = _setuptools_pinned(tmp_path, "setuptools<60")
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    assert run_isobuild("wheel", str(src), env=env).returncode == MISSING
    for name in ("setuptools", "*", "SetupTools"):
        result = run_isobuild("wheel", str(src), "--relax", name, "--json", env=env)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert b"relaxed: setuptools<60" in result.stderr
        status = json.loads(result.stdout)["requirements"][0]
        assert status["policy"] == "relaxed" and status["satisfied"]


def test_a_relaxed_requirement_must_still_be_there_and_a_removed_one_is_not_checked(tmp_path: Path) -> None:
    src = _setuptools_pinned(tmp_path, "not-installed-anywhere>=2")
    env = clean_env(PYTHONPATH=str(build_env(VERSION)))
    assert run_isobuild("requires", str(src), "--relax", "not-installed-anywhere", env=env).returncode == MISSING
    result = run_isobuild("requires", str(src), "--remove", "not-installed-anywhere", "--json", env=env)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    statuses = {s["requirement"]: s for s in json.loads(result.stdout)["requirements"]}
    assert statuses["not-installed-anywhere>=2"]["policy"] == "removed"
    assert b"removed: not-installed-anywhere>=2" in result.stderr


def _app(tmp_path: Path) -> Path:
    metadata = (
        "Metadata-Version: 2.1\nName: app\nVersion: 1.0\nRequires-Dist: dep-a>=1\nRequires-Dist: dep-b>=2\n"
        "Requires-Dist: dep-c; python_version < '3'\nProvides-Extra: extra1\n"
        "Requires-Dist: dep-d; extra == 'extra1'\n"
    )
    return make_wheel(
        tmp_path / "app", {"app/__init__.py": b"", "app-1.0.dist-info/METADATA": metadata.encode()}, name="app"
    )


def _lines(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {line.split("\t")[1]: line.split("\t")[2] for line in result.stdout.decode().splitlines()}


def test_check_finds_missing_wrong_version_marker_and_extra(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "dep-a", "1.0")
    _dist(site, "dep-b", "1.0")
    app = _app(tmp_path)
    env = clean_env(PYTHONPATH=str(site))
    result = run_isobuild("check", str(app), "-v", env=env)  # -v: marker-excluded lines too
    lines = _lines(result)
    assert result.returncode == MISSING, result.stderr.decode(errors="replace")
    assert lines["dep-a>=1"].startswith("satisfied")
    assert lines["dep-b>=2"] == f"missing (found dep-b 1.0 at {site})"
    assert lines["dep-c; python_version < '3'"] == "not needed (marker)"
    assert lines["dep-d; extra == 'extra1'"] == "not needed (marker)"
    assert b"dep-b>=2" in result.stderr.split(b"ERROR")[1]
    with_extra = _lines(run_isobuild("check", str(app), "--extra", "extra1", "--relax", "dep-b", env=env))
    assert with_extra["dep-d; extra == 'extra1'"] == "missing" and with_extra["dep-b>=2"].startswith("relaxed")
    dep_b = make_wheel(tmp_path / "dep-b", {"dep_b/__init__.py": b""}, name="dep_b", version="2.0")
    together = run_isobuild("check", str(app), str(dep_b), "--json", env=env)
    assert together.returncode == 0, together.stderr.decode(errors="replace")
    assert run_isobuild("check", str(app), "--remove", "dep-b", env=env).returncode == 0


def test_install_check_deps_checks_the_destination_and_the_build_env_before_writing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "dep-a", "1.0")
    prefix = tmp_path / "prefix"
    app = _app(tmp_path)
    refused = run_isobuild(
        "install", str(app), "--prefix", str(prefix), "--check-deps", env=clean_env(PYTHONPATH=str(site))
    )
    assert refused.returncode == MISSING and b"dep-b>=2" in refused.stderr
    assert not prefix.exists()
    dep_b = make_wheel(tmp_path / "dep-b", {"dep_b/__init__.py": b""}, name="dep_b", version="2.0")
    assert run_isobuild("install", str(dep_b), "--prefix", str(prefix)).returncode == 0  # now in the destination
    ok = run_isobuild("install", str(app), "--prefix", str(prefix), "--check-deps", env=clean_env(PYTHONPATH=str(site)))
    assert ok.returncode == 0, ok.stderr.decode(errors="replace")


def test_requires_runtime_lists_requires_dist_extras_and_groups(tmp_path: Path) -> None:
    src = copy_fixture("runtime-deps", tmp_path)
    site = tmp_path / "site"
    _dist(site, FIXTURE_DEP, "1.0")
    result = run_isobuild(
        "requires",
        str(src),
        "--runtime",
        "--extra",
        "fast",
        "--group",
        "test",
        "--json",
        env=clean_env(PYTHONPATH=str(site)),
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")  # runtime statuses do not fail it
    found = [
        (s["origin"], s["requirement"], s["needed"], s["satisfied"]) for s in json.loads(result.stdout)["requirements"]
    ]
    assert found == [
        ("Requires-Dist", "isobuild-fixture-dep>=1.0", True, True),
        ("Requires-Dist", "not-installed-anywhere>=2", True, False),
        ("Requires-Dist", 'legacy-only; python_version < "3"', False, True),
        ("Requires-Dist", 'fastdep; extra == "fast"', True, False),
        ("dependency-groups.test", "pytest>=7", True, False),
        ("dependency-groups.test", 'ruff; python_version >= "3.8"', True, False),  # as the library writes it
    ]
    unknown = run_isobuild("requires", str(src), "--runtime", "--group", "nope")
    assert unknown.returncode == BAD_INPUT and b"no dependency group 'nope'" in unknown.stderr


def test_a_wheel_from_an_sdist_is_the_wheel_from_its_tree(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    sdist = Path(run_isobuild("sdist", str(src), "-o", str(tmp_path / "sdists")).stdout.decode().strip())
    from_tree = Path(run_isobuild("wheel", str(src), "-o", str(tmp_path / "tree")).stdout.decode().strip())
    result = run_isobuild("wheel", str(sdist))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    from_sdist = Path(result.stdout.decode().strip())
    assert from_sdist.parent == sdist.parent  # the default OUTDIR: the archive's directory
    with zipfile.ZipFile(from_tree) as a, zipfile.ZipFile(from_sdist) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
    assert run_isobuild("install", str(sdist), "--prefix", str(tmp_path / "prefix")).returncode == 0


def _tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as tar:
        base = tarfile.TarInfo("probe-1.0/pyproject.toml")
        data = b'[build-system]\nrequires = []\nbuild-backend = "x"\n'
        base.size = len(data)
        tar.addfile(base, io.BytesIO(data))
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "member, why",
    [
        (_member("probe-1.0/../../evil"), "leads out of the tree"),
        (_member("/etc/evil"), "is absolute"),
        (_member("probe-1.0/link", tarfile.SYMTYPE, "/etc/passwd"), "symlink out of the tree"),
        (_member("probe-1.0/link", tarfile.SYMTYPE, "../../etc"), "symlink out of the tree"),
        (_member("probe-1.0/hard", tarfile.LNKTYPE, "../outside"), "hard link out of the tree"),
        (_member("probe-1.0/dev", tarfile.CHRTYPE), "device"),
    ],
)
def test_a_hostile_sdist_is_refused_with_nothing_written(tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    sdist = _tar(tmp_path / "in" / "probe-1.0.tar.gz", [member])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run_isobuild("wheel", str(sdist), env=clean_env(TMPDIR=str(scratch)))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == BAD_INPUT, err
    assert f"member {member.name!r}" in err and why in err
    assert os.listdir(scratch) == [] and sorted(os.listdir(sdist.parent)) == ["probe-1.0.tar.gz"]
    assert not (tmp_path / "evil").exists()


def test_misspelt_build_system_tables_and_keys_are_warned_about(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[build-system]", "[build_sytem]"))
    result = run_isobuild("requires", str(src))
    assert b"[build_sytem] is not [build-system]: did you mean 'build-system'?" in result.stderr
    pyproject.write_text(
        pyproject.read_text()
        .replace("[build_sytem]", "[build-system]")
        .replace("requires = []", "requires = []\nbuild_backend = 'x'")
    )
    assert b"key 'build_backend': did you mean 'build-backend'?" in run_isobuild("requires", str(src)).stderr
    pyproject.write_text(pyproject.read_text().replace("requires = []", "requries = []"))
    result = run_isobuild("requires", str(src))
    assert result.returncode == BAD_INPUT and b"did you mean 'requires'?" in result.stderr


def test_check_imports_passes_a_good_wheel_and_names_the_module_of_a_broken_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "helper.py").write_text("VALUE = 1\n")  # the build environment: on sys.path for the check
    good = make_wheel(
        tmp_path / "good",
        {
            "demo/__init__.py": b"import helper\n\ndef main():\n    pass\n",
            "solo.py": b"import os\n",
            "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo-cli = demo:main\n",
        },
    )
    env = clean_env(PYTHONPATH=str(site))
    prefix = tmp_path / "prefix"
    result = run_isobuild("install", str(good), "--prefix", str(prefix), "--check-imports", env=env)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"imported 2 modules, loaded 1 entry points" in result.stderr
    broken = make_wheel(
        tmp_path / "broken",
        {
            "demo/__init__.py": b"import not_installed_anywhere\n",
            "demo-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo-cli = demo:main\n",
        },
    )
    other = tmp_path / "other"
    result = run_isobuild("install", str(broken), "--prefix", str(other), "--check-imports", env=env)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == ImportCheckFailed.exit_code, err
    assert "demo: ModuleNotFoundError: No module named 'not_installed_anywhere'" in err
    assert not other.exists()  # rolled back
    named = run_isobuild("install", str(good), "--prefix", str(tmp_path / "p3"), "--check-imports=solo,json", env=env)
    assert named.returncode == 0 and b"imported 2 modules" in named.stderr
