"""`rigtui web`: serve the dashboard to a browser with textual-serve (optional extra `web`).

Each browser tab starts its own `rigtui` process as the user who ran `rigtui web`, so whoever
can use the page can launch engines and read what that user can. Every user of the machine
can connect to 127.0.0.1, so the address alone guards nothing: like Jupyter, `rigtui web`
makes a random token at start and prints the URL with it. The first visit with the token
swaps it for a cookie (HttpOnly, SameSite=Strict, this port only); every other request,
the WebSocket that drives the app included, needs that cookie, and the WebSocket also needs
the page's own origin (another web site open in the same browser cannot drive it). Bind to
127.0.0.1 (the default) and reach it from elsewhere with an SSH tunnel.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import secrets
import shlex
import sys
from typing import Any
from urllib.parse import urlencode, urlsplit

from rigtui.cli import EXIT_FAILURE, add_root_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "web",
        help="serve the dashboard to a browser (needs the `web` extra: textual-serve)",
        description="Serve the rigtui dashboard over HTTP with textual-serve. Open the URL it "
        "prints: it carries a one-time token, and without it the page refuses everyone (every "
        "user of this machine can reach 127.0.0.1). Reach it from elsewhere with "
        "`ssh -L 8000:127.0.0.1:8000 HOST`.",
    )
    add_root_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh (seconds)")
    p.set_defaults(func=run)


def build_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per tab. `exec`: the shell becomes the app, so the
    app is this server's child and dies with it (RIGTUI_WEB_PARENT, PR_SET_PDEATHSIG)."""
    argv = [sys.executable, "-m", "rigtui", "--interval", str(args.interval)]
    if getattr(args, "root", None):
        argv += ["--root", args.root]
    return "exec " + shlex.join(argv)


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def guard(token: str, port: int) -> Any:
    """The aiohttp middleware that lets in only the holder of `token` (see the module doc)."""
    from aiohttp import web

    cookie = f"rigtui_web_{port}"  # cookies are per host, not per port: one per server

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if _same(request.query.get("token"), token):
            # first visit: the token becomes a cookie, and leaves the address bar and history
            rest = {k: v for k, v in request.query.items() if k != "token"}
            resp = web.Response(status=302, headers={
                "Location": request.path + (f"?{urlencode(rest)}" if rest else "")})  # fmt: skip
            resp.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
            return resp
        if not _same(request.cookies.get(cookie), token):
            return web.Response(status=403, text="rigtui web: open the URL with the token that "
                                "`rigtui web` printed when it started\n")  # fmt: skip
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text="rigtui web: cross-origin WebSocket refused\n")
        return await handler(request)

    return middleware


def make_server(command: str, host: str, port: int, token: str) -> Any:
    """textual-serve's Server with `guard` in front of every route, and a shutdown that takes
    the apps down with it: upstream waits up to a minute for open WebSockets and leaves a
    SIGHUP (the terminal closing) to kill the server alone, its apps orphaned."""
    import asyncio
    import signal

    import psutil
    from textual_serve.server import Server

    class GuardedServer(Server):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sessions: set[asyncio.Task[Any]] = set()  # the open tabs' handlers

        async def _make_app(self) -> Any:
            app = await super()._make_app()
            app.middlewares.append(guard(token, port))
            return app

        async def handle_websocket(self, request: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self.sessions.add(task)
            try:
                return await super().handle_websocket(request)
            finally:
                self.sessions.discard(task)

        async def on_shutdown(self, app: Any) -> None:
            # a cancelled session closes its WebSocket and asks its app to quit (upstream's
            # CancelledError path); an app that has not gone within a second is killed
            for task in list(self.sessions):
                task.cancel()
            if self.sessions:
                await asyncio.wait(list(self.sessions), timeout=1.0)
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()

        def serve(self, debug: bool = False) -> None:
            loop = asyncio.new_event_loop()  # the loop upstream's serve() picks up
            asyncio.set_event_loop(loop)
            loop.add_signal_handler(signal.SIGHUP, self.request_exit)
            super().serve(debug)

    return GuardedServer(command, host=host, port=port, title="rigtui")


def run(args: argparse.Namespace) -> int:
    try:
        import textual_serve.server  # noqa: F401
    except ImportError:
        print(
            "rigtui web needs textual-serve: pip install 'rigtui[web]' "
            "(or pip install textual-serve)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    from rigtui.commands.tui import WEB_PARENT_ENV
    from rigtui.model.profile import is_loopback

    command = build_command(args)
    os.environ[WEB_PARENT_ENV] = str(os.getpid())  # the apps it starts inherit it
    token = secrets.token_urlsafe(24)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving `{command}` on http://{shown}:{args.port}/ (Ctrl+C stops)\n"
          f"  open http://{shown}:{args.port}/?token={token}\n"
          "  (without the token the page refuses everyone: other users of this machine too)"
          + ("" if is_loopback(args.host) else
             f"\n  {args.host} is reachable from other machines, over plain HTTP: the token "
             "crosses the network readable; an SSH tunnel to 127.0.0.1 is safer"),
          flush=True)  # fmt: skip
    make_server(command, args.host, args.port, token).serve()
    return 0
