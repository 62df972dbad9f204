"""`rigtui completion bash|zsh|tcsh`: a shell completion script, made from rigtui's own
argparse parser by shtab (every command, flag and choice; profile names for PROFILE).

    rigtui completion bash > ~/.local/share/bash-completion/completions/rigtui
    rigtui completion zsh > "${fpath[1]}/_rigtui"
"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_OK

# bash: the profile names `rigtui profiles list` shows, where a PROFILE is asked for
_BASH_PROFILES = r"""
_rigtui_profiles() {
  local dir="${XDG_CONFIG_HOME:-$HOME/.config}/rigtui/profiles"
  compgen -W "$( (ls "$dir" 2>/dev/null | sed -n 's/\.toml$//p'; rigtui profiles list 2>/dev/null | awk '{print $1}') | sort -u)" -- "$1"
}
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "completion", help="print a shell completion script (bash, zsh, tcsh)",
        description="Print the completion script for SHELL, made from rigtui's own command line: "
        "`rigtui completion bash > ~/.local/share/bash-completion/completions/rigtui`.",
    )  # fmt: skip
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        print("rigtui completion needs shtab: pip install shtab", file=sys.stderr)
        return EXIT_FAILURE
    from rigtui.cli import build_parser

    parser = build_parser()
    if args.shell == "bash":
        profile = {"bash": "_rigtui_profiles"}
        for action in _profile_actions(parser):
            action.complete = profile  # type: ignore[attr-defined]
    preamble = {"bash": _BASH_PROFILES} if args.shell == "bash" else None
    sys.stdout.write(shtab.complete(parser, shell=args.shell, preamble=preamble))
    return EXIT_OK


def _profile_actions(parser: argparse.ArgumentParser):
    """The positional PROFILE arguments (and --launch) of every command."""
    for action in parser._actions:
        if action.metavar == "PROFILE" or action.dest == "launch":
            yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _profile_actions(sub)
