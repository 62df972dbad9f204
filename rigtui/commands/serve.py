"""`rigtui serve PROFILE [--listen HOST:PORT] [--json]`: launch a profile placed, serve it.

The engine child pins its CPUs and sets the memory policy before the model loads (exactly as
`rigtui run`), proves the placement, then answers the OpenAI-compatible API (`/v1/models`,
`/v1/chat/completions`, `/v1/completions`, `/health`) until SIGINT/SIGTERM. stderr says what
happens: `serving NAME at http://HOST:PORT/v1` once it answers, then one line per request.
`--json` streams the engine events (NDJSON) on stdout instead, a `serving` event among them.
Exit codes: 0 stopped by a signal, 2 bad --listen, 3 bad profile, 4 the engine failed.
"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import (
    EXIT_BAD_PROFILE,
    EXIT_ENGINE,
    EXIT_OK,
    EXIT_USAGE,
    add_root_arg,
    make_fs,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="launch a profile placed and serve it (OpenAI-compatible API)",
        description="Launch PROFILE in its own pinned engine process and serve an OpenAI-"
        "compatible API (GET /v1/models, POST /v1/chat/completions and /v1/completions, "
        "stream or not, GET /health) until Ctrl-C or SIGTERM. Point SillyTavern, Open WebUI "
        "or the openai client at the URL it prints. Exit codes: 0 stopped, 2 bad --listen, "
        "3 bad profile, 4 engine failure.",
    )  # fmt: skip
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="address to answer on (default: the profile's listen key, else "
                   "127.0.0.1:8080; port 0 picks a free one). A non-loopback address needs "
                   "the profile's api_key_env")  # fmt: skip
    p.add_argument("--no-key", action="store_true",
                   help="serve without an API key (loopback only). Every user of this machine "
                   "can then use the endpoint; by default clients need your key file's key")  # fmt: skip
    p.add_argument("--json", action="store_true", help="stream engine events as NDJSON on stdout")
    p.add_argument("--log", action="store_true", help="also show llama.cpp's log")
    add_root_arg(p)
    p.set_defaults(func=run)


def resolve_listen(cli_value: str | None, profile, no_key: bool = False) -> tuple[str, int]:
    """(host, port) from --listen, else the profile's `listen`, else DEFAULT_LISTEN.
    Raises ValueError for a malformed address, a non-loopback one without an API key, or
    --no-key where it cannot apply."""
    from rigtui.model.profile import DEFAULT_LISTEN, is_loopback, parse_listen

    text = cli_value or profile.listen or DEFAULT_LISTEN
    host, port = parse_listen(text)
    if no_key and not is_loopback(host):
        raise ValueError(f"--no-key: {text} is reachable from other machines; --no-key is for "
                         "loopback addresses only")  # fmt: skip
    if not is_loopback(host) and not profile.api_key_env:
        raise ValueError(
            f"--listen {text}: other machines could use this endpoint, and the profile names no "
            "API key.\n  hint: add api_key_env = \"RIGTUI_API_KEY\" to the profile and export "
            "RIGTUI_API_KEY=<a long random string>; clients send it as `Authorization: Bearer "
            "KEY` (the openai client's api_key)"
        )
    if no_key and profile.api_key_env:
        raise ValueError(f"--no-key, but the profile names api_key_env = {profile.api_key_env!r}: "
                         "drop one of them")  # fmt: skip
    return host, port


def free_listen(host: str, port: int, tries: int = 20, taken: set[int] | None = None
                ) -> tuple[str, int]:  # fmt: skip
    """(host, the first of port, port+1, ... not in `taken` that can be bound now); the port
    itself if none."""
    import socket

    for candidate in range(port, port + tries):
        if taken and candidate in taken:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return host, candidate
    return host, port


def request_line(done) -> str:
    """One line per answered request, like a server's access log but with the speeds."""
    from rigtui.commands.run import stats_line

    return "request: " + stats_line(done, None)


def run(args: argparse.Namespace) -> int:
    from rigtui.commands._common import load_profile_or_report, print_ndjson, stop_on_signals
    from rigtui.commands.run import _announce_demo_model, exit_message, placement_line
    from rigtui.engine import EngineProcess
    from rigtui.model.engine import (
        Done,
        Error,
        Exit,
        Log,
        Placement,
        PolicyApplied,
        Serving,
        event_to_json,
        key_hint,
    )
    from rigtui.probes import detect

    topology = detect(make_fs(args), nvml=None)
    profile = load_profile_or_report(args.profile, topology)
    if profile is None:
        return EXIT_BAD_PROFILE
    try:
        listen = resolve_listen(args.listen, profile, args.no_key)
    except ValueError as exc:
        print(f"rigtui serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    engine = EngineProcess(profile, instance=profile.name, topology=topology,
                           log_events=args.log, listen=listen, no_key=args.no_key)  # fmt: skip
    _announce_demo_model(profile, "serve")
    code = EXIT_ENGINE
    with stop_on_signals():  # SIGTERM/SIGHUP stop the engine as Ctrl-C does
        try:
            try:
                engine.start()
            except (OSError, ValueError) as exc:
                print(f"rigtui serve: cannot start the engine: {exc}", file=sys.stderr)
                return EXIT_ENGINE
            print(f"rigtui serve: loading {profile.name} ({engine.model_path}) ...", file=sys.stderr)
            serving = False
            for ev in engine.events():
                if args.json:
                    if not isinstance(ev, Log) or args.log:
                        print_ndjson(event_to_json(ev))
                elif isinstance(ev, Log) and args.log:
                    print(ev.line, file=sys.stderr)
                elif isinstance(ev, PolicyApplied):
                    for w in ev.warnings:
                        print(f"rigtui serve: {w}", file=sys.stderr)
                elif isinstance(ev, Placement) and (not serving or ev.warnings):
                    print(placement_line(ev), file=sys.stderr)
                    for w in ev.warnings:
                        print(f"rigtui serve: WARNING: placement not as asked: {w}", file=sys.stderr)
                elif isinstance(ev, Done):
                    print(request_line(ev), file=sys.stderr)
                if isinstance(ev, Serving):
                    serving = True
                    print(f"serving {profile.name} at {ev.url}\n  {key_hint(ev.key)}",
                          file=sys.stderr, flush=True)  # fmt: skip
                elif isinstance(ev, Error) and not args.json:
                    kind = ev.kind + " error" if ev.kind != "error" else "engine"
                    print(f"rigtui serve: {kind}: {ev.message}"
                          + (f"\n  hint: {ev.hint}" if ev.hint else ""), file=sys.stderr)  # fmt: skip
                elif isinstance(ev, Exit):
                    if not args.json and (ev.code != 0 or ev.signal is not None):
                        print(exit_message(ev).replace("rigtui run:", "rigtui serve:")
                              .replace("before the answer was done", "while serving" if serving
                                       else "before it could serve"), file=sys.stderr)  # fmt: skip
                    code = EXIT_ENGINE
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (stop_on_signals)
            if not args.json:
                print(f"rigtui serve: stopping {profile.name}", file=sys.stderr)
            engine.stop(timeout=5.0)
            code = EXIT_OK
        finally:
            if engine.running:
                engine.stop(timeout=5.0)
    return code
