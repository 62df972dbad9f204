"""`rigtui web` in a real browser: Debian's headless Chromium, driven over the DevTools protocol
(aiohttp's WebSocket client, which textual-serve brings). The page opened with the printed token
renders the dashboard; a key press switches the screen (the pixels change); `q` ends the app
behind the tab. A screenshot lands in assets/ when RIGTUI_WEB_SCREENSHOT=PATH is set."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import psutil
import pytest
from serve_helpers import free_port, start_web

pytest_plugins = ["engine_fixtures"]  # fixtures: xdg
pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BLANK_PNG_BYTES = 20_000  # an empty 1280x800 page compresses far below this; the dashboard not
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: chromium)"),
              pytest.mark.timeout(240)]  # fmt: skip


class Tab:
    """One page of a headless Chromium, over the DevTools protocol."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params) -> dict:
        self.n += 1
        await self.ws.send_str(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])

    async def key(self, ch: str) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=ch, text=ch if kind == "keyDown" else "",
                            code=f"Key{ch.upper()}", windowsVirtualKeyCode=ord(ch.upper()))  # fmt: skip


async def _settled(tab: Tab, seconds: float = 30.0, differs_from: bytes | None = None) -> bytes:
    """A screenshot once two in a row agree (the app drew and stopped), or four in a row were
    drawn (live figures keep changing), showing more than an empty page (a loaded machine can
    take longer than 2 s to draw the first screen: CI once settled on the blank page), and
    differing from `differs_from` when given."""
    deadline = time.monotonic() + seconds
    last = b""
    streak = 0  # drawn shots in a row: a live dashboard redraws its figures every second, so
    # on a loaded machine two shots in a row may never agree (CI: "the page never settled")
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        shot = await tab.screenshot()
        drawn = len(shot) > BLANK_PNG_BYTES and (differs_from is None or shot != differs_from)
        streak = streak + 1 if drawn else 0
        if drawn and (shot == last or streak >= 4):
            return shot
        last = shot
    raise AssertionError("the page never settled")


def _app_pids(web_pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(web_pid).children(recursive=True)
            if "rigtui" in " ".join(p.cmdline())]  # fmt: skip


def test_the_dashboard_renders_and_keys_work_in_chromium(xdg, tmp_path):
    port = free_port()
    web, token = start_web(port)
    devtools = free_port()
    profile = tempfile.mkdtemp(prefix="rigtui-chromium-", dir=tmp_path)
    browser = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                                "--no-first-run", "--window-size=1280,800",
                                f"--remote-debugging-port={devtools}", f"--user-data-dir={profile}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        targets: list = []
        while time.monotonic() < deadline and not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json", timeout=5) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
            except OSError:
                time.sleep(0.5)
        assert targets, "chromium's DevTools never answered"

        async def drive() -> tuple[bytes, bytes]:
            async with aiohttp.ClientSession() as session, session.ws_connect(
                targets[0]["webSocketDebuggerUrl"], max_msg_size=0
            ) as ws:
                tab = Tab(ws)
                await tab.call("Page.enable")
                await tab.call("Page.navigate", url=f"http://127.0.0.1:{port}/?token={token}")
                deadline = time.monotonic() + 60  # the app behind the tab starts
                while not _app_pids(web.pid) and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                assert _app_pids(web.pid), "no rigtui app was started for the tab"
                dash = await _settled(tab, 60)
                # xterm.js reads keys from its hidden textarea
                await tab.call("Runtime.evaluate",
                               expression="document.querySelector('.xterm-helper-textarea').focus()")
                await tab.key("t")  # the Topology screen
                topo = await _settled(tab, 30, differs_from=dash)
                await tab.key("q")  # quits the app behind the tab
                return dash, topo

        dash, topo = asyncio.run(drive())
        assert dash[:8] == b"\x89PNG\r\n\x1a\n" and len(dash) > BLANK_PNG_BYTES, "a blank page"
        assert hashlib.sha256(dash).digest() != hashlib.sha256(topo).digest()
        out = os.environ.get("RIGTUI_WEB_SCREENSHOT")
        if out:
            with open(out, "wb") as f:
                f.write(dash)
        deadline = time.monotonic() + 20
        while _app_pids(web.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _app_pids(web.pid), "q did not end the app behind the tab"
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)
