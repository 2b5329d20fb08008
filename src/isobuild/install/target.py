"""Where and for which interpreter to install, and what an install reports."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class Installed:
    wheel: str
    name: str
    version: str
    dist_info: str  # where it was written (inside DESTDIR when given)
    files: int
    scheme: dict[str, str] = field(default_factory=dict)
