# isobuild's sitecustomize for Python processes that a build backend starts.
#
# isobuild puts this directory first on PYTHONPATH for the hook process's
# children (and sets PYTHONNOUSERSITE=1), so that an interpreter the backend
# starts with sys.executable sees the same sys.path as the hooks: site.main()
# has already appended the system site dirs by the time this runs, and this
# puts sys.path back to what the hooks had, before the child's own code runs.
#
# Limit: a .pth file in the system site has already executed its `import`
# lines when this runs; Python has no switch that prevents that short of -S.
#
# Any interpreter that honours PYTHONPATH may import this file (even Python 2),
# so it keeps to syntax every version parses and never raises.
import os
import sys


def isolate(path, site_dirs):
    """Make sys.path exactly `path`, then add `site_dirs` as site dirs (their .pth files run)."""
    import site

    sys.path[:] = list(path)
    for site_dir in site_dirs:
        site.addsitedir(site_dir)


def _drop_own_site_dirs():
    """For an interpreter other than the hooks': drop its site dirs and what followed them."""
    import site

    dirs = set()
    for entry in list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()]:
        dirs.add(os.path.normcase(os.path.abspath(entry)))
    for index, entry in enumerate(sys.path):
        if os.path.normcase(os.path.abspath(entry)) in dirs:
            del sys.path[index:]
            break


def _main():
    import json

    spec = os.environ.get("_ISOBUILD_HOOK_PATH")
    if not spec:
        return
    spec = json.loads(spec)
    if spec.get("identity") == [sys.executable, sys.version]:
        isolate(spec["path"], spec["site_dirs"])
    elif not spec.get("system_site"):
        _drop_own_site_dirs()


if __name__ == "sitecustomize":
    try:
        _main()
    except Exception as exc:  # a broken shim must not break the child
        sys.stderr.write("isobuild sitecustomize: %s\n" % (exc,))
