"""--only-declared, in the hook process: hide what the build does not declare, here and in its children.

The frontend sends what to hide once it knows the declared closure (after the
check of build-system.requires, then again after get_requires_for_build_*'s):
the files and dirs of hidden distributions (``roots``) and their metadata
(``dists``: location, canonical name). The shim's Hider takes PathFinder's
place in sys.meta_path here, and the children's sys.path spec (the file
_ISOBUILD_HOOK_PATH names) gets the same, so that each Python child of this
interpreter puts one in place too. The backend is imported only after the first.
The import lines of the site dirs' .pth files, held back at setup (isolate.py),
run here, those of hidden distributions excepted: a later closure may reveal them.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import isolate


def hide(msg: dict[str, Any]) -> dict[str, Any]:
    hidden = {"roots": list(msg["roots"]), "dists": list(msg["dists"])}
    shim = isolate.shim(msg["shim_dir"])
    shim.run_deferred(isolate.DEFERRED, shim.hide(hidden["roots"], hidden["dists"]).hidden)
    name = os.environ["_ISOBUILD_HOOK_PATH"]
    with open(name, encoding="ascii") as f:
        spec = json.load(f)
    spec["hidden"] = hidden
    fresh = "{}.{}".format(name, os.urandom(8).hex())  # replaced whole: a child starting now reads one or the other
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="ascii") as f:
        json.dump(spec, f)
    os.replace(fresh, name)
    return {"status": "ok"}
