"""The dependency check's view of distributions, read in the hook process.

Where the build environment is directories of .dist-info dirs, the hook
process lists them instead of importing importlib.metadata and email (the
imports cost more than a lean backend's build). These tests hold that
shortcut to importlib.metadata's own answers, on real build environments and
on the odd cases, under every 3.10+ target interpreter, and its header
reader to email's HeaderParser under every target; and they show where the
shortcut steps aside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from types import ModuleType

import pytest

import isobuild
from conftest import TARGET_VERSIONS, build_env, clean_env, copy_fixture, read_report, require_interpreter, run_isobuild

RUNNER = Path(isobuild.__file__).resolve().parent / "_hookrunner.py"

# Run by a target interpreter: the check's answers from the listing and from importlib.metadata.
COMPARE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("_hookrunner_under_test", sys.argv[1])
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
path = json.loads(sys.argv[2]) + sys.path[1:]  # and the stdlib, as the hooks' sys.path has it

def answers(index):
    runner._SETUP_PATH[:] = path
    runner._DIST_INDEX = index
    return {name: runner._lookup(name) for name in sorted(index)}

listed = runner._listed_index(path)
print(json.dumps({"listed": None if listed is None else answers(listed),
                  "importlib": answers(runner._importlib_index(path))}))
"""


def _compare(python: str, path: list[Path]) -> dict[str, dict[str, object] | None]:
    out = subprocess.run([python, "-S", "-s", "-c", COMPARE, str(RUNNER), json.dumps([str(p) for p in path])],
                         capture_output=True, text=True, env=clean_env(), check=True).stdout
    answers: dict[str, dict[str, object] | None] = json.loads(out)
    return answers


def _dist_info(site: Path, dirname: str, files: dict[str, bytes]) -> None:
    info = site / dirname
    info.mkdir(parents=True)
    for name, data in files.items():
        (info / name).write_bytes(data)


def _odd_sites(tmp_path: Path) -> list[Path]:
    """Two site dirs of distributions that .dist-info dirs can hold, the odd ones included."""
    first, second = tmp_path / "first", tmp_path / "second"
    _dist_info(first, "dup-1.0.dist-info", {"METADATA": b"Name: dup\nVersion: 1.0\n"})
    _dist_info(first, "Dup-2.0.dist-info", {"METADATA": b"Name: Dup\nVersion: 2.0\n"})  # same dir: listing order
    _dist_info(second, "dup-3.0.dist-info", {"METADATA": b"Name: dup\nVersion: 3.0\n"})  # later entry: hidden
    _dist_info(first, "dotted.Name_x-3.0.dist-info", {"METADATA": (
        b"Metadata-Version: 2.1\r\nName: dotted.Name_x\r\nVersion: 3.0\r\nRequires-Dist: dup>=1;\r\n"
        b"  python_version >= '3'\r\nRequires-Dist: other\r\n\r\nRequires-Dist: in-the-body\r\n")})
    _dist_info(first, "alias-1.0.dist-info", {"METADATA": b"Name: not-alias\nVersion: 1.0\n"})  # named by its dir
    _dist_info(first, "many-dashes-1.0-x.dist-info", {"METADATA": b"Name: many-dashes\nVersion: 1.0\n"})  # as "many"
    _dist_info(first, "pkginfo_only-1.0.dist-info", {"PKG-INFO": b"Name: pkginfo-only\nVersion: 1.0\n"})
    _dist_info(first, "empty-1.0.dist-info", {})
    _dist_info(first, "reqtxt-1.0.dist-info", {"METADATA": b"Name: reqtxt\nVersion: 1.0\n",
                                               "requires.txt": b"dup\n\n[extra1]\nother>=2\n"})
    _dist_info(first, "latin-1.0.dist-info", {"METADATA": "Name: latin\nVersion: 1.0\nAuthor: Jos\xe9\n".encode("latin-1")})
    _dist_info(first, "odd-1.0.dist-info", {"METADATA": (
        b" continuation of nothing\nName: odd\n:nameless\nFrom misplaced\nVersion:\t 1.0 \n"
        b"Requires-Dist: a\nrequires-dist: b\nREQUIRES-DIST: c\nX-Bad Name: ends the headers\nRequires-Dist: d\n")})
    _dist_info(first, "nover-1.0.dist-info", {"METADATA": b"Name: nover\n"})
    (first / "file_dist-1.0.dist-info").write_bytes(b"Name: file-dist\nVersion: 4.0\n")  # a file, not a dir
    return [first, second, tmp_path / "absent"]


