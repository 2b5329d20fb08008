"""The hook process: runs inside the target interpreter, started as ``python -S -s _hookmain.py``.

Stdlib-only, and valid on Python 3.8+. One process serves a whole build: the
frontend sends JSON lines on stdin and reads JSON lines on stdout; the backend's
own stdout is pointed at stderr first, so nothing it prints can corrupt the
channel or the frontend's stdout.

Messages from the frontend:
  {"op": "setup", "pythonpath": [...], "site_dirs": [...], "backend_path": [...],
   "system_site": bool, "shim_dir": str, "requires": null or [...], "markers": bool,
   "ahead": null or a "run" message plus "hold": bool}
      -> {"sys_path": [...], "executable": ..., "markers": {...}, "dists": {...}, ...}
      "ahead" is the build's first hook, run before it is asked for (see
      run_ahead()): with "hold", before the reply and with its output held back
      (get_requires_for_build_*, while the frontend checks build-system.requires);
      without, right after the reply, its output shown as it comes (with -x, the
      build hook itself). With "requires" (build-system.requires), "dists" holds
      what the check will look up: their distributions and those of the hook
      run ahead's answer, with their own requirements', as "dists" answers them.
  {"op": "dists", "names": [normalized names]}
      -> {"dists": {name: {"version", "requires", "location"} or null}}
  {"op": "run", "argv": [script, args...], "cwd": str, "env": {...}}
      -> {"status": "ok" | "exit" | "exception" | "backend_unavailable" | "hook_missing", ...}
      ("ahead": true with "ok" when the answer was the one run_ahead() kept)
      Runs a pyproject-hooks style script (it must define ``main()``) in this
      process, so the backend is imported once for all hooks of a build.
"""

import json
import os
import sys

_SCRIPTS = {}  # script path -> its globals, loaded once
_DIST_INDEX = None  # normalized name -> its distribution (see _lookup()), first on sys.path wins
_SETUP_PATH = []  # sys.path as set up, before any backend import could extend it
_AHEAD = {}  # (script, hook) -> (the "run" message, answer, exception, warnings, fd of held output or None)
_AFTER_REPLY = []  # a hook to run ahead once the setup's reply is sent


