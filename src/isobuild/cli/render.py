"""What the commands print: the text and JSON forms of their results."""

from __future__ import annotations

import os
import sys

from .. import __version__, builder
from ..console import SCHEMA, error_json
from ..isolation import REMOVED_VARIABLES, SET_VARIABLES

# Imported where used (lazy): a command that does not print them does not pay for them.
#   json, hashlib: --json only (and --json's error, console.py)
#   importlib, importlib.metadata: --version only
#   compare, dataclasses: --check-reproducible's report only (dataclasses imports inspect)
# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ..checkdeclared import Verdicts
    from ..dependencies import Status
    from ..errors import IsobuildError
    from ..hookprocess import Hello
    from ..install import Installed
    from ..reproducible import Report
    from ..usage import Used


def document(info: dict[str, Any], failure: IsobuildError | None = None) -> str:
    """One JSON object as --json prints it: "schema" first, and a failure's keys when the result has one."""
    import json  # lazy: see the top

    return json.dumps({"schema": SCHEMA, **info, **(error_json(failure) if failure else {})}, indent=2)


def status_json(status: Status) -> dict[str, Any]:
    return {
        "requirement": status.requirement,
        "origin": status.origin,
        "satisfied": status.satisfied,
        "needed": status.needed,
        "found": status.found,
        "unmet": [list(chain) for chain in status.unmet],
        "policy": status.policy,
    }


def outcome_json(outcome: builder.Outcome) -> dict[str, Any]:
    info: dict[str, Any] = {"path": outcome.path, "size": None, "sha256": None}
    if outcome.path and os.path.isfile(outcome.path):
        import hashlib  # for --json only

        with open(outcome.path, "rb") as f:
            data = f.read()
        info.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    info.update(
        requirements=[status_json(s) for s in outcome.requirements],
        interpreter=outcome.hello.executable,
        python_version=outcome.hello.version_text,
        seconds=round(outcome.seconds, 3),
    )
    return info


def _used_json(items: tuple[Used, ...] | None) -> list[dict[str, Any]] | None:
    return (
        None
        if items is None
        else [{"name": u.name, "version": u.version, "location": u.location, "how": u.how} for u in items]
    )


def usage_json(outcome: builder.Outcome, config_settings: Mapping[str, Any]) -> dict[str, Any]:
    """A build's "dependencies" (what the hooks used; usage.py) and "environment" (what it ran with)."""
    usage = outcome.usage
    info: dict[str, Any] = {
        "environment": {
            "interpreter": outcome.hello.executable,
            "version": outcome.hello.version_text,
            "sys_path": outcome.hello.sys_path,
            "config_settings": dict(config_settings),
            "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
        }
    }
    info["dependencies"] = (
        None
        if usage is None
        else {
            "used": _used_json(usage.used),
            "undeclared": _used_json(usage.undeclared),
            "unused": _used_json(usage.unused),
            "unowned": [{"path": path, "how": how} for path, how in usage.unowned],
        }
    )
    return info


def environment_json(hello: Hello) -> dict[str, Any]:
    """What ``env`` reports: the hooks' view, and the rule for their children."""
    import json  # lazy: see the top

    removed = {name: os.environ[name] for name in REMOVED_VARIABLES if name in os.environ and name != "PYTHONPATH"}
    children = dict(hello.child_env)
    with open(children.pop("_ISOBUILD_HOOK_PATH"), encoding="ascii") as f:  # in the command's temp dir until it ends
        restored = json.load(f)
    return {
        "interpreter": hello.executable,
        "python_version": hello.version_text,
        "sys_path": hello.sys_path,
        "excluded": {"user_site": hello.excluded_user_site, "system_site": hello.excluded_system_site},
        # TMPDIR: the command's own temp dir (scratch.py), removed when it ends
        "environment": {
            "set": {**SET_VARIABLES, "TMPDIR": os.environ.get("TMPDIR", "")},
            "removed": removed,
            "children": children,
        },
        "children": {
            "same_interpreter": {
                "executable": hello.executable,
                "sys_path": restored["path"],
                "site_dirs": restored["site_dirs"],
            },
            "other_interpreters": "left alone: their own sys.path, site dirs and sitecustomize (no user site)",
        },
    }


