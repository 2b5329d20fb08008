# isobuild's sitecustomize for Python processes that a build backend starts.
#
# isobuild puts this directory first on PYTHONPATH for the hook process's
# children (and sets PYTHONNOUSERSITE=1 for every child).
#
# In a child of the hooks' own interpreter (same sys.executable, same
# sys.version), site.main() has already appended the system site dirs by the
# time this runs: sys.path is put back to what the hooks have, before the
# child's own code runs. Limit: a .pth file in the system site has already
# executed its `import` lines by then; Python has no switch that prevents that
# short of -S.
#
# Any other interpreter (Mercurial's, a distribution's meson, any
# #!/usr/bin/python3 script) is left alone: this directory leaves its sys.path,
# and its own sitecustomize, if it has one, is imported in this one's place.
#
# A child of the hooks' interpreter also reports, at exit, the files of the
# modules it loaded: one JSON line appended to the file beside the one that
# _ISOBUILD_HOOK_PATH names (the frontend maps them to distributions: usage.py).
# Modules loaded before this shim ran are left out: the interpreter's start-up
# loaded them (a system site .pth's import, see above), not the child's code.
# A child that ends by os._exit() or a signal reports nothing.
#
# --only-declared (hide()): a Hider takes PathFinder's place, and the importlib_metadata backport's own
# finder, once the backport is imported (after_import(): Python has no post-import hook, so a finder first
# in sys.meta_path wraps the loader of the modules watched), hides the same distributions.
#
# Any interpreter that honours PYTHONPATH may import this file (even Python 2),
# so it keeps to syntax every version parses and never raises.
import os
import sys

# Imported where used (lazy): this file runs at the start-up of every Python child of a build, of any
# interpreter (most are left alone and need none of these), so each import waits for its use:
#   site: only when a child of the hooks' interpreter gets the hooks' sys.path back (isolate)
#   json: only when the hooks' sys.path is read, and for the report at exit
#   atexit: only in a child of the hooks' interpreter (the report at exit)
#   importlib.machinery, re: only under --only-declared (the Hider and its names)

_HERE = os.path.dirname(os.path.abspath(__file__))


def isolate(path, site_dirs):
    """Make sys.path exactly `path`, then add `site_dirs` as site dirs (their .pth files run)."""
    import site  # lazy: see the top

    sys.path[:] = list(path)
    for site_dir in site_dirs:
        site.addsitedir(site_dir)


def add_site_dir(site_dir, hidden, deferred=None):
    """site.addsitedir(site_dir) for --only-declared: the .pth files `hidden` says no to are not run. The
    .pth format as the site module documents it: a line starting with `import` is executed, `#` starts a
    comment, any other line is a dir appended to sys.path if it exists. With `deferred` (a list), the
    import lines are appended to it as (file, line), for run_deferred() once the closure is known."""
    site_dir = os.path.abspath(site_dir)
    if site_dir not in sys.path:
        sys.path.append(site_dir)
    try:
        names = sorted(name for name in os.listdir(site_dir) if name.endswith(".pth") and not name.startswith("."))
    except OSError:
        return
    for name in names:
        pth = os.path.join(site_dir, name)
        if hidden(pth):
            continue
        try:
            with open(pth) as f:
                lines = f.read().splitlines()
            for line in lines:
                if line.startswith(("import ", "import\t")):
                    if deferred is None:
                        exec(line)
                    else:
                        deferred.append((pth, line))
                elif line.strip() and not line.startswith("#"):
                    entry = os.path.abspath(os.path.join(site_dir, line.rstrip()))
                    if entry not in sys.path and os.path.exists(entry):
                        sys.path.append(entry)
        except Exception as exc:  # as site does: say so, go on with the next file
            sys.stderr.write("Error processing %s: %s\n" % (pth, exc))


def run_deferred(deferred, hidden):
    """The deferred .pth import lines (see add_site_dir) of the files not `hidden` now, in order;
    the others stay in `deferred` (a later closure, with get_requires_for_build_*'s, may reveal them)."""
    for pth, line in list(deferred):
        if hidden(pth):
            continue
        deferred.remove((pth, line))
        try:
            exec(line)
        except Exception as exc:
            sys.stderr.write("Error processing %s: %s\n" % (pth, exc))


def _step_aside():
    """For another interpreter: as if isobuild had not been here, own sitecustomize included."""
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
    del sys.modules["sitecustomize"]
    try:
        import sitecustomize  # noqa: F401  (the interpreter's own: it takes this module's place)
    except ImportError:
        pass