def _normalize(name):
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _markers():
    """PEP 508 environment markers of this interpreter, as packaging.markers computes them."""
    import platform

    def full_version(info):
        version = "{0.major}.{0.minor}.{0.micro}".format(info)
        if info.releaselevel != "final":
            version += info.releaselevel[0] + str(info.serial)
        return version

    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _load_shim(shim_dir):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_isobuild_shim", os.path.join(shim_dir, "sitecustomize.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _venv_prefixes():
    """site.venv()'s prefix logic, without the site dirs it would add: sys.prefix as a venv's python has it."""
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    site_prefix = os.path.dirname(exe_dir)
    for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(site_prefix, "pyvenv.cfg")):
        if os.path.isfile(conf):
            break
    else:
        return None
    system_site = "true"
    with open(conf, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "include-system-site-packages":
                system_site = value.strip().lower()
    prefixes = [site_prefix] + ([sys.prefix] if system_site == "true" else [])
    sys.prefix = sys.exec_prefix = site_prefix
    return prefixes


def setup(msg):
    """Build sys.path from the stdlib and the pipeline's dirs only; prepare the children's environment."""
    import site

    stdlib = list(sys.path)  # -S, no PYTHONPATH, and main() removed isobuild's dir
    base = list(msg["pythonpath"]) + stdlib
    system = site.getsitepackages(_venv_prefixes())
    excluded_system = [] if msg["system_site"] else system
    site_dirs = list(msg["site_dirs"]) + (system if msg["system_site"] else [])

    shim = _load_shim(msg["shim_dir"])
    shim.isolate(list(msg["backend_path"]) + base, site_dirs)

    # Children started with sys.executable: no user site, and the shim puts
    # their sys.path back to `base` + `site_dirs` before their code runs.
    child_env = {
        "PYTHONPATH": os.pathsep.join([msg["shim_dir"]] + list(msg["pythonpath"])),
        "PYTHONNOUSERSITE": "1",
        "_ISOBUILD_HOOK_PATH": json.dumps(
            {
                "identity": [sys.executable, sys.version],
                "path": base,
                "site_dirs": site_dirs,
                "system_site": msg["system_site"],
            }
        ),
    }
    os.environ.update(child_env)
    _SETUP_PATH[:] = sys.path
    hello = {
        "sys_path": list(sys.path),
        "executable": sys.executable,
        "version": list(sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "excluded": {"user_site": site.getusersitepackages(), "system_site": excluded_system},
        "child_env": child_env,
    }
    answer = None
    ahead = msg.get("ahead")
    if ahead and sys.version_info >= (3, 8):  # older: the frontend refuses it on hello
        if ahead.get("hold"):
            answer = run_ahead(ahead)
        else:
            _AFTER_REPLY.append(ahead)
    if msg.get("requires") is not None:
        more = answer if isinstance(answer, list) else []  # get_requires' answer
        hello["dists"] = _prefetch(list(msg["requires"]) + more)
    if msg.get("markers"):  # not asked by a frontend running on this very interpreter
        hello["markers"] = _markers()
    return hello


def _names(requirements):
    """The names that requirement strings start with: a guess at what the check looks up.

    packaging, in the frontend, decides what a requirement means; a wrong
    guess costs a "dists" message, never a wrong answer.
    """
    import re

    names = []
    for text in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text) if isinstance(text, str) else None
        if match:
            names.append(_normalize(match.group(1).rstrip("._-")))
    return names


def _prefetch(requirements):
    """The distributions of these requirements and, recursively, of theirs: one message for the whole check."""
    found = {}
    todo = _names(requirements)
    while todo:
        name = todo.pop()
        if name not in found:
            found[name] = info = _lookup(name)
            if info is not None:
                todo.extend(_names(info["requires"]))
    return found


def _lookup(name):
    """A distribution as importlib.metadata sees it on the sys.path that setup() built.

    Not the current sys.path: an imported backend may have extended it with
    vendored distributions (setuptools' _vendor holds a wheel), which would
    satisfy a requirement that the build environment does not.
    """
    global _DIST_INDEX
    if _DIST_INDEX is None:
        _DIST_INDEX = _listed_index(_SETUP_PATH)
        if _DIST_INDEX is None:
            _DIST_INDEX = _importlib_index(_SETUP_PATH)
    dist = _DIST_INDEX.get(name)
    if dist is None:
        return None
    location = str(dist.locate_file(""))
    try:
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("") or ""
        headers = _headers(text)
        requires = _get_all(headers, "Requires-Dist")
        if requires is None and dist.read_text("requires.txt") is not None:
            requires = dist.requires  # egg-info: importlib.metadata turns its sections into markers
    except Exception as exc:  # no version satisfies a specifier, and the check says why
        return {"version": "(unreadable metadata: {}: {})".format(type(exc).__name__, exc), "requires": [],
                "location": location}
    version = _get_all(headers, "Version")
    return {"version": version[0] if version else None, "requires": list(requires or []), "location": location}


def _importlib_index(path):
    """normalized name -> importlib.metadata.Distribution, first on ``path`` wins."""
    from importlib.metadata import DistributionFinder, MetadataPathFinder

    # The path finder alone: a meta path finder that the backend's import
    # installed must not contribute distributions either.
    index = {}
    for dist in MetadataPathFinder.find_distributions(DistributionFinder.Context(path=list(path))):
        found = getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or ""
        index.setdefault(_normalize(found), dist)
    return index


def _listed_index(path):
    """importlib.metadata's index, from directory listings, where that is all it reads; else None.

    Importing importlib.metadata and the email package it parses with takes
    about 5 ms, more than a lean backend's build hook, while a build
    environment is usually nothing but directories of .dist-info dirs (pip
    install --target, wheel installs). Those are named here as Python 3.10+'s
    importlib.metadata names them (by the directory's name, in listing order,
    first path entry first). Whatever the listing cannot vouch for goes to
    importlib.metadata whole: eggs, egg-info, a file or an unreadable dir on
    sys.path, a .dist-info name without a name part, and older Pythons (which
    name distributions by their Name header).
    """
    if sys.version_info < (3, 10):
        return None
    index = {}
    for entry in path:
        if os.path.basename(entry).lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(entry or ".")
        except FileNotFoundError:
            continue
        except OSError:  # a zip file, or unreadable: importlib.metadata knows what to make of it
            return None
        for child in children:
            low = child.lower()
            if low.endswith(".egg-info"):
                return None
            if low.endswith(".dist-info"):
                # Named as PathDistribution._normalized_name names it; where that
                # finds no name (".DIST-INFO", ".dist-info", "-1.0.dist-info"),
                # importlib.metadata reads the Name header instead.
                stem, ext = os.path.splitext(child)
                name = stem.partition("-")[0]
                if ext != ".dist-info" or not name:
                    return None
                index.setdefault(_normalize(name), _DistInfo(os.path.join(entry, child)))
    return index


class _DistInfo:
    """What _lookup() reads of an importlib.metadata.PathDistribution, read the same way."""

    def __init__(self, path):
        self._path = path

    def read_text(self, filename):
        try:
            with open(os.path.join(self._path, filename) if filename else self._path, encoding="utf-8") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None

    def locate_file(self, path):
        import pathlib

        return pathlib.Path(self._path).parent / path

    @property
    def requires(self):
        import pathlib
        from importlib.metadata import PathDistribution

        return PathDistribution(pathlib.Path(self._path)).requires


def _headers(text):
    """The (name, value) headers of a metadata file, as email's HeaderParser reads them (policy compat32).

    The email package's import costs more than a lean backend's build hook; this
    is its header loop: lines end in CRLF, CR or LF; the block ends at the first
    line that is neither a header nor a continuation; a leading "From " line is
    an envelope, a misplaced one is skipped, and a value keeps its folds.
    """
    import re

    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)
    header = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
    block = []
    for line in lines:
        if not header.match(line):
            break
        block.append(line)
    headers = []
    source = []
    for number, line in enumerate(block):
        if line[0] in " \t":
            if source:  # else a continuation of nothing: ignored
                source.append(line)
            continue
        if source:
            headers.append(_header_source_parse(source))
            source = []
        if line.startswith("From "):
            if number == len(block) - 1 and number:  # the body's first line, after all
                break
            continue
        if line.find(":") > 0:  # else no name: ignored
            source = [line]
    if source:
        headers.append(_header_source_parse(source))
    return headers


