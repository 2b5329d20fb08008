"""The installed version that ``--overwrite`` replaces, as pip's upgrade does: the same project's
``.dist-info`` in the destination's site dirs, and every file its RECORD lists that this install does
not write itself, moved aside (journal.remove) and removed at the commit, so that one version stands.

Only files under the destination root are touched, whatever an old RECORD says, and no directory
but those the removal leaves empty below the site dir.
"""

from __future__ import annotations

import csv
import os

from packaging.utils import canonicalize_name

from ..scratch import inside
from .journal import Journal


def replace_installed(name: str, site_dirs: list[str], root: str, keep: set[str], journal: Journal) -> None:
    """Move aside each file of an installed ``name`` that is not in ``keep`` (written by this install)."""
    for site in site_dirs:
        for info in _dist_infos(site, canonicalize_name(name)):
            for path in _files(site, info):
                if (
                    path not in keep
                    and inside(root, path)
                    and os.path.lexists(path)
                    and not (os.path.isdir(path) and not os.path.islink(path))
                ):
                    journal.remove(path, site)


def _dist_infos(site: str, project: str) -> list[str]:
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return []
    return [
        os.path.join(site, n)
        for n in names
        if n.endswith(".dist-info")
        and canonicalize_name(n[: -len(".dist-info")].partition("-")[0]) == project
        and os.path.isdir(os.path.join(site, n))
    ]


def _files(site: str, info: str) -> list[str]:
    """What RECORD lists (relative to the site dir), then whatever else the .dist-info holds."""
    found: dict[str, None] = {}
    try:
        with open(os.path.join(info, "RECORD"), newline="", encoding="utf-8", errors="surrogateescape") as f:
            for row in csv.reader(f):
                if row and row[0]:
                    found[os.path.normpath(os.path.join(site, row[0]))] = None
    except (OSError, csv.Error):
        pass  # a RECORD that cannot be read: the .dist-info alone goes
    for entry in sorted(os.listdir(info)):
        found[os.path.join(info, entry)] = None
    return list(found)
