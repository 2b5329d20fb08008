"""The build's first hook runs ahead, while the frontend checks build-system.requires.

The hook process runs get_requires_for_build_* (with -x: only the backend's
import) right after its setup and holds the output back; it is shown when the
frontend asks for that hook, and never if the build stops before that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import clean_env, copy_fixture, read_report, run_isobuild


def _probe_requiring(tmp_path: Path, requirement: str) -> Path:
    src = copy_fixture("probe", tmp_path)
    pyproject = src / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("requires = []", f"requires = [{requirement!r}]"))
    return src


def test_first_hook_runs_ahead_and_its_output_shows_once_in_order(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=early-words")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    err = result.stderr.decode()
    assert "get_requires_for_build_wheel (run ahead): nothing more" in err
    assert err.count("early-words") == 2  # its stdout and its stderr, both on isobuild's stderr
    assert err.index("early-words") < err.index("get_requires_for_build_wheel (run ahead)")
    assert "early-words" not in result.stdout.decode()


def test_output_run_ahead_is_dropped_when_a_static_requirement_is_missing(tmp_path: Path) -> None:
    src = _probe_requiring(tmp_path, "not-installed-anywhere")
    touched = tmp_path / "get-requires-ran"
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=early-words", "-C", f"requires-touch={touched}")
    assert result.returncode == 3
    assert touched.exists()  # it did run ahead ...
    assert b"early-words" not in result.stderr  # ... and the build stopped before its output was due
    assert b"not-installed-anywhere" in result.stderr
    assert not (src / "dist").exists()


def test_a_crash_in_the_hook_run_ahead_shows_as_it_happens(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), "-C", "requires-echo=last-words", "-C", "requires-abort=1")
    assert result.returncode == 4
    err = result.stderr.decode()
    assert "killed by SIGABRT during get_requires_for_build_wheel" in err
    assert "last-words" in err  # from the run that is not held back
    assert "Traceback" not in err
    assert not (src / "dist").exists()


def test_skip_dependency_check_asks_no_get_requires(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    touched = tmp_path / "get-requires-ran"
    result = run_isobuild("wheel", str(src), "-x", "-C", f"requires-touch={touched}", "-C", "echo=built")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert not touched.exists()
    assert b"get_requires" not in result.stderr
    assert result.stderr.count(b"built") == 2


def test_hook_process_inherits_no_stray_descriptor(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    report = tmp_path / "report.json"
    read_end, write_end = os.pipe()
    stray = 97
    os.dup2(write_end, stray)
    try:
        proc = subprocess.run([sys.executable, "-m", "isobuild", "wheel", str(src)], pass_fds=(stray,),
                              env=clean_env(PROBE_REPORT=str(report)), capture_output=True, timeout=300)
    finally:
        for fd in (read_end, write_end, stray):
            os.close(fd)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    fds = read_report(report)["fds"]
    assert fds is not None and stray not in fds


def test_hello_carries_the_distributions_the_check_looks_up(tmp_path: Path) -> None:
    """As importlib.metadata reads them (egg-info's requires.txt included), requirements' requirements too."""
    import importlib.metadata

    from conftest import build_env
    from isobuild.deps import Environment, check
    from isobuild.hookprocess import HookProcess
    from isobuild.isolation import Isolation

    env_dir = build_env(f"{sys.version_info[0]}.{sys.version_info[1]}")
    legacy = tmp_path / "legacy-site" / "legacy.egg-info"
    legacy.mkdir(parents=True)
    (legacy / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: legacy\nVersion: 2.0\n\nA description.\n")
    (legacy / "requires.txt").write_text("hatchling\n\n[extra1]\nabsent-dist>=1\n")
    path = [str(env_dir), str(legacy.parent)]

    process = HookProcess(sys.executable)
    try:
        process.send_setup(Isolation(sys.executable, pythonpath=tuple(path)), [], ["legacy[extra1]", "hatchling >= 1"],
                           markers=True)
        hello = process.hello()
    finally:
        process.kill()

    expected = {}
    for dist in importlib.metadata.distributions(path=path):
        name = dist.metadata["Name"].lower().replace("_", "-")
        expected.setdefault(name, {"version": dist.version, "requires": dist.requires or []})
    hatchling_needs = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
                       for r in expected["hatchling"]["requires"] if "extra ==" not in r}
    assert {"legacy", "hatchling", "absent-dist"} | hatchling_needs <= set(hello.dists)
    assert hello.dists["absent-dist"] is None
    for name, info in hello.dists.items():
        if info is not None:
            assert {"version": info["version"], "requires": info["requires"]} == expected[name], name
    assert hello.dists["legacy"]["requires"] == ["hatchling", 'absent-dist>=1; extra == "extra1"']

    def no_lookup(names: object) -> dict[str, None]:
        pytest.fail(f"the check asked the hook process for {names}")

    statuses = check(["hatchling >= 1", "legacy"], "test", Environment(no_lookup, hello.markers, hello.dists))
    assert [s.satisfied for s in statuses] == [True, True]


def test_with_x_the_build_hook_itself_runs_ahead_once(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    count = tmp_path / "hooks-called"
    result = run_isobuild("wheel", str(src), "-x", "-C", "echo=built-words", "-C", f"count={count}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    err = result.stderr.decode()
    assert "build_wheel (run ahead): probe-1.0-py3-none-any.whl" in err
    assert count.read_text() == "build_wheel\n"
    assert err.count("built-words") == 2 and err.index("built-words") < err.index("build_wheel (run ahead)")


def test_a_missing_requirement_in_get_requires_answer_means_no_build_hook_at_all(tmp_path: Path) -> None:
    src = copy_fixture("probe", tmp_path)
    count = tmp_path / "hooks-called"
    result = run_isobuild("wheel", str(src), "-C", "requires=not-installed-anywhere>=2", "-C", f"count={count}")
    assert result.returncode == 3, result.stderr.decode(errors="replace")
    assert count.read_text() == "get_requires\n"
    assert not (src / "dist").exists()


@pytest.mark.parametrize("options, hook", [(["-C", "requires-fail=broken-words"], "get_requires"),
                                           (["-x", "-C", "fail=broken-words"], "build_wheel")])
def test_a_failure_run_ahead_shows_once_as_it_happened(tmp_path: Path, options: list[str], hook: str) -> None:
    """Kept and replayed, not run again: a failing build can take long."""
    src = copy_fixture("probe", tmp_path)
    count = tmp_path / "hooks-called"
    result = run_isobuild("wheel", str(src), "-C", "echo=echo-words", "-C", f"count={count}", *options)
    err = result.stderr.decode()
    assert result.returncode == 4, err
    assert count.read_text() == f"{hook}\n"
    assert err.count("RuntimeError: broken-words") == 2  # the traceback's last line, and isobuild's ERROR line
    assert "probe_backend.py" in err and "_hookrunner" not in err.split("ERROR")[0].split("Traceback")[-1]
    assert not (src / "dist").exists()


@pytest.mark.parametrize("options", [["-C", "requires-warn=careful-words"], ["-x", "-C", "warn=careful-words"]])
def test_warnings_of_a_hook_run_ahead_reach_the_frontend_as_pyproject_hooks_forwards_them(
        tmp_path: Path, options: list[str]) -> None:
    src = copy_fixture("probe", tmp_path)
    result = run_isobuild("wheel", str(src), *options)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err.count("BuildBackendWarning: careful-words") == 1, err


def test_marker_values_are_the_same_from_the_hook_process_and_from_packaging_here() -> None:
    """The frontend takes them from packaging when the target is its own interpreter: they must agree."""
    from packaging.markers import default_environment

    from isobuild.hookprocess import HookProcess
    from isobuild.isolation import Isolation

    process = HookProcess(sys.executable)
    try:
        process.send_setup(Isolation(sys.executable), [], [], markers=True)
        hello = process.hello()
    finally:
        process.kill()
    assert hello.markers == dict(default_environment())


def test_unreadable_metadata_of_a_requirement_is_reported_by_the_check(tmp_path: Path) -> None:
    """Not a dead hook process (which would read as an unusable interpreter): exit 3, saying why."""
    site = tmp_path / "site"
    info = site / "latin.egg-info"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_bytes("Metadata-Version: 1.1\nName: latin\nVersion: 1.0\nAuthor: Jos\xe9\n".encode("latin-1"))
    src = _probe_requiring(tmp_path, "latin>=1")
    result = run_isobuild("wheel", str(src), env=clean_env(PYTHONPATH=str(site)))
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 3, err
    assert "unreadable metadata: UnicodeDecodeError" in err and "Traceback" not in err
    assert not (src / "dist").exists()


def test_with_x_the_build_output_shows_as_it_comes(tmp_path: Path) -> None:
    """With -x the build hook runs ahead, but its output is not held: an interrupted build has shown it."""
    src = copy_fixture("probe", tmp_path)
    pidfile = tmp_path / "grandchild.pid"
    proc = subprocess.Popen([sys.executable, "-m", "isobuild", "wheel", str(src), "-x", "-C", "echo=progress-words",
                             "-C", f"spawn-sleep={pidfile}"], env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.decode().count("progress-words") == 2


def test_with_x_requirement_strings_are_not_even_parsed(tmp_path: Path) -> None:
    src = _probe_requiring(tmp_path, "not a >>= requirement")
    assert run_isobuild("wheel", str(src)).returncode == 2
    result = run_isobuild("wheel", str(src), "-x")
    assert result.returncode == 0, result.stderr.decode(errors="replace")


def test_compiling_with_a_pool_works_whatever_the_default_start_method(tmp_path: Path) -> None:
    """Python 3.14 starts pool workers with a forkserver by default; they would re-run _hookmain.py."""
    from isobuild.hookprocess import RUNNER

    sources = []
    for i in range(100):
        path = tmp_path / f"m{i:03}.py"
        path.write_text(f"VALUE = {i}\n")
        sources.append([str(path), str(path)])
    driver = (
        "import multiprocessing, os, runpy, sys\n"
        "multiprocessing.set_start_method('forkserver')\n"
        "sys.argv = [sys.argv[1], 'compile']\n"
        "sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as for python _hookmain.py\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    lines = [json.dumps({"levels": [0], "mode": None, "jobs": 2})] + [json.dumps(pair) for pair in sources]
    proc = subprocess.run([sys.executable, "-S", "-s", "-c", driver, RUNNER], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 100