def _header_source_parse(source):
    name, value = source[0].split(":", 1)
    return name, (value.lstrip(" \t") + "".join(source[1:])).rstrip("\r\n")


def _get_all(headers, name):
    """email.message.Message.get_all(): the values of every header of that name (any case), or None."""
    found = [value for key, value in headers if key.lower() == name.lower()]
    return found or None


def dists(msg):
    return {"dists": {name: _lookup(name) for name in msg["names"]}}


def _diagnose(script_globals, hook_name):
    """After a hook failed: was it the backend import, or a mandatory hook it lacks?"""
    build_backend = script_globals.get("_build_backend")
    if build_backend is None or hook_name not in script_globals.get("HOOK_NAMES", ()):
        return None
    try:
        backend = build_backend()
    except Exception as exc:
        return {"status": "backend_unavailable", "message": "{}: {}".format(type(exc).__name__, exc)}
    if hook_name in ("build_wheel", "build_sdist") and not hasattr(backend, hook_name):
        return {"status": "hook_missing", "hook": hook_name}
    return None


def _script(msg):
    os.chdir(msg["cwd"])
    os.environ.update(msg["env"])
    script = msg["argv"][0]
    if script not in _SCRIPTS:
        # As a module, not with runpy.run_path(): a module's cached bytecode is
        # used (pip compiles _in_process.py on install), a script is compiled anew.
        from importlib.machinery import SourceFileLoader

        loader = SourceFileLoader("__isobuild_hooks__", script)
        module = type(sys)("__isobuild_hooks__")
        module.__file__ = script
        module.__loader__ = loader
        writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # not into the frontend's install
        try:
            loader.exec_module(module)
        finally:
            sys.dont_write_bytecode = writes
        _SCRIPTS[script] = vars(module)
    return _SCRIPTS[script]


