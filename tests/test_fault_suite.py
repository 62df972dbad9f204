"""The process fault suite: every child rigtui starts — the embedded engine worker, llama-server,
the apps `rigtui web` runs per browser tab — is gone within 2 s of rigtui exiting, for every
way it can end: SIGTERM, SIGINT, SIGHUP (the terminal closing), SIGKILL, an exception in
rigtui itself, and with its children stopped (SIGSTOP) first. The TUI's own case, its
terminal closing under it, is in test_ui_terminal.

(`rigtui rpc-server` has no child: it becomes rpc-server by execve.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, _alive, free_port, start_web, ws_upgrade

from rigtui.engine.llama_server import find_binary

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m
pytestmark = pytest.mark.timeout(180)

RAISE = "raise"  # the exit reason "an exception inside rigtui"
REASONS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL, RAISE]

# sitecustomize for the RAISE case: rigtui's own event loop fails once the children run
_RAISER = """
import os
if os.environ.get("RIGTUI_FAULT_RAISE"):
    import threading
    def _arm():
        import rigtui.engine.client as client
        real = client.EngineProcess.events
        def events(self, *a, **kw):
            for ev in real(self, *a, **kw):
                yield ev
                if os.path.exists(os.environ["RIGTUI_FAULT_RAISE"]):
                    raise RuntimeError("injected fault: rigtui's loop raised")
        client.EngineProcess.events = events
    _arm()
"""


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _reader(proc: subprocess.Popen, until: str) -> threading.Event:
    """Drain the child's stdout in a thread; the event is set once a line containing `until`
    has been seen."""
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if until in line:
                seen.set()

    threading.Thread(target=read, daemon=True).start()
    return seen


def _engine_cli(tmp_path, argv: list[str], until: str, raiser: bool) -> subprocess.Popen:
    env = {**os.environ}
    if raiser:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(textwrap.dedent(_RAISER))
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
        env["RIGTUI_FAULT_RAISE"] = str(tmp_path / "raise-now")
    return subprocess.Popen([sys.executable, "-m", "rigtui", *argv, "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip


class Target:
    """How to start one kind of rigtui with children, and how to know they are up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hold: list[object] = []  # sockets kept open (the web session)

    def start(self, tmp_path: Path, demo8m: Path, raiser: bool) -> subprocess.Popen:
        if self.name == "run":
            prof = write_profile(tmp_path, "f", f'model = "{demo8m}"\nctx = 8192\nthreads = 1\n')
            proc = _engine_cli(tmp_path, ["run", str(prof), "-p", "go", "-n", "8000"],
                               '"event": "token"', raiser)  # fmt: skip
            self.up = _reader(proc, '"event": "token"')
        elif self.name in ("serve", "serve-llama-server"):
            engine = "llama-server" if self.name == "serve-llama-server" else "llama-cpp-python"
            if engine == "llama-server" and find_binary("llama-server").path is None:
                pytest.skip("no llama-server: rigtui engines build")
            prof = write_profile(tmp_path, "f", f'engine = "{engine}"\nmodel = "{demo8m}"\n'
                                 "ctx = 512\nthreads = 1\n")  # fmt: skip
            proc = _engine_cli(tmp_path, ["serve", str(prof), "--listen", "127.0.0.1:0"],
                               '"event": "serving"', raiser)  # fmt: skip
            self.up = _reader(proc, '"event": "serving"')
        elif self.name == "web":
            pytest.importorskip("textual_serve")
            if raiser:
                pytest.skip("rigtui web runs no engine loop to fail in")
            port = free_port()
            proc, token = start_web(port)
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(ws_upgrade(port, f"rigtui_web_{port}={token}"))
            assert s.recv(4096).split()[1] == b"101"
            # the app is up once it draws: before that it may not have asked to die with us
            got, deadline = 0, time.monotonic() + 60
            s.settimeout(5)
            while got < 2000 and time.monotonic() < deadline:
                got += len(s.recv(65536))
            self.hold.append(s)
            self.up = threading.Event()
            self.up.set()
        else:
            raise AssertionError(self.name)
        return proc

    def children_up(self, proc: subprocess.Popen, timeout: float = 120) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = _descendants(proc.pid)
            if self.up.is_set() and kids:
                if self.name == "web":  # the app itself, not only the shell that starts it
                    if any("rigtui" in " ".join(_cmdline(k)) for k in kids):
                        return kids
                else:
                    return kids
            if proc.poll() is not None:
                raise AssertionError(f"rigtui {self.name} exited ({proc.returncode}) early")
            time.sleep(0.05)
        raise AssertionError(f"rigtui {self.name}: children not up in {timeout} s")


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


CASES = [(t, r, stopped) for t in ("run", "serve", "serve-llama-server", "web") for r in REASONS
         for stopped in (False, True) if not stopped or r in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)]  # fmt: skip


def _id(case) -> str:
    t, r, stopped = case
    return f"{t}-{r if r == RAISE else signal.Signals(r).name}{'-stopped' if stopped else ''}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_no_child_outlives_rigtui(tmp_path, demo8m, case):
    target_name, reason, stopped = case
    target = Target(target_name)
    proc = target.start(tmp_path, demo8m, raiser=reason == RAISE)
    kids: list[int] = []
    try:
        kids = target.children_up(proc)
        if stopped:
            for k in kids:
                os.kill(k, signal.SIGSTOP)
        if reason == RAISE:
            (tmp_path / "raise-now").touch()  # the next event raises inside rigtui
            if target_name.startswith("serve"):  # a served engine is quiet: give it an event
                _poke_endpoint(proc)
        else:
            os.kill(proc.pid, reason)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 2.0
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [(k, _cmdline(k)[:4]) for k in kids if _alive(k)]
        assert not left, f"outlived rigtui {target_name} ({_id(case)}) by 2 s: {left}"
    finally:
        for s in target.hold:
            s.close()  # type: ignore[attr-defined]
        if proc.poll() is None:
            proc.kill()
        for k in {*kids, *_descendants(proc.pid)}:  # what a failed case left: not the next's
            with contextlib.suppress(OSError):
                os.kill(k, signal.SIGKILL)


def _poke_endpoint(proc: subprocess.Popen) -> None:
    """A request to the served engine, so its event loop has something to fail on."""
    import urllib.request

    from rigtui.engine.access import client_key

    conns = [c for c in psutil.Process(proc.pid).children(recursive=True)]
    for child in conns:
        for c in child.net_connections(kind="tcp4"):
            if c.status == psutil.CONN_LISTEN:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{c.laddr.port}/v1/completions",
                    data=json.dumps({"prompt": "x", "max_tokens": 2}).encode(),
                    headers={"Content-Type": "application/json",
                             "Authorization": f"Bearer {client_key()}"})  # fmt: skip
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(req, timeout=10).read()
                return