def render_environment(info: dict[str, Any]) -> str:
    """``isobuild env``'s text: one fact a line, paths indented."""
    lines = [f"interpreter: {info['interpreter']} (Python {info['python_version']})", "sys.path:"]
    lines += [f"  {entry}" for entry in info["sys_path"]]
    lines.append(f"excluded user site: {info['excluded']['user_site']}")
    lines += [f"excluded system site: {entry}" for entry in info["excluded"]["system_site"]]
    env = info["environment"]
    lines += [f"set: {key}={value}" for key, value in env["set"].items()]
    lines += [f"removed: {key} (was {value!r})" for key, value in env["removed"].items()]
    lines += [f"children: {key}={value}" for key, value in env["children"].items()]
    same = info["children"]["same_interpreter"]
    lines.append(f"children run by {same['executable']}: sys.path restored to")
    lines += [f"  {entry}" for entry in same["sys_path"]]
    lines += [f"  {entry} (site dir)" for entry in same["site_dirs"]]
    lines.append(f"children run by another interpreter: {info['children']['other_interpreters']}")
    return "\n".join(lines)


def installed_json(result: Installed) -> dict[str, Any]:
    """An install's result, with the scripts and bytecode files among its files (its RECORD's rows)."""
    return dict(vars(result))


def install_summary(info: dict[str, Any], destdir: str | None) -> str:
    """One line a wheel installed: what and where."""
    where = os.path.dirname(info["dist_info"])
    under = f" (--destdir {destdir})" if destdir else ""
    counts = ", ".join(
        _counted(info[key], word)
        for key, word in (("files", "file"), ("scripts", "script"), ("bytecode", "bytecode file"))
    )
    return f"installed {info['name']} {info['version']}: {counts} in {where}{under}"


def _counted(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def scheme_lines(info: dict[str, Any]) -> list[str]:
    """-v: the scheme written to, a path a line."""
    return [f"  {key}: {value}" for key, value in info["scheme"].items()]


def check_summary(statuses: list[Status]) -> str:
    """``check``'s tally: a requirement its marker excludes (or --remove removes) is not applicable."""
    applicable = [s for s in statuses if s.needed]
    satisfied = sum(s.satisfied for s in applicable)
    return (
        f"{satisfied} satisfied, {len(applicable) - satisfied} missing, "
        f"{len(statuses) - len(applicable)} not applicable (marker or --remove)"
    )


LIBRARIES = ("pyproject_hooks", "packaging", "installer")  # what isobuild runs on, as --version names them


def versions() -> str:
    """--version: each line a name, its version and where it is loaded from (a vendored copy in isobuild.pyz)."""
    import importlib  # --version only
    from importlib.metadata import PackageNotFoundError, version  # lazy: see the top

    lines = [
        f"isobuild {__version__} ({os.path.dirname(os.path.dirname(__file__))})",
        f"Python {sys.version.split()[0]} ({sys.executable})",
    ]
    for name in LIBRARIES:
        module = importlib.import_module(name)
        found = getattr(module, "__version__", None)  # the module that runs, even with another one's metadata first
        if not isinstance(found, str):
            try:
                found = version(name)
            except PackageNotFoundError:
                found = "(version unknown)"
        lines.append(f"{name.replace('_', '-')} {found} ({os.path.dirname(module.__file__ or '')})")
    return "\n".join(lines)


def reproducible_json(report: Report) -> dict[str, Any]:
    """--check-reproducible's report under --json's ``reproducible`` key (docs/json.md)."""
    from dataclasses import asdict  # lazy: see the top

    from ..compare import as_json  # lazy: see the top

    return {
        "identical": report.comparison.identical,
        "comparison": as_json(report.comparison),
        "variations": [asdict(v) for v in report.variations],
        "source_date_epoch": report.source_date_epoch,
        "source_date_epoch_from": report.source_date_epoch_from,
    }


def declared_check_json(verdicts: Verdicts) -> dict[str, Any]:
    """--check-declared's verdicts under --json's ``declared_check`` key (docs/json.md)."""
    return {
        "matters": dict(verdicts.matters),
        "harmless": list(verdicts.harmless),
        "unreproducible": list(verdicts.unreproducible),
    }
