"""Debian's real toolchain: dpkg-buildpackage with stock pybuild rules and with the isobuild
debian/rules that docs/pipelines.md shows, the two .debs compared member by member, and a
PYTHONUSERBASE whose user site holds a broken flit_core.

Runs as root where apt-get exists (it installs the toolchain once per session); skips elsewhere.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, apt_install, copy_fixture

# bookworm's `flit` ships flit_core too; its python3-hatchling is hatchling.
DEBIAN_PACKAGES = (
    "dh-python",
    "pybuild-plugin-pyproject",
    "debhelper",
    "dpkg-dev",
    "python3-all",
    "flit",
    "python3-hatchling",
)
FIXTURE_PACKAGES = {"debian-flit": "python3-debflit", "debian-hatch": "python3-debhatch"}
BUILDD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # as a buildd: python3 is Debian's, not pyenv's
DIST_PACKAGES = "usr/lib/python3/dist-packages"

_DEBIAN = (REPO / "docs" / "pipelines.md").read_text().split("\n## Debian\n", 1)[1].split("\n## ", 1)[0]
_BLOCK = re.search(r"^```make debian-rules\n(.*?)^```", _DEBIAN, re.S | re.M)
RULES = _BLOCK.group(1) if _BLOCK else ""


# ---------------------------------------------------------------- the toolchain, once


@pytest.fixture(scope="session")
def toolchain() -> None:
    """Debian's packaging tools and the fixtures' backends, installed with apt-get unless present."""
    if os.geteuid() != 0:
        pytest.skip("needs root to apt-get install Debian's toolchain (dh-python, debhelper, backends)")
    apt_install(DEBIAN_PACKAGES, "Debian's toolchain: dh-python, debhelper, the backends")


# ---------------------------------------------------------------- building


@dataclass
class Build:
    returncode: int
    log: str
    deb: Path | None


def dpkg_buildpackage(tmp_path: Path, fixture: str, variant: str, pyz: Path, **env: str) -> Build:
    """``dpkg-buildpackage -us -uc -b`` in a copy; variants named isobuild* get the documented rules.

    The environment is a buildd's, the same for both variants, not the developer's shell's (whose
    PATH would give pybuild pyenv's python3.11); ``env`` adds to it (PYTHONUSERBASE).
    """
    where = tmp_path / variant
    src = copy_fixture(fixture, where)
    if variant.startswith("isobuild"):
        (src / "debian" / "rules").write_text(RULES)
        (src / "debian" / "rules").chmod(0o755)
    (where / "home").mkdir()
    env = {
        "PATH": BUILDD_PATH,
        "HOME": str(where / "home"),
        "LANG": "C.UTF-8",
        "ISOBUILD": f"/usr/bin/python3 {pyz}",
        **env,
    }
    result = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, capture_output=True, text=True, timeout=600
    )
    log = result.stdout + result.stderr
    (where / "build.log").write_text(log)
    debs = sorted(where.glob(f"{FIXTURE_PACKAGES[fixture]}_*.deb"))
    return Build(result.returncode, log, debs[0] if debs else None)


def built(build: Build) -> Path:
    assert build.returncode == 0 and build.deb is not None, build.log[-4000:]
    return build.deb


# ---------------------------------------------------------------- comparing


@dataclass
class Deb:
    listing: dict[str, tuple[str, str, str, str]]  # member -> (mode, owner, size, link target); dates left out
    tree: Path  # dpkg -x
    control: Path  # dpkg-deb -e


def open_deb(deb: Path, where: Path) -> Deb:
    where.mkdir(parents=True)
    listing = {}
    contents = subprocess.run(["dpkg", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    for line in contents.splitlines():
        mode, owner, size, _date, _time, rest = line.split(None, 5)
        name, _, link = rest.partition(" -> ")
        listing[name] = (mode, owner, size, link)
    subprocess.run(["dpkg", "-x", str(deb), str(where / "tree")], check=True)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(where / "control")], check=True)
    return Deb(listing, where / "tree", where / "control")


def record_paths(tree: Path, record: str) -> dict[str, bool]:
    """Each RECORD path, and whether it names a file of the package once installed."""
    base = tree / DIST_PACKAGES
    return {
        row[0]: (base / row[0]).resolve().is_relative_to(tree) and (base / row[0]).exists()
        for row in csv.reader(record.splitlines())
        if row
    }


def script_lines_only(pybuild: bytes, isobuild: bytes) -> bool:
    """The one named difference: pybuild records ``../scripts/NAME``, isobuild ``../../../bin/NAME``."""
    moved = re.sub(rb"(?m)^\.\./scripts/", b"../../../bin/", pybuild)
    return pybuild != isobuild and moved == isobuild


@dataclass
class Comparison:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    named: set[str] = field(default_factory=set)  # members allowed to differ: RECORD, script lines only


def _difference(pa: Path, pb: Path) -> str | None:
    """How two extracted paths differ (presence, mode, link target, bytes), or None."""
    if not (pa.exists() or pa.is_symlink()) or not (pb.exists() or pb.is_symlink()):
        return f"only in {'isobuild' if pb.exists() or pb.is_symlink() else 'pybuild'}'s .deb"
    if pa.lstat().st_mode != pb.lstat().st_mode:
        return f"mode {oct(pa.lstat().st_mode)} vs {oct(pb.lstat().st_mode)}"
    if pa.is_symlink():
        return None if os.readlink(pa) == os.readlink(pb) else "link targets differ"
    if pa.is_dir():
        return None
    return None if pa.read_bytes() == pb.read_bytes() else "contents differ"


def compare_files(a: Deb, b: Deb, out: Comparison) -> None:
    """Every extracted path: bytes, mode, link target; a RECORD may differ in its script lines only."""
    names = sorted(
        {p.relative_to(a.tree).as_posix() for p in a.tree.rglob("*")}
        | {p.relative_to(b.tree).as_posix() for p in b.tree.rglob("*")}
    )
    for name in names:
        difference = _difference(a.tree / name, b.tree / name)
        if (
            difference == "contents differ"
            and name.endswith(".dist-info/RECORD")
            and script_lines_only((a.tree / name).read_bytes(), (b.tree / name).read_bytes())
        ):
            out.named.add(name)
        elif difference:
            out.problems.append(f"{name}: {difference}")
    identical = len(names) - len(out.named) - len(out.problems)
    out.lines.append(
        f"  dpkg -x: {len(names)} paths, {identical} identical (bytes, mode, link), {len(out.named)} named difference"
    )
    for name in sorted(out.named):
        explain_record(name, a, b, out)


def explain_record(name: str, a: Deb, b: Deb, out: Comparison) -> None:
    """Which RECORD tells the truth: its paths resolved from dist-packages in the package's own tree."""
    for who, deb in (("pybuild", a), ("isobuild", b)):
        paths = record_paths(deb.tree, (deb.tree / name).read_text())
        dangling = sorted(p for p, ok in paths.items() if not ok)
        out.lines.append(
            f"    {who}'s {name.rsplit('/', 2)[1]}/RECORD: {len(paths) - len(dangling)} paths"
            f" that the package has, dangling: {dangling or 'none'}"
        )
        if who == "isobuild" and dangling:
            out.problems.append(f"{name}: isobuild's RECORD names what the package lacks: {dangling}")


