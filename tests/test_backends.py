"""All five commands on real backends (setuptools, flit_core, hatchling), an in-tree backend and legacy setup.py."""

from __future__ import annotations

import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from isobuild.errors import MissingDependencies

from conftest import (
    DEFAULT_TARGET,
    TARGET_VERSIONS,
    build_env,
    clean_env,
    copy_fixture,
    make_poisoned,
    read_report,
    require_interpreter,
    run_isobuild,
)

PROJECTS = {
    # fixture: (distribution name in file names, console script)
    "setuptools-pyproject": ("sample_setuptools", "sample-setuptools"),
    "setuptools-legacy": ("sample_legacy", "sample-legacy"),
    "flit": ("sample_flit", "sample-flit"),
    "hatch": ("sample_hatch", "sample-hatch"),
    "probe": ("probe", "probe-cli"),
}
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out: str = result.stdout.decode()
    return out


@pytest.fixture(scope="module")
def env_dir() -> Path:
    return build_env(VERSION)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(PROJECTS))
def test_five_commands(tmp_path: Path, fixture: str, env_dir: Path) -> None:
    python = require_interpreter(VERSION)
    poisoned = make_poisoned(tmp_path, python, VERSION)
    src = copy_fixture(fixture, tmp_path)
    name, script = PROJECTS[fixture]
    env = poisoned.env(str(env_dir))
    common = ["--python", python]

    wheel = Path(_ok(run_isobuild("wheel", str(src), *common, env=env)).strip())
    assert wheel.parent == src / "dist" and wheel.name.startswith(f"{name}-1.0-")
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(f"{name}-1.0.dist-info/entry_points.txt").decode()
    assert script in entry_points

    sdist = Path(_ok(run_isobuild("sdist", str(src), "-o", str(tmp_path / "sd"), *common, env=env)).strip())
    assert sdist.parent == tmp_path / "sd" and sdist.name.endswith(".tar.gz")
    assert tarfile.open(sdist).getnames()

    editable = Path(_ok(run_isobuild("editable", str(src), "-o", str(tmp_path / "ed"), *common, env=env)).strip())
    assert editable.suffix == ".whl" and zipfile.is_zipfile(editable)

    metadata = Path(_ok(run_isobuild("metadata", str(src), "-o", str(tmp_path / "md"), *common, env=env)).strip())
    assert metadata.name == f"{name}-1.0.dist-info" and (metadata / "METADATA").is_file()
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == [metadata.name]

    listing = _ok(run_isobuild("requires", str(src), *common, env=env))
    assert all("\tsatisfied (" in line or "\tnot needed" in line for line in listing.splitlines()), listing

    assert poisoned.fired() == []


@pytest.mark.slow
@pytest.mark.parametrize("version", TARGET_VERSIONS)
def test_setuptools_wheel_on_each_target(tmp_path: Path, version: str) -> None:
    python = require_interpreter(version)
    poisoned = make_poisoned(tmp_path, python, version)
    src = copy_fixture("setuptools-pyproject", tmp_path)

    wheel = Path(
        _ok(run_isobuild("wheel", str(src), "--python", python, env=poisoned.env(str(build_env(version))))).strip()
    )

    assert wheel.name == "sample_setuptools-1.0-py3-none-any.whl"
    assert poisoned.fired() == []


