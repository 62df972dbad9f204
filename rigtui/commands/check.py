"""`rigtui check [--json] [--root DIR] [--profile P] [--model PATH]`: sanity checks of this rig.

Exit code: 0 everything passes (or is unknown), 1 something warns, 2 something fails.
"""

from __future__ import annotations

import argparse

from rigtui.cli import EXIT_USAGE, add_root_arg, make_fs

_MARK = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL", "unknown": "??  "}
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unknown": "dim"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="sanity checks: channels, NUMA, THP, governor, engine build, GPU links...",
        description="Check this rig for the usual reasons LLM inference is slow. Exit code 0: "
        "all pass, 1: some warn, 2: some fail (unknown does not count).",
    )  # fmt: skip
    add_root_arg(p)
    p.add_argument("--json", action="store_true", help="a JSON list of checks")
    p.add_argument("--profile", metavar="P", help="check for this profile's model and threads")
    p.add_argument("--model", metavar="PATH", help="check free memory and page cache for PATH")
    p.add_argument("--only", metavar="ID", action="append", help="run only these check ids")
    p.add_argument("-v", "--verbose", action="store_true", help="show evidence and why for all")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rigtui.analysis.checks import CHECK_IDS, exit_code, run_checks
    from rigtui.analysis.context import build_context
    from rigtui.commands._analysis import (
        detect_topology,
        engine_facts,
        err,
        missing_root,
        resolve_model,
    )
    from rigtui.commands._common import print_json

    unknown_ids = [i for i in (args.only or []) if i not in CHECK_IDS]
    if unknown_ids:
        err(f"unknown check id(s) {', '.join(unknown_ids)}; ids: {', '.join(CHECK_IDS)}")
        return EXIT_USAGE
    fs = make_fs(args)
    if why := missing_root(fs):
        err(why)
        return EXIT_USAGE
    topology = detect_topology(fs)
    choice = resolve_model(args, topology)
    if choice.error:
        err(choice.error)
        return EXIT_USAGE
    info, offload, reason = engine_facts(fs.is_live)
    server = None
    if fs.is_live and (not args.only or "llama_server_build" in args.only):
        from rigtui.engine.llama_server import binary_info, find_binary, info_json

        found = find_binary("llama-server", getattr(choice.profile, "binary", None))
        server = info_json(found, binary_info(found.path) if found.path else None)
    threads = getattr(choice.profile, "threads", None) if choice.profile else None
    ctx = build_context(
        fs,
        model_path=choice.path,
        model_source=choice.source,
        profile_threads=threads,
        profile=choice.profile,
        engine_system_info=info,
        engine_gpu_offload=offload,
        engine_reason=reason,
        server_build=server,
        topology=topology,
    )
    checks = run_checks(topology, ctx, only=args.only)
    if args.json:
        print_json(checks)
    else:
        _print(checks, args.verbose, fs.root)
    return exit_code(checks)


def _print(checks, verbose: bool, root: str) -> None:
    import textwrap

    from rich.console import Console
    from rich.markup import escape

    con = Console(highlight=False, soft_wrap=True)
    width = max(40, con.width)

    def wrapped(text: str, first: str, rest: str) -> list[str]:
        # Wrapped at the terminal's width with a hanging indent; commands are not hyphen-split.
        return textwrap.wrap(
            text, width=width, initial_indent=first, subsequent_indent=rest,
            break_long_words=False, break_on_hyphens=False,
        ) or [first]  # fmt: skip

    if root != "/":
        con.print(f"[dim]machine: captured tree {escape(root)}[/]")
    for c in checks:
        head, *more = wrapped(c.summary, " " * 28, " " * 28)
        con.print(f"[{_STYLE[c.status]}]{_MARK[c.status]}[/] {c.id:<22} {escape(head[28:])}")
        for line in more:
            con.print(escape(line))
        if verbose or c.status in ("warn", "fail"):
            for ev in c.evidence:
                for line in wrapped(f"{ev.source}: {ev.value}", " " * 7, " " * 9):
                    con.print(f"[dim]{escape(line)}[/]")
            for line in wrapped(f"why: {c.why}", " " * 7, " " * 12):
                con.print(escape(line))
        if c.fix and (verbose or c.status in ("warn", "fail")):
            for line in wrapped(f"fix: {c.fix}", " " * 7, " " * 12):
                con.print(f"[bold]{escape(line)}[/]")
    counts = {s: sum(1 for c in checks if c.status == s) for s in _MARK}
    con.print(
        f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail, "
        f"{counts['unknown']} unknown"
    )