@pytest.mark.parametrize("version", [v for v in TARGET_VERSIONS if v not in ("3.8", "3.9")])
def test_listing_answers_as_importlib_metadata_does(tmp_path: Path, version: str) -> None:
    python = require_interpreter(version)
    path = _odd_sites(tmp_path) + [build_env(version)]
    answers = _compare(python, path)
    assert answers["listed"] is not None, "the listing stepped aside on dist-info dirs only"
    assert answers["listed"] == answers["importlib"]
    listed = answers["listed"]
    # What the comparison covered: the odd cases, and every backend of the build env.
    assert {"dup", "dotted-name-x", "alias", "many", "file-dist", "latin", "odd", "setuptools", "flit-core",
            "hatchling"} <= set(listed)
    assert listed["dup"]["location"] == str(path[0])  # type: ignore[index]
    assert listed["reqtxt"]["requires"] == ["dup", 'other>=2; extra == "extra1"']  # type: ignore[index]
    assert listed["odd"] == {"version": "1.0 ", "requires": ["a", "b", "c"], "location": str(path[0])}
    assert listed["latin"]["version"].startswith("(unreadable metadata: UnicodeDecodeError")  # type: ignore[index]


@pytest.mark.parametrize("version", ["3.8", "3.9"])
def test_before_310_importlib_metadata_names_distributions_itself(tmp_path: Path, version: str) -> None:
    """Those name a distribution by its Name header, not by its directory: the listing steps aside."""
    python = require_interpreter(version)
    answers = _compare(python, [build_env(version)])
    assert answers["listed"] is None
    assert {"setuptools", "flit-core", "hatchling"} <= set(answers["importlib"])  # type: ignore[arg-type]


def _runner() -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_hookrunner_under_test", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the listing is for Python 3.10+")
@pytest.mark.parametrize("odd", ["egg-info dir", "egg-info file", "egg on sys.path", "zip on sys.path", "upper-case suffix",
                                 "no name part", "only the suffix"])
def test_listing_steps_aside_for_what_importlib_metadata_reads_otherwise(tmp_path: Path, odd: str) -> None:
    site = tmp_path / "site"
    _dist_info(site, "plain-1.0.dist-info", {"METADATA": b"Name: plain\nVersion: 1.0\n"})
    path = [site]
    if odd == "egg-info dir":
        _dist_info(site, "legacy-1.0.egg-info", {"PKG-INFO": b"Name: legacy\nVersion: 1.0\n"})
    elif odd == "egg-info file":
        (site / "legacy-1.0.egg-info").write_bytes(b"Name: legacy\nVersion: 1.0\n")
    elif odd == "egg on sys.path":
        _dist_info(tmp_path / "legacy-1.0-py3.egg", "EGG-INFO", {"PKG-INFO": b"Name: legacy\nVersion: 1.0\n"})
        path.append(tmp_path / "legacy-1.0-py3.egg")
    elif odd == "zip on sys.path":
        with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as zf:
            zf.writestr("legacy-1.0.dist-info/METADATA", "Name: legacy\nVersion: 1.0\n")
        path.append(tmp_path / "zipped.zip")
    elif odd == "upper-case suffix":
        _dist_info(site, "legacy-1.0.DIST-INFO", {"METADATA": b"Name: legacy\nVersion: 1.0\n"})
    else:  # importlib.metadata finds no name in the directory's and reads the Name header
        dirname = "-1.0.dist-info" if odd == "no name part" else ".dist-info"
        _dist_info(site, dirname, {"METADATA": b"Name: legacy\nVersion: 1.0\n"})
    runner = _runner()
    texts = [str(p) for p in path]
    assert runner._listed_index(texts) is None
    runner._SETUP_PATH[:] = texts
    assert runner._lookup("legacy")["version"] == "1.0"  # importlib.metadata's answer, all the same
    assert runner._lookup("plain")["version"] == "1.0"