def compare_listing(a: Deb, b: Deb, out: Comparison) -> None:
    diffs = [
        f"{m}: {a.listing.get(m)} vs {b.listing.get(m)}"
        for m in sorted(a.listing.keys() | b.listing.keys())
        if a.listing.get(m) != b.listing.get(m)
        and not (m.removeprefix("./") in out.named and a.listing[m][:2] == b.listing[m][:2])
    ]
    out.problems.extend(f"dpkg -c: {d}" for d in diffs)
    out.lines.append(
        f"  dpkg -c: {len(a.listing)} vs {len(b.listing)} members; names, modes, owners, sizes, links"
        f" {'the same' if not diffs else 'DIFFER'}{' (the RECORD sizes aside)' if out.named else ''}"
    )


def _control_part(directory: Path, part: str, named: set[str]) -> object:
    """A DEBIAN/ file as compared: md5sums as {path: sum} without the named differences."""
    path = directory / part
    if not path.exists():
        return None
    if part != "md5sums":
        return path.read_text()
    sums = (line.split(None, 1) for line in path.read_text().splitlines())
    return {name: value for value, name in sums if name not in named}


def compare_control(a: Deb, b: Deb, out: Comparison) -> None:
    """DEBIAN/: control (Depends, Installed-Size), postinst/prerm; md5sums may differ in named files."""
    parts = sorted({p.name for p in a.control.iterdir()} | {p.name for p in b.control.iterdir()})
    differ = [
        part for part in parts if _control_part(a.control, part, out.named) != _control_part(b.control, part, out.named)
    ]
    out.problems.extend(f"DEBIAN/{part} differs" for part in differ)
    out.lines.append(
        f"  DEBIAN/: {', '.join(parts)}: {'the same' if not differ else 'DIFFER: ' + str(differ)}"
        f"{' (md5sums of the named difference aside)' if out.named else ''}"
    )


def compare_shebangs(a: Deb, b: Deb, out: Comparison) -> None:
    for script in sorted((a.tree / "usr" / "bin").iterdir()):
        lines = [(d / "usr" / "bin" / script.name).read_bytes().split(b"\n", 1)[0].decode() for d in (a.tree, b.tree)]
        out.lines.append(f"  usr/bin/{script.name}: shebang {lines[0]!r} (pybuild), {lines[1]!r} (isobuild)")
        if lines != ["#!/usr/bin/python3"] * 2:
            out.problems.append(f"usr/bin/{script.name}: shebangs {lines}")


