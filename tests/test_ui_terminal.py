"""The real terminal, through tmux: what rigtui leaves behind when it is told to go."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import psutil
import pytest
from engine_helpers import write_profile

pytest_plugins = ["engine_fixtures"]  # demo8m, xdg
pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]  # fmt: skip


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _until(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.fixture()
def pane():
    session = f"rigtui-test-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30")
    _tmux("set-option", "-t", session, "remain-on-exit", "on")
    try:
        yield session
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _state(session: str) -> dict[str, str]:
    out = _tmux("display-message", "-p", "-t", session,
                "#{pane_pid} #{pane_dead} #{alternate_on} #{mouse_any_flag}")  # fmt: skip
    pid, dead, alt, mouse = out.split()
    return {"pid": pid, "dead": dead, "alt": alt, "mouse": mouse}


def _launch(pane: str, tmp_path, demo8m) -> tuple[psutil.Process, list[psutil.Process]]:
    """`rigtui --launch PROFILE` as the pane's program, once it draws and its engine runs:
    (the app, its engine workers)."""
    prof = write_profile(tmp_path, "term", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    env = " ".join(f"{k}={v}" for k, v in (("XDG_CONFIG_HOME", os.environ["XDG_CONFIG_HOME"]),
                                           ("XDG_CACHE_HOME", os.environ["XDG_CACHE_HOME"])))  # fmt: skip
    _tmux("send-keys", "-t", pane, f"exec env {env} {sys.executable} -m rigtui --launch {prof}",
          "Enter")  # fmt: skip
    app = psutil.Process(int(_state(pane)["pid"]))
    assert _until(lambda: _state(pane)["alt"] == "1", 30), "the app never drew"
    workers: list[psutil.Process] = []

    def engine_up() -> bool:
        workers[:] = [c for c in app.children(recursive=True)
                      if "rigtui.engine.worker" in " ".join(c.cmdline())]  # fmt: skip
        return bool(workers)

    assert _until(engine_up, 60), "the engine never started"
    return app, workers


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_gives_the_terminal_back_and_stops_the_engine(pane, sig, tmp_path, demo8m, xdg):
    app, workers = _launch(pane, tmp_path, demo8m)
    pid = app.pid
    os.kill(pid, sig)
    assert _until(lambda: _state(pane)["dead"] == "1", 20), "rigtui did not exit"
    state = _state(pane)
    assert state["alt"] == "0" and state["mouse"] == "0", state  # the terminal is given back
    assert _until(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE
                                  for w in workers), 5), "the engine outlived the app"  # fmt: skip


def test_closing_the_terminal_takes_the_app_and_its_engine_down(pane, tmp_path, demo8m, xdg):
    """The terminal goes away under a running TUI (an SSH session dropped, a tmux window
    killed): the app and the engine it launched are gone within 2 s, no orphan left."""
    app, workers = _launch(pane, tmp_path, demo8m)
    subprocess.run(["tmux", "kill-session", "-t", pane], capture_output=True, check=True)

    def gone(p: psutil.Process) -> bool:
        try:
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    assert _until(lambda: gone(app), 20), "the app outlived its terminal"
    assert _until(lambda: all(gone(w) for w in workers), 2), "the engine outlived the app by 2 s"