HEADER_TEXTS = [
    "",
    "\n",
    "Name: a\nVersion: 1\n\nbody: not a header\n",
    "Name: a\r\nRequires-Dist: b;\r\n  extra == 'x'\r\n\tmore\r\nVersion: 1\r\n",
    "Name: a\rVersion: 1\r\rbody: x\r",
    " leading continuation\nName: a\n",
    "From someone@example.org\nName: a\n",
    "Name: a\nFrom misplaced\nVersion: 2\n",
    "Name: a\nVersion: 1\nFrom the body's first line",
    "From alone",
    ":nameless\nName: a\n :continues nothing\n",
    "Name: a\nnot a header line\nVersion: 1\n",
    "Name: a\nVersion: 1",
    "Name:a\nVersion:\t 1 \n",
    "Name: a\nRequires-Dist: x\nrequires-dist: y\nREQUIRES-DIST: z\n",
    "Name: a\nX-Weird Name: v\nVersion: 1\n",
    "Name: a\nVersion: 1\n \nDescription: after a blank continuation\n",
    "Name: \u00e9\nSummary: na\u00efve \u2603\n",
    "Name: a\x0cb\nVersion: 1\u2028still\x85the same line\n",
    "Name: a\n\r\nVersion: 1\n",
    "Name: a\nName: b\n",
    "Key:value:with:colons\n\tfolded: too\n",
]


# Long lines, and a CRLF across the 8192-character chunks that email's parser reads in.
HEADER_TEXTS += [
    "Name: a\nSummary: " + "x" * 9000 + "\nVersion: 1\n",
    "Name: a\nSummary: " + "x" * (8191 - len("Name: a\nSummary: ")) + "\r\nVersion: 1\r\n",
    "Name: a\nSummary: " + "x" * (8191 - len("Name: a\nSummary: ")) + "\r\n continued\r\n\r\nbody",
]

HEADERS_COMPARED = """
import importlib.util, json, sys
from email.parser import HeaderParser
spec = importlib.util.spec_from_file_location("_hookrunner_under_test", sys.argv[1])
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
texts = json.load(sys.stdin)
print(json.dumps([runner._headers(t) == list(HeaderParser().parsestr(t).items()) for t in texts]))
"""


@pytest.mark.parametrize("version", TARGET_VERSIONS)
def test_headers_are_read_as_email_header_parser_reads_them(version: str) -> None:
    """On every target: the hook process runs there, and so does that version's email package."""
    python = require_interpreter(version)
    out = subprocess.run([python, "-S", "-s", "-c", HEADERS_COMPARED, str(RUNNER)], input=json.dumps(HEADER_TEXTS),
                         capture_output=True, text=True, env=clean_env(), check=True).stdout
    assert [text for text, same in zip(HEADER_TEXTS, json.loads(out)) if not same] == []


def test_headers_of_every_installed_distribution_are_read_as_email_reads_them() -> None:
    runner = _runner()
    seen = 0
    for entry in [str(build_env(f"{sys.version_info[0]}.{sys.version_info[1]}")), *sys.path]:
        if not os.path.isdir(entry):
            continue
        for child in os.listdir(entry):
            for name in ("METADATA", "PKG-INFO"):
                path = os.path.join(entry, child, name)
                if child.endswith((".dist-info", ".egg-info")) and os.path.isfile(path):
                    try:
                        with open(path, encoding="utf-8") as f:  # as _lookup() reads it
                            text = f.read()
                    except UnicodeDecodeError:
                        continue  # _lookup() reports it as unreadable, and reads no header
                    assert runner._headers(text) == list(HeaderParser().parsestr(text).items()), path
                    seen += 1
    assert seen >= 8  # the build env's backends and their requirements, at least


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the listing is for Python 3.10+")
def test_a_dist_info_build_env_is_checked_without_importing_importlib_metadata(tmp_path: Path) -> None:
    """And with an egg-info dir on PYTHONPATH, importlib.metadata does the check (and the build still passes)."""
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("requires = []", "requires = ['flit_core>=3', 'legacy']"))
    env_dir = build_env(f"{sys.version_info[0]}.{sys.version_info[1]}")
    dist_info_site, egg_info_site = tmp_path / "dist-info-site", tmp_path / "egg-info-site"
    _dist_info(dist_info_site, "legacy-1.0.dist-info", {"METADATA": b"Name: legacy\nVersion: 1.0\n"})
    _dist_info(egg_info_site, "legacy-1.0.egg-info", {"PKG-INFO": b"Name: legacy\nVersion: 1.0\n"})
    for site, expected in ((dist_info_site, False), (egg_info_site, True)):
        report = tmp_path / f"report-{site.name}.json"
        result = run_isobuild("wheel", str(src), "-o", str(tmp_path / site.name), env=clean_env(
            PYTHONPATH=os.pathsep.join([str(env_dir), str(site)]), PROBE_REPORT=str(report)))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert read_report(report)["imported"] == {"importlib.metadata": expected, "email": expected}, site.name
