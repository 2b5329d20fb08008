"""The dependency check, against the environment the hooks see and the target's markers.

build.check_dependency asks importlib.metadata on the *frontend's* sys.path, with
the frontend's markers; a pipeline that builds for another interpreter, or whose
frontend has packages the hooks cannot see, gets the wrong answer. Here the
path finder is asked with the sys.path the hook process built (its setup reply
says what it is), before any backend import could extend it, and markers take
the target's values. The lookup runs in the frontend, while the hook process
imports the backend. The walk is build's: markers (with the parent's extras),
version, then the requirement's own dependencies.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution, DistributionFinder, MetadataPathFinder
from typing import Any, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion

from .errors import BadInput
from .project import Project

# Imported where used (lazy): a command that does not reach that code does not pay for it.
#   dependency_groups: only for requires --runtime --group


def _found(name: str, path: Sequence[str]) -> Distribution | None:
    """The first distribution on ``path`` named ``name`` (canonical), as importlib.metadata finds it.

    Python 3.9's path finder reads a directory name with '-' as '_' only (3.10 normalizes both
    sides), so there ``zope-interface`` misses ``zope.interface-6.0.dist-info``: the dotted
    spelling is asked for too, if the first finds nothing.
    """
    spellings = [name] + ([name.replace("-", ".")] if sys.version_info < (3, 10) and "-" in name else [])
    for spelling in spellings:
        context = DistributionFinder.Context(name=spelling, path=list(path))
        for dist in MetadataPathFinder.find_distributions(context):
            return dist
    return None


@dataclass(frozen=True)
class Installed:
    """A distribution as the check sees it: installed on the hooks' sys.path, or a wheel checked with others."""

    version: str
    requires: tuple[str, ...]  # Requires-Dist, as written
    location: str  # the sys.path entry it was found in, or the wheel's path


def _distribution(name: str, path: Sequence[str]) -> Installed | None:
    """Version, requirements and location of ``name`` as importlib.metadata finds it with ``sys.path =
    path``: its path finder alone, so neither the frontend's sys.path nor a backend's meta path finders count."""
    dist = _found(name, path)
    if dist is not None:
        location = str(dist.locate_file(""))
        try:
            return Installed(dist.version, tuple(dist.requires or ()), location)
        except Exception as exc:  # unreadable metadata: no version satisfies a specifier, and the check says why
            return Installed(f"(unreadable metadata: {type(exc).__name__}: {exc})", (), location)
    return None


@dataclass(frozen=True)
class Resolved:
    """A distribution of the declared closure, as the walk found it on the hooks' sys.path."""

    name: str  # canonical
    version: str
    location: str  # the sys.path entry it was found in


class Policy(NamedTuple):
    """What a pipeline overrides (--relax NAME, --remove NAME; ``*`` for every name), as canonical names."""

    relax: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()

    @classmethod
    def of(cls, relax: Iterable[str], remove: Iterable[str]) -> Policy:
        def names(given: Iterable[str]) -> frozenset[str]:
            return frozenset("*" if name.strip() == "*" else canonicalize_name(name.strip()) for name in given)

        return cls(names(relax), names(remove))

    def removes(self, name: str) -> bool:
        return "*" in self.remove or canonicalize_name(name) in self.remove

    def relaxes(self, name: str) -> bool:
        return "*" in self.relax or canonicalize_name(name) in self.relax


class Status(NamedTuple):
    """One top-level requirement's verdict; ``unmet`` holds the chains that fail it."""

    requirement: str
    origin: str  # "build-system.requires", the hook that returned it, or a wheel's Requires-Dist
    found: str | None = None  # "NAME VERSION at LOCATION" when installed
    needed: bool = True  # False when its marker excludes the target
    unmet: tuple[tuple[str, ...], ...] = ()
    policy: str | None = None  # "relaxed" (its version is not checked) or "removed" (not checked at all)

    @property
    def satisfied(self) -> bool:
        return not self.unmet

    @property
    def below(self) -> list[str]:
        """What fails further down: the last link of each chain longer than the requirement itself,
        once each and without its marker (it held, or the link would not be in a chain)."""
        return list(dict.fromkeys(_unmarked(chain[-1]) for chain in self.unmet if len(chain) > 1))

    def headline(self) -> str:
        """The requirement, and what it needs that is missing when that is not the requirement itself."""
        return f"{self.requirement} (needs {', '.join(self.below)})" if self.below else self.requirement

    def describe(self) -> str:
        if self.policy == "removed":
            return "removed (--remove): not checked"
        if not self.needed:
            return "not needed (marker)"
        if self.policy == "relaxed" and self.satisfied:
            return f"relaxed (--relax): {self.found}"
        if self.satisfied:
            return f"satisfied ({self.found})"
        chains = "; ".join(" -> ".join(chain) for chain in self.unmet)
        if len(self.unmet) == 1 and len(self.unmet[0]) == 1:
            return f"missing (found {self.found})" if self.found else "missing"
        return f"missing: {chains}"


