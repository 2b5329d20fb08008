"""Write isobuild's man page and its bash and zsh completion from the argparse grammar (src/isobuild/cli/options.py).

    python3 tools/make_manpage.py [-o DIR] [--check]

The files go under DIR (default: data/, which flit ships as the wheel's data and in the sdist):
share/man/man1/isobuild.1, share/bash-completion/completions/isobuild, share/zsh/site-functions/_isobuild.
They are committed, so that installing isobuild needs no build step; tests/test_first_day.py checks that
they are what this tool writes now. ``--check`` writes nothing and exits 1 if a file differs.
Stdlib only: the grammar is read from isobuild's own parser (options.Parser keeps its arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # the checkout's isobuild, not an installed one

from isobuild import __version__  # noqa: E402  (after sys.path names the checkout)
from isobuild.cli.options import COMMANDS, Parser, parser  # noqa: E402
from isobuild.errors import exit_codes  # noqa: E402

MAN, BASH, ZSH = (
    "share/man/man1/isobuild.1",
    "share/bash-completion/completions/isobuild",
    "share/zsh/site-functions/_isobuild",
)


def _shown(actions: list[argparse.Action]) -> list[argparse.Action]:
    """The arguments --help shows: the refused spellings of other frontends are hidden there, and here."""
    return [action for action in actions if action.help != argparse.SUPPRESS]


def _key(action: argparse.Action) -> tuple[str, ...]:
    return tuple(action.option_strings) or (action.dest,)


def _common(top: Parser, names: list[str]) -> list[argparse.Action]:
    """The arguments (but --help) that all the commands ``names`` have, in their order."""
    keys = [{_key(a) for a in top.commands[name].arguments} for name in names]
    return [
        a
        for a in _shown(top.commands[names[0]].arguments)
        if "-h" not in a.option_strings and all(_key(a) in k for k in keys)
    ]


# ---------------------------------------------------------------- man page


def _roff(text: str) -> str:
    """Text as roff reads it: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.splitlines())


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    name = action.metavar or (("{" + ",".join(action.choices) + "}") if action.choices else action.dest.upper())
    return f" \\fI{_roff(str(name))}\\fR"


def _entries(actions: list[argparse.Action]) -> list[str]:
    lines = []
    for action in _shown(actions):
        if action.option_strings:
            names = ", ".join(f"\\fB{_roff(option)}\\fR" for option in action.option_strings)
            lines += [".TP", names + _value(action)]
        else:
            lines += [".TP", f"\\fI{_roff(str(action.metavar or action.dest).upper())}\\fR"]
        lines.append(_roff(str(action.help or "")))
    return lines


