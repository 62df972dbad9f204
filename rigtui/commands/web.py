"""`rigtui web`: serve the dashboard to a browser with textual-serve (optional extra `web`).

Each browser tab starts its own `rigtui` process; bind to 127.0.0.1 by default (anyone who can
reach the port can launch engines), and use an SSH tunnel to reach it from another machine.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from rigtui.cli import EXIT_FAILURE, add_root_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "web",
        help="serve the dashboard to a browser (needs the `web` extra: textual-serve)",
        description="Serve the rigtui dashboard over HTTP with textual-serve. "
        "Reach it from elsewhere with `ssh -L 8000:127.0.0.1:8000 HOST`.",
    )
    add_root_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh (seconds)")
    p.set_defaults(func=run)


def build_command(args: argparse.Namespace) -> str:
    argv = [sys.executable, "-m", "rigtui", "--interval", str(args.interval)]
    if getattr(args, "root", None):
        argv += ["--root", args.root]
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        print(
            "rigtui web needs textual-serve: pip install 'rigtui[web]' "
            "(or pip install textual-serve)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    command = build_command(args)
    print(f"serving `{command}` on http://{args.host}:{args.port}/ (Ctrl+C stops)")
    Server(command, host=args.host, port=args.port, title="rigtui").serve()
    return 0