class Environment:
    """The distributions on ``path`` (the hooks' sys.path, as the hook process reports it), looked up
    when first needed and cached; ``known`` ones (wheels checked together) count as installed."""

    def __init__(
        self,
        path: Sequence[str],
        markers: Mapping[str, str],
        policy: Policy = Policy(),
        known: Mapping[str, Installed] | None = None,
    ) -> None:
        self.path = list(path)
        self._cache: dict[str, Installed | None] = {canonicalize_name(k): v for k, v in (known or {}).items()}
        self.markers = dict(markers)
        self.policy = policy
        self.closure: dict[str, Resolved] = {}  # canonical name: what the walk accepted

    def admit(self, name: str, dist: Installed) -> None:
        """``name`` was found and accepted (marker, version or --relax): it is part of the declared closure."""
        key = canonicalize_name(name)
        self.closure.setdefault(key, Resolved(key, dist.version, dist.location))

    def get(self, name: str) -> Installed | None:
        key = canonicalize_name(name)
        if key not in self._cache:
            self._cache[key] = _distribution(key, self.path)
        return self._cache[key]

    def wants(self, req: Requirement, extras: Iterable[str]) -> bool:
        """Whether the marker admits the target; one that cannot be evaluated is an invalid requirement."""
        if req.marker is None:
            return True
        try:
            return any(req.marker.evaluate({**self.markers, "extra": extra}) for extra in {"", *extras})
        except Exception as exc:  # packaging's UndefinedComparison, UndefinedEnvironmentName, InvalidVersion ...
            raise InvalidRequirement(f"{req}: its marker cannot be evaluated ({type(exc).__name__}: {exc})") from None


def _unmet(req: Requirement, chain: tuple[str, ...], env: Environment, seen: set[str]) -> list[tuple[str, ...]]:
    dist = env.get(req.name)
    if dist is None:
        return [chain]
    try:
        if (
            req.specifier
            and not env.policy.relaxes(req.name)
            and not req.specifier.contains(dist.version, prereleases=True)
        ):
            return [chain]
    except InvalidVersion:
        return [chain]
    env.admit(req.name, dist)
    wanted = []  # its requirements that apply: marker admits the target with the parent's extras, not removed
    for text in dist.requires:
        try:
            child = Requirement(text)
            if env.wants(child, req.extras) and not env.policy.removes(child.name):
                wanted.append(child)
        except InvalidRequirement:
            continue  # an installed distribution's broken metadata is not the build's concern
    unmet: list[tuple[str, ...]] = []
    for child in wanted:
        key = str(child)
        if key in seen or key in chain:
            continue
        found = _unmet(child, (*chain, key), env, seen)
        if not found:
            seen.add(key)
        unmet.extend(found)
    return unmet


def check(requirements: Iterable[str], origin: str, env: Environment, extras: Iterable[str] = ()) -> list[Status]:
    """Each requirement's status, its marker evaluated with ``extras`` requested (a wheel's Requires-Dist).

    Raises InvalidRequirement for a bad string; the caller knows whose string it was.
    """
    parsed = [(text, Requirement(text)) for text in requirements]
    extras = tuple(extras)
    statuses = []
    seen: set[str] = set()
    for text, req in parsed:
        if env.policy.removes(req.name):
            statuses.append(Status(text, origin, needed=False, policy="removed"))
            continue
        dist = env.get(req.name)
        found = f"{req.name} {dist.version} at {dist.location}" if dist else None
        policy = "relaxed" if req.specifier and env.policy.relaxes(req.name) else None
        if not env.wants(req, extras):
            statuses.append(Status(text, origin, found, needed=False, policy=policy))
            continue
        statuses.append(Status(text, origin, found, unmet=tuple(_unmet(req, (str(req),), env, seen)), policy=policy))
    return statuses


def _unmarked(text: str) -> str:
    req = Requirement(text)  # a chain's link: packaging's own rendering of a requirement it parsed
    req.marker = None
    return str(req)


def summary(unmet: Sequence[Status]) -> tuple[str, str]:
    """The headline's list of unmet requirements, and the hint's advice on --relax and --remove.

    A requirement found in a good version but failing through one of its own requirements is named
    with that one, which is also what --remove takes: the headline alone tells what to do.
    """
    below = sorted({Requirement(text).name for status in unmet for text in status.below})
    advice = "--relax NAME ignores a version, --remove NAME a requirement"
    if below:
        advice += f", also one that another needs (here: {', '.join(below)})"
    return ", ".join(dict.fromkeys(status.headline() for status in unmet)), advice


def parse_static(project: Project) -> None:
    """build-system.requires must parse before anything runs: a bad string is the project's error."""
    for text in project.requires:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise BadInput(f"{project.display}: invalid requirement {text!r} in build-system.requires: {exc}") from None


def group_requirements(groups: Mapping[str, Any], name: str, where: str) -> list[str]:
    """A PEP 735 dependency group's requirements, include-group followed, by the dependency-groups library."""
    from dependency_groups import resolve  # lazy: see the top

    try:
        return list(resolve(groups, name))
    except LookupError:
        raise BadInput(
            f"{where}: no dependency group {name!r} (it has {', '.join(sorted(groups)) or 'none'})"
        ) from None
    except (ValueError, TypeError) as exc:  # CyclicDependencyError is a ValueError
        raise BadInput(f"{where}: dependency group {name!r}: {exc}") from None