def man_page(top: Parser) -> str:
    every = _common(top, list(COMMANDS))  # the isolated environment's options
    building = [a for a in _common(top, [name for name in COMMANDS if name != "check"]) if a not in every]
    common = {_key(a) for a in every + building}
    lines = [
        f'.TH ISOBUILD 1 "" "isobuild {__version__}" "User Commands"',
        ".SH NAME",
        "isobuild \\- PEP 517 build frontend for packaging pipelines",
        ".SH SYNOPSIS",
        ".B isobuild",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fISRCDIR\\fR | \\fIWHEEL\\fR...]",
        ".br",
        ".B isobuild",
        "[\\fB\\-h\\fR] [\\fB\\-V\\fR]",
        ".SH DESCRIPTION",
        _roff(top.description or ""),
        ".SH COMMANDS",
    ]
    for name, text in COMMANDS.items():
        lines += [".TP", f"\\fB{name}\\fR", _roff(text)]
    lines += [".SH OPTIONS", *_entries([a for a in top.arguments if a.option_strings]), '.SS "Every command"']
    lines += _entries(every)
    lines += ['.SS "Every command but check"', *_entries([a for a in building if a.option_strings])]
    lines += _entries([a for a in building if not a.option_strings])  # SRCDIR
    for name, cmd in top.commands.items():
        own = [a for a in cmd.arguments if _key(a) not in common and "-h" not in a.option_strings]
        lines += [f'.SS "isobuild {name}"', *_entries(own)]
    lines.append(".SH EXIT STATUS")
    for code, meaning in exit_codes().items():
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines += [
        ".SH FILES",
        "docs/json.md in isobuild's source describes the \\fB\\-\\-json\\fR output key by key.",
        ".SH SEE ALSO",
        "\\fBpython3\\fR(1), PEP 517, PEP 660",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- completion


def _options(actions: list[argparse.Action]) -> list[str]:
    return [option for action in _shown(actions) for option in action.option_strings]


def _valued(top: Parser) -> dict[str, list[str]]:
    """Every option that takes a value: its choices (empty: a file name)."""
    every = [*top.arguments, *(a for cmd in top.commands.values() for a in cmd.arguments)]
    return {
        option: list(action.choices or [])
        for action in _shown(every)
        if action.nargs != 0
        for option in action.option_strings
    }


def bash_completion(top: Parser) -> str:
    cases = "\n".join(
        f'        {name}) opts="{" ".join(_options(cmd.arguments))}" ;;' for name, cmd in top.commands.items()
    )
    valued = _valued(top)
    choices = "\n".join(
        f'        {option}) COMPREPLY=($(compgen -W "{" ".join(found)}" -- "$cur")); return ;;'
        for option, found in valued.items()
        if found
    )
    files = "|".join(option for option, found in valued.items() if not found)
    return f"""# bash completion for isobuild; written by tools/make_manpage.py from isobuild's argparse grammar
_isobuild() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" command="" opts i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {"|".join(COMMANDS)}) command="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [[ -z "$command" ]]; then
        COMPREPLY=($(compgen -W "{" ".join([*COMMANDS, *_options(top.arguments)])}" -- "$cur"))
        return
    fi
    case "$prev" in
{choices}
        {files}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    case "$command" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _isobuild isobuild
"""


def _zsh_quote(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_specs(actions: list[argparse.Action]) -> list[str]:
    specs = []
    for action in _shown(actions):
        helped = _zsh_quote(str(action.help or ""))
        value = (
            ""
            if action.nargs == 0
            else (f":{action.dest}:({' '.join(action.choices)})" if action.choices else f":{action.dest}:_files")
        )
        repeat = "*" if isinstance(action.default, list) else ""  # append: isobuild gives repeatable options a list
        specs += [f"'{repeat}{option}[{helped}]{value}'" for option in action.option_strings]
    return specs


def zsh_completion(top: Parser) -> str:
    described = "\n".join(f"        '{name}:{_zsh_quote(text)}'" for name, text in COMMANDS.items())
    cases = "\n".join(
        f"        {name})\n            _arguments \\\n                "
        + " \\\n                ".join([*_zsh_specs(cmd.arguments), "'*:file:_files'"])
        + " ;;"
        for name, cmd in top.commands.items()
    )
    return f"""#compdef isobuild
# zsh completion for isobuild; written by tools/make_manpage.py from isobuild's argparse grammar
_isobuild() {{
    local -a commands
    commands=(
{described}
    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'isobuild command' commands
        _arguments {" ".join(_zsh_specs(top.arguments))}
        return
    fi
    case "$words[2]" in
{cases}
    esac
}}
_isobuild "$@"
"""


def generate() -> dict[str, str]:
    top = parser()
    return {MAN: man_page(top), BASH: bash_completion(top), ZSH: zsh_completion(top)}


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("-o", "--outdir", default=str(ROOT / "data"), help="where share/ goes (default: data/)")
    cli.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is not what it would be")
    args = cli.parse_args(argv)
    stale = []
    for relative, text in generate().items():
        path = Path(args.outdir) / relative
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"make_manpage: out of date: {', '.join(stale)}; run python3 tools/make_manpage.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