def report(tmp_path: Path, name: str, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    (tmp_path / f"{name}.txt").write_text(text)


# ---------------------------------------------------------------- the tests


def test_the_documented_rules_are_found_and_fixtures_ship_stock_pybuild_rules() -> None:
    assert "override_dh_auto_build:\n\t$(ISOBUILD) wheel" in RULES, "no ```make debian-rules block in ## Debian"
    assert "ISOBUILD ?=" in RULES
    for fixture in FIXTURE_PACKAGES:
        rules = (FIXTURES / fixture / "debian" / "rules").read_text()
        assert "\tdh $@ --with python3 --buildsystem=pybuild\n" in rules


@pytest.mark.slow
@pytest.mark.parametrize("fixture", sorted(FIXTURE_PACKAGES))
def test_isobuild_rules_make_the_same_deb_as_pybuild(toolchain: None, tmp_path: Path, pyz: Path, fixture: str) -> None:
    a = open_deb(built(dpkg_buildpackage(tmp_path, fixture, "pybuild", pyz)), tmp_path / "pybuild-deb")
    b = open_deb(built(dpkg_buildpackage(tmp_path, fixture, "isobuild", pyz)), tmp_path / "isobuild-deb")
    out = Comparison([f"{fixture}: {FIXTURE_PACKAGES[fixture]}, stock pybuild rules vs the isobuild rules of the docs"])
    compare_files(a, b, out)
    compare_listing(a, b, out)
    compare_control(a, b, out)
    compare_shebangs(a, b, out)
    for script in sorted((b.tree / "usr" / "bin").iterdir()):
        run = subprocess.run(
            ["/usr/bin/python3", str(script)],
            capture_output=True,
            text=True,
            env={"PATH": BUILDD_PATH, "PYTHONPATH": str(b.tree / DIST_PACKAGES)},
        )
        out.lines.append(f"  isobuild's usr/bin/{script.name} runs: exit {run.returncode}, {run.stdout.strip()!r}")
        assert run.returncode == 0, run.stderr
    verdict = f"identical but for the named difference in {sorted(out.named)}" if out.named else "identical"
    out.lines.append(f"  verdict: {verdict if not out.problems else out.problems}")
    report(tmp_path, f"comparison-{fixture}", out.lines)
    assert not out.problems, "\n".join(out.problems)
    assert len(out.named) == 1  # the RECORD; nothing else differs


def poison_user_base(base: Path, version: str) -> Path:
    """A user site whose flit_core marks that it was imported, then fails as a stale install would."""
    site = base / "lib" / f"python{version}" / "site-packages"
    (site / "flit_core").mkdir(parents=True)
    (site / "flit_core" / "__init__.py").write_text('__version__ = "3.8.0"\n')
    (site / "flit_core" / "buildapi.py").write_text(
        f"open({str(base / 'imported')!r}, 'w').close()\n"
        "raise ImportError('stale flit_core from the user site (PYTHONUSERBASE)')\n"
    )
    info = site / "flit_core-3.8.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flit_core\nVersion: 3.8.0\n")
    (info / "RECORD").write_text("")
    return base / "imported"


@pytest.mark.slow
def test_a_broken_flit_core_in_the_user_site_breaks_pybuild_not_isobuild(
    toolchain: None, tmp_path: Path, pyz: Path
) -> None:
    version = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    clean = built(dpkg_buildpackage(tmp_path, "debian-flit", "isobuild", pyz))
    lines = [f"debian-flit with PYTHONUSERBASE's user site (python{version}) holding a flit_core that raises"]
    for variant in ("pybuild-poisoned", "isobuild-poisoned"):
        marker = poison_user_base(tmp_path / f"userbase-{variant}", version)
        build = dpkg_buildpackage(
            tmp_path, "debian-flit", variant, pyz, PYTHONUSERBASE=str(tmp_path / f"userbase-{variant}")
        )
        failure = [line for line in build.log.splitlines() if line.startswith(("ImportError: stale", "ERROR "))]
        lines.append(
            f"  {variant.split('-')[0]}: exit {build.returncode}, user-site flit_core imported: "
            f"{marker.exists()}{''.join(chr(10) + '    ' + line for line in failure)}"
        )
        if variant.startswith("pybuild"):
            assert build.returncode != 0 and marker.exists() and failure, build.log[-4000:]
        else:
            assert not marker.exists()
            same = built(build).read_bytes() == clean.read_bytes()
            lines.append(f"  isobuild: .deb byte-identical to the clean isobuild build: {same}")
            assert same
    report(tmp_path, "poison", lines)
