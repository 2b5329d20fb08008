"""``python -S -s .../_inside/__main__.py TOO_OLD serve|scheme|compile|imports``: isobuild's entry into the target.

TOO_OLD is the exit code that tells the frontend this interpreter is too old: the frontend defines it
(isobuild/inside.py, which builds this command line) and passes it, as this file cannot import it.

Run as a script, so its directory is sys.path[0]: that entry is removed first
(nothing of isobuild's stays on the hooks' sys.path), and the package is
loaded under a name no project uses, so that its modules (``hooks``, ``markers``
...) cannot shadow a backend's. In isobuild.pyz the package is stored under
that name, and the archive's __main__ has imported it with the archive as
sys.path[0]: that entry is removed (the archive holds isobuild's dependencies).
"""

import os
import sys

PACKAGE = "_isobuild_inside"


# Type comments, not annotations: this file must parse on any Python, to say that it is too old.
def _load_package():  # type: () -> None
    import importlib.util  # not at the top: this file must run on any Python, to say it is too old

    here = os.path.dirname(os.path.abspath(__file__))
    if PACKAGE in sys.modules:  # isobuild.pyz: the archive's __main__ imported it from the archive
        archive = os.path.dirname(here)
        sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != archive]
        return
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)


def main():  # type: () -> None
    usage = "usage: {} TOO_OLD serve|scheme|compile|imports".format(sys.argv[0])
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(usage)
    if sys.version_info < (3, 8):
        sys.stderr.write(
            "isobuild: {} is Python {}.{}; the hooks need Python 3.8 or newer\n".format(
                sys.executable, *sys.version_info[:2]
            )
        )
        sys.exit(int(sys.argv[1]))
    _load_package()
    command = sys.argv[2]
    modules = {"serve": "server", "scheme": "scheme", "compile": "compile", "imports": "imports"}
    if command not in modules:
        sys.exit(usage)
    __import__("{}.{}".format(PACKAGE, modules[command]))
    sys.modules["{}.{}".format(PACKAGE, modules[command])].main(sys.argv[3:])


if __name__ == "__main__":
    main()