def _spec():
    """What the hooks' sys.path is, from the file _ISOBUILD_HOOK_PATH names (not the variable itself: a
    variable over 128 KiB would make every exec fail). No file (the command is over): nothing to restore."""
    import json  # lazy: see the top

    name = os.environ.get("_ISOBUILD_HOOK_PATH")
    if not name:
        return {}
    try:
        with open(name) as f:
            return json.load(f)
    except (IOError, OSError, ValueError):
        return {}


def module_files(modules):
    """The files the modules in `modules` (sys.modules) were loaded from: __file__, else their spec's
    origin; built-in and frozen modules have none. Namespace packages have no file of their own: having
    every portion on __path__ is no use of them, what is loaded from a portion is."""
    files = []
    for name, module in list(modules.items()):
        try:
            found = getattr(module, "__file__", None) or getattr(getattr(module, "__spec__", None), "origin", None)
        except Exception:  # a lazy module object may raise on any attribute
            continue
        if isinstance(found, str) and os.path.isabs(found) and not name.startswith("_isobuild_"):
            files.append(found)
    return files


def _report(name, before):
    """At exit: the files of the modules this child loaded (not in `before`), one JSON line appended (one
    write: lines of children exiting together do not interleave)."""
    import json  # lazy: see the top

    files = module_files(dict((key, module) for key, module in list(sys.modules.items()) if key not in before))
    refused = [item for finder in sys.meta_path if isinstance(finder, Hider) for item in finder.refused]
    data = (json.dumps({"files": files, "refused": refused}) + "\n").encode("utf-8", "surrogateescape")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name + ".loaded", flags, 384)  # 0o600, spelled so that Python 2 parses it
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except (IOError, OSError):
        pass


class Hider(object):
    """--only-declared: in sys.meta_path in PathFinder's place, PathFinder minus what hidden distributions
    hold. A module or namespace portion is hidden when its file or dir is (or is under) one of `roots`
    (`root.EXT` too: a top-level name); a distribution, when its (location, canonical name) is in `dists`.
    Imports of hidden modules fail as in an environment without them (ModuleNotFoundError, or the next
    entry's module); importlib.metadata does not find hidden distributions. What was refused is kept in
    `refused` (module files, distribution names) for the frontend's hint."""

    def __init__(self, roots, dists, finder):
        self.roots = set(roots)
        self.dists = set(tuple(dist) for dist in dists)
        self.locations = set(location for location, _ in self.dists)
        self.finder = finder
        self.refused = []

    def hidden(self, path):
        path = os.path.normpath(path)
        head, tail = os.path.split(path)
        if os.path.join(head, tail.partition(".")[0]) in self.roots:
            return True
        while tail:
            if path in self.roots:
                return True
            path, tail = os.path.split(path)
        return False

    def find_spec(self, name, path=None, target=None):
        import importlib.machinery  # lazy: see the top

        portions = []
        refused = []  # kept only if no other entry has the module: setuptools' own copies serve it then
        for entry in list(sys.path if path is None else path):
            spec = self.finder.find_spec(name, [entry], target)
            if spec is None:
                continue
            if spec.loader is None:  # a namespace portion (or several)
                portions += [p for p in (spec.submodule_search_locations or ()) if not self.hidden(p)]
            elif spec.origin and self.hidden(spec.origin):
                refused.append(spec.origin)
            else:
                return spec
        self.refused += refused
        if not portions:
            return None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = portions
        return spec

    def find_distributions(self, *args, **kwargs):
        return self.visible(self.finder.find_distributions(*args, **kwargs), *args, **kwargs)

    def visible(self, dists, context=None, **kwargs):
        """The distributions of `dists` (any finder's, for `context`) that are not hidden. Those hidden are
        refused only when asked for by name: entry_points() goes through every distribution."""
        asked = getattr(context or kwargs.get("context"), "name", None) is not None
        for dist in dists:
            try:
                where = os.path.normpath(str(dist.locate_file("")))
                name = _name(dist) if where in self.locations else ""
            except Exception:  # unreadable metadata: as PathFinder gives it
                name = where = ""
            if (where, name) in self.dists:
                if asked:
                    self.refused.append(name)
            else:
                yield dist

    def invalidate_caches(self):
        self.finder.invalidate_caches()


