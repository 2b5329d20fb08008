"""Where and for which interpreter to install, what an install reports, and the one rule of where it may write.

The rule, "never leave the destination": a file is written only where its
directory, resolved as the tree stands (links followed, at any depth), is
still under the destination's real path. The destination is DESTDIR when
given, else the prefix (for the scheme dirs under it), else the scheme's
own directory. So ``lib -> lib64`` in a prefix is followed, and a link that
leads out of it (an absolute ``/usr/lib64`` inside a DESTDIR means the
host's) is refused, whatever depth it is at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..scratch import inside


def scheme_path(scheme_dir: str, path: str) -> str | None:
    """Where ``path`` of a scheme goes (installer's final path), or None if its ``..`` leave the scheme dir."""
    root = os.path.abspath(scheme_dir)
    final = os.path.abspath(os.path.join(root, path))
    return final if inside(root, final) else None


def link_out(directory: str, root: str) -> str | None:
    """The link that takes ``directory`` out of ``root`` when followed, as the tree stands now; None if
    it stays inside. A link is judged by where it leads (os.path.realpath), not by its text."""
    real_root = os.path.realpath(root)
    if inside(real_root, os.path.realpath(directory)):
        return None
    path = root
    for part in os.path.relpath(directory, root).split(os.sep):
        path = os.path.join(path, part)
        if not inside(real_root, os.path.realpath(path)):
            return path  # the first component that resolves outside: a link (a plain dir stays where its parent is)
    return directory  # the tree changed meanwhile: refuse all the same


@dataclass(frozen=True)
class Target:
    """Where and for which interpreter to install."""

    python: str
    interpreter: str  # what scripts' shebangs run
    shebang_flags: str = ""
    prefix: str | None = None
    scheme: str | None = None
    destdir: str | None = None
    levels: tuple[int, ...] = (0,)
    invalidation_mode: str | None = None
    jobs: int = 0
    overwrite: bool = False
    installer_name: str = "isobuild"  # "": no INSTALLER file
    requested: bool = False
    tag_check: bool = True
    hardlink_dupes: bool = False

    def staged(self, final: str) -> str:
        """Where a final path is written: under DESTDIR when given."""
        return os.path.join(self.destdir, final.lstrip(os.sep)) if self.destdir else final

    def root(self, scheme_dir: str) -> str:
        """What no write into ``scheme_dir`` may leave (see the module's docstring)."""
        if self.destdir:
            return self.destdir
        scheme_dir = os.path.abspath(scheme_dir)
        if self.prefix and inside(self.prefix, scheme_dir):
            return self.prefix
        return scheme_dir

    def escape(self, scheme_dir: str, directory: str) -> str | None:
        """None if a file may be written into the (staged) ``directory`` of ``scheme_dir``; else
        why not, naming the link that leads out."""
        root = self.root(scheme_dir)
        link = link_out(directory, root)
        if link is None:
            return None
        return f"the link {link} leads to {os.path.realpath(link)}, outside {root}"


@dataclass(frozen=True)
class Installed:
    wheel: str
    name: str
    version: str
    dist_info: str  # where it was written (inside DESTDIR when given)
    files: int
    scheme: dict[str, str] = field(default_factory=dict)
    # Counted from the RECORD it wrote, while the install still holds the destination's lock: once it is
    # released, a concurrent --overwrite may replace that RECORD.
    scripts: int = 0
    bytecode: int = 0
