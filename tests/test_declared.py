"""What a build declares (its closure), what its hooks used, and what it used without declaring it (issue 23)."""

from __future__ import annotations

from pathlib import Path

from isobuild.dependencies import Environment, Policy, Resolved, check

MARKERS = {"python_version": "3.11", "python_full_version": "3.11.9", "sys_platform": "linux", "os_name": "posix",
           "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "platform_release": "", "platform_version": "",
           "implementation_version": "3.11.9"}


def _dist(where: Path, name: str, version: str, *requires: str) -> None:
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def _closure(env_dir: Path, requirements: list[str], policy: Policy = Policy()) -> dict[str, Resolved]:
    env = Environment([str(env_dir)], MARKERS, policy)
    check(requirements, "build-system.requires", env)
    return env.closure


def test_the_closure_follows_requires_dist_markers_and_extras(tmp_path: Path) -> None:
    _dist(tmp_path, "Backend_One", "1.0", "helper>=1", "windows-only; sys_platform == 'win32'",
          "fancy; extra == 'fancy'")
    _dist(tmp_path, "helper", "2.0", "deep")
    _dist(tmp_path, "deep", "0.1")
    _dist(tmp_path, "fancy", "3.0")
    _dist(tmp_path, "windows-only", "1.0")
    _dist(tmp_path, "bystander", "1.0")

    plain = _closure(tmp_path, ["backend-one"])
    assert plain == {name: Resolved(name, version, str(tmp_path))
                     for name, version in (("backend-one", "1.0"), ("helper", "2.0"), ("deep", "0.1"))}
    assert set(_closure(tmp_path, ["backend-one[fancy]"])) == {"backend-one", "helper", "deep", "fancy"}
    assert _closure(tmp_path, ["bystander; python_version < '3'"]) == {}


def test_relax_keeps_a_distribution_in_the_closure_and_remove_takes_it_out(tmp_path: Path) -> None:
    _dist(tmp_path, "backend", "1.0", "helper>=5")
    _dist(tmp_path, "helper", "2.0", "deep")
    _dist(tmp_path, "deep", "0.1")

    relaxed = _closure(tmp_path, ["backend"], Policy.of(["helper"], []))
    assert set(relaxed) == {"backend", "helper", "deep"} and relaxed["helper"].version == "2.0"
    assert set(_closure(tmp_path, ["backend"], Policy.of([], ["helper"]))) == {"backend"}
    assert _closure(tmp_path, ["backend"], Policy.of([], ["backend"])) == {}