def test_config_settings_reach_the_backend(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    env = make_poisoned(tmp_path, require_interpreter(VERSION), VERSION).env(PROBE_REPORT=str(report))

    _ok(
        run_isobuild(
            "wheel",
            str(src),
            "-C",
            "a=1",
            "-C",
            "a=2",
            "-C",
            "flag",
            "--config-json",
            '{"b": ["x"], "a": "overridden"}',
            env=env,
        )
    )

    assert read_report(report)["config_settings"] == {"a": ["1", "2"], "flag": "", "b": ["x"]}


def test_dynamic_requirements_are_checked(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "requires=not-installed-anywhere>=2")
    assert result.returncode == MissingDependencies.exit_code
    assert b"not-installed-anywhere>=2" in result.stderr
    assert not (src / "dist").exists()
    skipped = run_isobuild("wheel", str(src), "-x", "-C", "requires=not-installed-anywhere>=2")
    assert skipped.returncode == 0, skipped.stderr.decode(errors="replace")


def test_requires_lists_missing_and_exits_3(tmp_path: Path) -> None:
    src = copy_fixture("requires-dep", tmp_path)
    result = run_isobuild("requires", str(src))
    assert result.returncode == MissingDependencies.exit_code
    assert result.stdout.decode().splitlines() == ["isobuild-fixture-dep>=1.0\tmissing"]
    as_json = json.loads(run_isobuild("requires", str(src), "--json").stdout)
    assert as_json["requirements"][0]["satisfied"] is False


def test_a_requirement_missing_further_down_is_named_in_the_headline(tmp_path: Path) -> None:
    """Debian's hatchling needs editables, which bookworm lacks: without -v the headline must say so."""
    build_env = tmp_path / "build-env"
    info = build_env / "isobuild_fixture_dep-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: isobuild-fixture-dep\nVersion: 1.2\nRequires-Dist: editables>=0.3\n"
    )
    src = copy_fixture("requires-dep", tmp_path)
    env = clean_env(PYTHONPATH=str(build_env))

    result = run_isobuild("wheel", str(src), env=env)

    assert result.returncode == MissingDependencies.exit_code
    lines = result.stderr.decode().splitlines()
    assert next(line for line in lines if line.startswith("ERROR ")).endswith(
        ": isobuild-fixture-dep>=1.0 (needs editables>=0.3)"
    )
    assert "also one that another needs (here: editables)" in next(line for line in lines if line.startswith("hint: "))
    removed = run_isobuild("wheel", str(src), "--remove", "editables", env=env)
    assert removed.returncode == 0, removed.stderr.decode(errors="replace")


def test_what_is_missing_further_down_is_named_once_without_markers(tmp_path: Path) -> None:
    """Two chains to one missing requirement, one through a marker: the headline names it once, as is."""
    build_env = tmp_path / "build-env"
    requires = {
        "isobuild_fixture_dep": ["mid-a", "mid-b"],
        "mid_a": ['editables>=0.3; python_version >= "3"'],
        "mid_b": ["editables>=0.3"],
    }
    for name, deps in requires.items():
        info = build_env / f"{name}-1.2.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n" + "".join(f"Requires-Dist: {dep}\n" for dep in deps)
        )
    src = copy_fixture("requires-dep", tmp_path)

    result = run_isobuild("wheel", str(src), env=clean_env(PYTHONPATH=str(build_env)))

    assert result.returncode == MissingDependencies.exit_code
    error = next(line for line in result.stderr.decode().splitlines() if line.startswith("ERROR "))
    assert error.endswith(": isobuild-fixture-dep>=1.0 (needs editables>=0.3)"), error


def test_metadata_falls_back_to_a_wheel_build(tmp_path: Path) -> None:
    src = copy_fixture("probe-no-prepare", tmp_path)
    out = Path(_ok(run_isobuild("metadata", str(src), "-o", str(tmp_path / "md"))).strip())
    assert out == tmp_path / "md" / "noprep-1.0.dist-info"
    assert (out / "METADATA").is_file()
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == ["noprep-1.0.dist-info"]


def test_json_output(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    data = json.loads(_ok(run_isobuild("wheel", str(src), "--json")))
    path = Path(data["path"])
    assert path.is_file() and data["size"] == path.stat().st_size
    import hashlib

    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["interpreter"] == DEFAULT_TARGET and isinstance(data["seconds"], float)
    assert data["requirements"] == []


def test_huge_and_undecodable_backend_output(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "spam=1")
    out = _ok(result)
    assert out.strip().endswith("probe-1.0-py3-none-any.whl") and out.count("\n") == 1
    assert len(result.stderr) >= 16 * 1024 * 1024
    assert b"\xff\xfe" in result.stderr


def test_backend_output_goes_to_stderr(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "echo=loud-backend")
    assert result.stdout.count(b"loud-backend") == 0
    assert result.stderr.count(b"loud-backend") == 2


def test_relative_paths(tmp_path: Path) -> None:
    copy_fixture("probe", tmp_path)
    default = Path(_ok(run_isobuild("wheel", "probe", cwd=tmp_path)).strip())
    assert default == tmp_path / "probe" / "dist" / "probe-1.0-py3-none-any.whl"
    explicit = Path(_ok(run_isobuild("sdist", "probe", "-o", "out/sd", cwd=tmp_path)).strip())
    assert explicit == tmp_path / "out" / "sd" / "probe-1.0.tar.gz"
    assert sorted(p.name for p in (tmp_path / "out" / "sd").iterdir()) == ["probe-1.0.tar.gz"]
