"""The parsing of option values the grammar (options.py) takes as text: -C and --config-json, --optimize,
--shebang-flags, and the NUL no path or value may hold."""

from __future__ import annotations

from ..errors import BadInput

# Imported where used (lazy): it is imported before the hook process starts.
#   json: --config-json only

# Only what is needed before the hook process starts is imported at run time (see builder.py);
# typing's names are for the type checker alone.
TYPE_CHECKING = False  # names for annotations only: nothing imported at run time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any


CONFIG_DEPTH = 64  # pyproject-hooks writes them as JSON for the backend: no backend nests deeper


def _depth(value: object) -> int:
    """How deep a JSON value nests, without recursion (a hostile one may nest thousands deep)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            todo += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            todo += [(child, depth + 1) for child in item]
    return deepest


def no_nul(args: argparse.Namespace) -> None:
    """A NUL cannot be in a path or a value the OS is handed: say so, rather than fail in os.stat()."""
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and "\0" in item:
                raise BadInput(f"--{name.replace('_', '-')} {item!r}: contains a NUL character")


def config_settings(pairs: Sequence[str], json_text: str | None) -> dict[str, Any]:
    """-C KEY=VALUE pairs over --config-json: a repeated key becomes a list, as pip and build make it."""
    settings: dict[str, Any] = {}
    if json_text is not None:
        import json  # lazy: see the top

        try:
            settings = json.loads(json_text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BadInput(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(settings, dict):
            raise BadInput("--config-json must be a JSON object")
        if _depth(settings) > CONFIG_DEPTH:
            raise BadInput(f"--config-json is nested more than {CONFIG_DEPTH} deep")
    seen: set[str] = set()
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key:
            raise BadInput(f"-C {pair!r}: the key is empty")
        if key not in seen:
            settings[key] = value
        elif isinstance(settings[key], list):
            settings[key].append(value)
        else:
            settings[key] = [settings[key], value]
        seen.add(key)
    return settings


def optimize_levels(text: str, no_compile: bool) -> tuple[int, ...]:
    try:
        levels = () if no_compile else tuple(sorted({int(x) for x in text.split(",")}))
    except ValueError:
        raise BadInput(f"--optimize {text!r}: give levels such as 0,1,2") from None
    if any(level not in (0, 1, 2) for level in levels):
        raise BadInput(f"--optimize {text!r}: levels are 0, 1 and 2")
    return levels


def shebang_flags(text: str) -> str:
    """Flags go on a script's first line: a control character (a newline) would end it and inject code."""
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise BadInput(f"--shebang-flags {text!r}: control characters (such as a newline) are not allowed")
    return text.strip()
