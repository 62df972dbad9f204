"""`rigtui serve` as a child process for the serving tests (both engines)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Served:
    """`python -m rigtui serve PROFILE --json` as a child; its NDJSON events read in a thread.
    A test that fails before stopping it leaves it to `reap()` (conftest runs it after every
    test), so one failure does not leave a server running into the next tests."""

    live: list[Served] = []

    @classmethod
    def reap(cls) -> None:
        while cls.live:
            served = cls.live.pop()
            if served.proc.poll() is None:
                served.proc.terminate()
                try:
                    served.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    served.proc.kill()
                    served.proc.wait(timeout=30)

    def __init__(self, profile: Path, *args: str, env: dict[str, str] | None = None) -> None:
        Served.live.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rigtui", "serve", str(profile), "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.events: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, kind: str, timeout: float = 120.0, **fields: object) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.events.empty():
                    break
                continue
            self.seen.append(ev)
            if ev["event"] == kind and all(ev.get(k) == v for k, v in fields.items()):
                return ev
        raise AssertionError(f"no {kind} event; got {[e['event'] for e in self.seen]}, "
                             f"stderr: {self.stderr_now()}")  # fmt: skip

    def stderr_now(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def worker_pid(self) -> int:
        return next(e["pid"] for e in self.seen if e["event"] == "starting")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        return code, self.proc.stderr.read() if self.proc.stderr else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not a running engine
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(port: int, **popen: object) -> tuple[subprocess.Popen, str]:
    """`rigtui web --port PORT` as a child, once it accepts connections: (process, the token
    from the URL it printed). Its output is drained in a thread from then on."""
    import socket

    proc = subprocess.Popen([sys.executable, "-m", "rigtui", "web", "--port", str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)  # type: ignore[call-overload]  # fmt: skip
    assert proc.stdout is not None
    token = None
    for line in proc.stdout:
        if "?token=" in line:
            token = line.rsplit("?token=", 1)[1].split()[0]
            break
    assert token, "rigtui web printed no URL with a token"
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, token


def ws_upgrade(port: int, cookie: str | None = None, origin: str | None = None) -> bytes:
    """The request that opens `rigtui web`'s WebSocket (/ws), with its cookie and Origin."""
    lines = ["GET /ws?width=80&height=24 HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]  # fmt: skip
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if origin:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