def _held_output():
    """An unnamed file for held-back output: nothing to clean up, whatever kills this process."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
        except OSError:
            pass
    path = os.path.join(directory, ".isobuild-held-{}-{}".format(os.getpid(), os.urandom(8).hex()))
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.unlink(path)
    return fd


def run_ahead(msg):
    """Call a hook before it is asked for.

    The frontend sends the build's first hook with the setup: get_requires_for_build_*,
    which overlaps the frontend's own imports and its check of build-system.requires,
    or with -x (no check to wait for) the build hook itself. What the hook did (its
    answer or its exception, and its warnings) is kept for run(), which replays it
    inside pyproject-hooks' own main() when pyproject-hooks asks for the same hook
    with the same arguments. With "hold", its stdout and stderr are held back and
    replayed first then, or never shown if the build stops before (a missing
    requirement, an interrupt); a build hook's output is not held: it shows as it comes.
    """
    import warnings

    script_globals = _script(msg)
    hook = msg["argv"][1]
    held = _held_output() if msg.get("hold") else None
    if held is not None:
        saved = (os.dup(1), os.dup(2))
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(held, 1)
        os.dup2(held, 2)
    result = error = None
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # as main() records them
            result = script_globals[hook](**msg["kwargs"])
    except BaseException as exc:
        error = exc
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if held is not None:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    _AHEAD[(msg["argv"][0], hook)] = (msg, result, error, caught, held)
    return result


def _replay(held):
    if held is None:  # shown already
        return
    os.lseek(held, 0, os.SEEK_SET)
    while True:
        chunk = os.read(held, 1 << 16)
        if not chunk:
            break
        while chunk:
            chunk = chunk[os.write(2, chunk):]
    os.close(held)


def _backend_spec(env):
    """The backend and its backend-path as _in_process.py reads them: pyproject-hooks 1.3 sends
    the path as JSON, earlier releases joined with os.pathsep (the frontend sends both ahead)."""
    if "_PYPROJECT_HOOKS_BACKEND_PATH_JSON" in env:
        path = json.loads(env["_PYPROJECT_HOOKS_BACKEND_PATH_JSON"])
    else:
        path = [entry for entry in env.get("_PYPROJECT_HOOKS_BACKEND_PATH", "").split(os.pathsep) if entry]
    return env.get("_PYPROJECT_HOOKS_BUILD_BACKEND"), path


def _answered_ahead(msg):
    """The hook as run_ahead() ran it, if that was this very call (same hook, arguments, cwd, environment)."""
    argv = msg["argv"]
    ahead = _AHEAD.pop((argv[0], argv[1] if len(argv) > 2 else None), None)
    if ahead is None:
        return None
    earlier, result, error, caught, held = ahead
    try:
        with open(os.path.join(argv[2], "input.json"), encoding="utf-8") as f:
            kwargs = json.load(f).get("kwargs")
    except (OSError, ValueError):
        kwargs = None
    if (kwargs, msg["cwd"], _backend_spec(msg["env"])) != (earlier["kwargs"], earlier["cwd"], _backend_spec(earlier["env"])):
        if held is not None:
            os.close(held)
        return None
    _replay(held)

    def answer(**kwargs):
        import warnings

        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        if error is not None:
            raise error
        return result

    return answer


def _without_runner(tb):
    """The traceback without this runner's frames (run, a replayed answer): the backend's are what help."""
    kept = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            kept.append(tb)
        tb = tb.tb_next
    for earlier, later in zip(kept, kept[1:] + [None]):
        earlier.tb_next = later
    return kept[0] if kept else None


def run(msg):
    import traceback

    argv = msg["argv"]
    script_globals = _script(msg)
    sys.argv = list(argv)
    answer = _answered_ahead(msg)
    if answer is not None:
        original, script_globals[argv[1]] = script_globals.get(argv[1]), answer
    try:
        script_globals["main"]()
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):
            sys.stderr.write("{}\n".format(code))
            code = 1
        return {"status": "exit", "code": code or 0}
    except BaseException as exc:
        diagnosis = _diagnose(script_globals, argv[1] if len(argv) > 1 else "")
        if diagnosis is not None:
            return diagnosis
        traceback.print_exception(type(exc), exc, _without_runner(exc.__traceback__))
        return {"status": "exception", "type": type(exc).__name__, "message": str(exc)}
    finally:
        if answer is not None:
            script_globals[argv[1]] = original
        sys.stdout.flush()
        sys.stderr.flush()
    return {"status": "ok", "ahead": answer is not None}


def scheme(name, prefix):
    """Print the sysconfig paths an install uses: posix_prefix under a prefix, unless a scheme is named."""
    import sysconfig

    _venv_prefixes()
    schemes = sysconfig.get_scheme_names()
    if not name:
        if prefix:
            name = "posix_prefix" if "posix_prefix" in schemes else sysconfig.get_default_scheme()
        else:
            name = getattr(sysconfig, "get_default_scheme", getattr(sysconfig, "_get_default_scheme", None))()
    if name not in schemes:
        return {"error": "--scheme {}: {} knows the schemes {}".format(name, sys.executable, ", ".join(schemes))}
    variables = None
    if prefix:
        variables = {"base": prefix, "platbase": prefix, "installed_base": prefix, "installed_platbase": prefix}
    return {"scheme": name, "paths": sysconfig.get_paths(name, vars=variables)}


def _compile_one(job):
    import py_compile

    source, final, level, mode = job
    kwargs = {"optimize": level, "doraise": True}
    if mode:
        kwargs["invalidation_mode"] = py_compile.PycInvalidationMode[mode.upper().replace("-", "_")]
    try:
        return [py_compile.compile(source, dfile=final, **kwargs), final]
    except py_compile.PyCompileError:
        return None  # as pip and installer do: a file that does not compile is left without bytecode


def _compile_batch(jobs):
    return [_compile_one(job) for job in jobs]


def compile_files(lines, batch_size=32):
    """Byte-compile with this interpreter (its magic number), as the frontend sends the files.

    The first line holds the options; each next one is a [written path, final
    path] pair, sent while the wheel is still being unpacked, so unpacking and
    compiling overlap. The first batch is compiled here; later ones go to a pool
    of ``jobs`` processes. At EOF the .pyc files written are listed, in the order sent.
    """
    options = json.loads(next(lines))
    levels, mode, jobs = options["levels"], options["mode"], options["jobs"]
    pool = None
    done = []  # a finished batch's results, or a future of them
    batch = []

    def flush():
        nonlocal pool
        if not done or jobs < 2:
            done.append(_compile_batch(batch))
        else:
            if pool is None:
                import concurrent.futures
                import multiprocessing

                # fork: workers that spawn or a forkserver start (3.14's default) would
                # re-run _hookmain.py, and could not import this module by name.
                context = multiprocessing.get_context("fork") if os.name == "posix" else None
                pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context)
            done.append(pool.submit(_compile_batch, list(batch)))
        del batch[:]

    for line in lines:
        source, final = json.loads(line)
        batch.extend((source, final, level, mode) for level in levels)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    results = []
    for item in done:
        results.extend(item if isinstance(item, list) else item.result())
    if pool is not None:
        pool.shutdown()
    return [r for r in results if r]


# Small steps (a few ms each), so that the setup never waits long: what setup() and
# pyproject-hooks' script import first, then what backends build wheels with.
# Not importlib.metadata: the index needs it only for what _listed_index() leaves to it.
_WHILE_WAITING = ("site", "shutil", "traceback", "glob", "importlib.machinery", "typing", "pathlib", "zipfile")


def _while_waiting(channel):
    """Until the frontend's setup arrives, import the stdlib modules this process uses anyway.

    The frontend sends the setup once argparse and pyproject.toml are done;
    the time until then is free. The backend later finds these in sys.modules,
    as it would have after setup() and the hook script had imported them.
    Modules only: nothing is run, and sys.path is untouched.
    """
    import select

    for name in _WHILE_WAITING:
        if select.select([channel], [], [], 0)[0]:
            return
        try:
            __import__(name)
        except ImportError:
            pass


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != here]  # isobuild's own dir
    if sys.argv[1:2] == ["scheme"]:
        print(json.dumps(scheme(sys.argv[2], sys.argv[3])))
        return
    if sys.argv[1:2] == ["compile"]:
        print(json.dumps(compile_files(iter(sys.stdin.buffer))))
        return
    # Keep the control channel private: the frontend's pipes move to new fds
    # (not inherited by children), stdin becomes /dev/null, stdout becomes stderr.
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)

    ops = {"setup": setup, "dists": dists, "run": run}
    _while_waiting(channel_in)
    for line in channel_in:
        msg = json.loads(line.decode("utf-8"))
        reply = ops[msg["op"]](msg)
        channel_out.write(json.dumps(reply).encode("utf-8") + b"\n")
        channel_out.flush()
        while _AFTER_REPLY:
            run_ahead(_AFTER_REPLY.pop())
    # The frontend is done with us. atexit handlers run (backends' temp dirs go), but
    # tearing down every module of a large backend would only keep the frontend waiting.
    # Closing the channel tells the frontend that everything this process does is done.
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    channel_out.close()
    os._exit(0)