def _name(dist):
    """A distribution's canonical name from its metadata's Name header, read as text: entry_points()
    asks for every distribution at each call, and email's parser would cost more than the lookup."""
    import re  # lazy: see the top

    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Name:"):
            return re.sub(r"[-_.]+", "-", line[len("Name:") :].strip()).lower()
    return ""


class MetadataHider(object):
    """--only-declared: in place of a finder that only finds distributions (the importlib_metadata backport's
    own MetadataPathFinder, which it appends to sys.meta_path when imported): what it finds, minus what the
    Hider in sys.meta_path (the one there now: a later closure may reveal more) hides."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        return None  # the finder it replaces finds no modules either

    def find_distributions(self, *args, **kwargs):
        dists = self.finder.find_distributions(*args, **kwargs)
        hider = next((f for f in sys.meta_path if type(f).__name__ == "Hider"), None)
        return dists if hider is None else hider.visible(dists, *args, **kwargs)

    def invalidate_caches(self):
        getattr(self.finder, "invalidate_caches", lambda: None)()


def _hide_backport(module):
    """Once importlib_metadata (the backport, or a copy vendored under that name) is imported: its own finders
    in sys.meta_path, found by their class's module, give only what the Hider leaves visible."""
    for index, finder in enumerate(sys.meta_path):
        if type(finder).__module__.partition(".")[0] == module.__name__ and hasattr(finder, "find_distributions"):
            sys.meta_path[index] = MetadataHider(finder)


def hide(roots, dists):
    """Put a Hider in place of the PathFinder in sys.meta_path (or of the Hider there before); the
    importlib_metadata backport's finders, now or once it is imported, hide what it hides."""
    from importlib.machinery import PathFinder  # lazy: see the top

    for index, finder in enumerate(sys.meta_path):
        if finder is PathFinder or isinstance(finder, Hider) or type(finder).__name__ == "Hider":
            hider = sys.meta_path[index] = Hider(roots, dists, PathFinder)
            after_import("importlib_metadata", _hide_backport)
            return hider
    raise RuntimeError("no PathFinder in sys.meta_path")


class Watcher(object):
    """First in sys.meta_path: runs a callback with a module once it has been executed (Python has no
    post-import hook). It finds nothing itself: for a watched name it asks the finders after it and wraps
    the loader of the spec found; the module's loader is the real one again once it has run."""

    def __init__(self):
        self.callbacks = {}

    def find_spec(self, name, path=None, target=None):
        if name not in self.callbacks:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None and finder is not self else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Then(spec.loader, self.callbacks.pop(name))
        return spec


class _Then(object):
    """A loader that runs `callbacks` with the module after `loader` has executed it."""

    def __init__(self, loader, callbacks):
        self.loader = loader
        self.callbacks = callbacks

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        for callback in self.callbacks:
            _call(callback, module)


def _call(callback, module):
    """callback(module); isobuild's bookkeeping failing must not fail the import it watched."""
    try:
        callback(module)
    except Exception as exc:
        sys.stderr.write("isobuild: after importing %s: %r\n" % (module.__name__, exc))


def after_import(name, callback):
    """callback(module) once the module `name` is imported: now if it is already."""
    if name in sys.modules:
        _call(callback, sys.modules[name])
        return
    watcher = next((f for f in sys.meta_path if type(f).__name__ == "Watcher"), None)
    if watcher is None:
        watcher = Watcher()
        sys.meta_path.insert(0, watcher)
    watcher.callbacks.setdefault(name, []).append(callback)


def _main():
    spec = _spec()
    if spec.get("identity") == [sys.executable, sys.version]:
        import atexit  # lazy: see the top

        before = set(sys.modules)  # this shim included
        hidden = spec.get("hidden")
        if hidden:  # hidden first: a hidden distribution's .pth file is not run
            hider = hide(hidden["roots"], hidden["dists"])
            sys.path[:] = list(spec["path"])
            for site_dir in spec["site_dirs"]:
                add_site_dir(site_dir, hider.hidden)
        else:
            isolate(spec["path"], spec["site_dirs"])
        atexit.register(_report, os.environ["_ISOBUILD_HOOK_PATH"], before)
    else:
        _step_aside()


if __name__ == "sitecustomize":
    try:
        _main()
    except Exception as exc:  # a broken shim must not break the child
        sys.stderr.write("isobuild sitecustomize: %s\n" % (exc,))
