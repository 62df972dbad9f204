"""Who may use what rigtui serves (engine/access.py, `rigtui web`'s token), tested from the
outside: with and without the key, and as another local user (`nobody`, through setpriv),
which is who 127.0.0.1 does not keep out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, Served, _alive, free_port, start_web, ws_upgrade

from rigtui.engine.access import (
    AccessError,
    EndpointKey,
    client_key,
    endpoint_key,
    key_file,
    load_or_create_key,
    read_key_file,
)
from rigtui.model.engine import key_hint

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg

NOBODY = 65534


def _can_switch_user() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None and shutil.which("curl") is not None


as_other_user = pytest.mark.skipif(not _can_switch_user(),
                                   reason="needs root, setpriv and curl to act as another user")  # fmt: skip


def as_nobody(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run argv as uid/gid 65534 (nobody) with no supplementary groups."""
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           *argv], capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _status(url: str, key: str | None = None, data: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture()
def open_config(monkeypatch):
    """A config dir every user may enter (0755 from / down, as ~/.config often is), so only
    the key file's own mode keeps other users out of it."""
    base = Path(tempfile.mkdtemp(prefix="rigtui-access-", dir="/tmp"))
    base.chmod(0o755)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)


# -- the key file --------------------------------------------------------------------------------
def test_the_key_file_is_made_once_private_and_kept(xdg):
    path = key_file()
    assert not path.exists()
    key = load_or_create_key()
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert len(key) >= 40 and key.isascii() and " " not in key
    assert load_or_create_key() == key  # the same key next launch: a frontend is told it once
    assert endpoint_key(None) == EndpointKey(key, f"file:{path}")
    assert client_key() == key


def test_concurrent_first_launches_agree_on_one_key(xdg):
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_key())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys) == 8
    assert [p.name for p in key_file().parent.iterdir()] == ["api-key"]  # no temporary left


def test_a_key_file_others_can_read_is_refused(xdg):
    load_or_create_key()
    key_file().chmod(0o644)
    with pytest.raises(AccessError, match="chmod 600"):
        endpoint_key(None)


def test_a_symlinked_or_foreign_or_garbage_key_file_is_refused(xdg, tmp_path):
    path = key_file()
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("x" * 40)
    target.chmod(0o600)
    path.symlink_to(target)
    with pytest.raises(AccessError, match="cannot read"):  # O_NOFOLLOW
        read_key_file(path)
    path.unlink()
    path.write_text("two words here and more\n")
    path.chmod(0o600)
    with pytest.raises(AccessError, match="does not hold one key"):
        read_key_file(path)
    path.write_bytes(b"k" * 10_000)
    with pytest.raises(AccessError, match="does not hold one key"):
        read_key_file(path)
    if os.geteuid() == 0:
        path.write_text("k" * 40)
        os.chown(path, NOBODY, NOBODY)
        with pytest.raises(AccessError, match="belongs to uid 65534"):
            read_key_file(path)


def test_the_profiles_variable_wins_and_must_hold_a_real_key(xdg, monkeypatch):
    monkeypatch.setenv("MY_KEY", "abcdefghijklmnopqrstuvwxyz")
    assert endpoint_key("MY_KEY") == EndpointKey("abcdefghijklmnopqrstuvwxyz", "env:MY_KEY")
    assert not key_file().exists()  # no file made when the profile names its own key
    monkeypatch.setenv("MY_KEY", "short")
    with pytest.raises(AccessError, match="16-512"):
        endpoint_key("MY_KEY")
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(AccessError, match="not set"):
        endpoint_key("MY_KEY")
    assert endpoint_key(None, no_key=True) == EndpointKey(None, "none")


def test_bearer_check():
    k = EndpointKey("k" * 20, "env:X")
    assert k.check("Bearer " + "k" * 20)
    assert not k.check("Bearer " + "k" * 19) and not k.check("k" * 20)
    assert not k.check(None) and not k.check("Basic " + "k" * 20)
    assert EndpointKey(None, "none").check(None)


def test_the_hint_says_where_the_key_is_never_the_key(monkeypatch):
    monkeypatch.setenv("HOME", "/home/ann")
    assert key_hint("file:/home/ann/.config/rigtui/api-key").startswith(
        "API key: in ~/.config/rigtui/api-key")
    assert key_hint("env:RIGTUI_API_KEY") == "API key: the value of $RIGTUI_API_KEY"
    assert "every user" in key_hint("none")


# -- the served endpoint -------------------------------------------------------------------------
def test_serve_asks_for_the_key_by_default_and_other_users_cannot_have_it(open_config, tmp_path,
                                                                         demo8m):  # fmt: skip
    prof = write_profile(tmp_path, "mine", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    served = Served(prof, "--listen", "127.0.0.1:0")
    try:
        ev = served.wait_for("serving")
        path = open_config / "rigtui" / "api-key"
        assert ev["auth"] is True and ev["key"] == f"file:{path}"
        key = path.read_text().strip()
        base = ev["url"][: -len("/v1")]
        completion = json.dumps({"prompt": "x", "max_tokens": 2}).encode()
        assert _status(base + "/health") == 200  # liveness is public, as llama-server's
        for route in ("/v1/models", "/slots", "/metrics", "/docs", "/openapi.json"):
            assert _status(base + route) == 401, route
        assert _status(base + "/v1/completions", data=completion) == 401
        assert _status(base + "/v1/completions", key="x" * 43, data=completion) == 401
        assert _status(base + "/v1/completions", key=key, data=completion) == 200
        assert _status(base + "/metrics", key=key) == 200
        worker = served.worker_pid()
        with open(f"/proc/{worker}/cmdline", "rb") as f:  # world-readable: the key is not there
            assert key.encode() not in f.read()
        if _can_switch_user():
            r = as_nobody("cat", str(path))
            assert r.returncode != 0 and "Permission denied" in r.stderr
            r = as_nobody("cat", f"/proc/{worker}/environ")  # where the child holds it
            assert r.returncode != 0, r.stdout[:200]
            r = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                          "Content-Type: application/json", "-d", completion.decode(),
                          base + "/v1/completions")  # fmt: skip
            assert r.stdout == "401", r
            r = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/health")
            assert r.stdout == "200", r
    finally:
        code, err = served.stop()
    assert code == 0
    assert f"API key: in {path}" in err or "API key: in ~/" in err


def test_serve_no_key_is_open_and_for_loopback_only(xdg, tmp_path, demo8m):
    prof = write_profile(tmp_path, "open", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof), "--no-key",
                        "--listen", "0.0.0.0:0"], capture_output=True, text=True, cwd=REPO,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and "loopback addresses only" in r.stderr
    served = Served(prof, "--listen", "127.0.0.1:0", "--no-key")
    try:
        ev = served.wait_for("serving")
        assert ev["auth"] is False and ev["key"] == "none"
        assert _status(ev["url"] + "/models") == 200
        assert not key_file().exists()  # asked for none: none made
    finally:
        code, err = served.stop()
    assert code == 0 and "every user of this machine can use it" in err


def test_a_key_file_others_can_read_stops_serve_before_the_engine_starts(xdg, tmp_path, demo8m):
    load_or_create_key()
    key_file().chmod(0o640)
    prof = write_profile(tmp_path, "leaky", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof), "--listen",
                        "127.0.0.1:0"], capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert r.returncode == 4 and "chmod 600" in r.stderr and "serving" not in r.stderr


# -- rigtui web ----------------------------------------------------------------------------------
def _ws_handshake(port: int, cookie: str | None, origin: str | None) -> int:
    """The status of a WebSocket upgrade to /ws (101 = the app would start)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(ws_upgrade(port, cookie, origin))
        head = s.recv(4096).decode("latin-1")
    return int(head.split()[1])


@pytest.fixture()
def web_server(xdg):
    pytest.importorskip("textual_serve")
    port = free_port()
    proc, token = start_web(port, start_new_session=True)
    yield port, token, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def test_web_refuses_everyone_without_the_token(web_server):
    port, token, proc = web_server
    base = f"http://127.0.0.1:{port}"
    assert _status(base + "/") == 403
    assert _status(base + "/?token=" + "x" * len(token)) == 403
    assert _status(base + "/static/js/textual.js") == 403
    assert _ws_handshake(port, None, None) == 403
    assert _ws_handshake(port, f"rigtui_web_{port}=wrong", None) == 403
    assert _children(proc.pid) == []  # nothing was started for them


def test_web_token_becomes_a_cookie_and_the_websocket_needs_it_and_our_origin(web_server):
    port, token, proc = web_server

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[override]
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as exc:
        opener.open(f"http://127.0.0.1:{port}/?token={token}&fontsize=14", timeout=10)
    assert exc.value.code == 302 and exc.value.headers["Location"] == "/?fontsize=14"
    set_cookie = exc.value.headers["Set-Cookie"]
    assert set_cookie.startswith(f"rigtui_web_{port}={token}")
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    cookie = f"rigtui_web_{port}={token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and b"ws://127.0.0.1" in r.read()
    assert _ws_handshake(port, cookie, "http://evil.example") == 403  # another site's page
    assert _ws_handshake(port, cookie, f"http://127.0.0.1:{port}") == 101


@as_other_user
def test_another_user_cannot_drive_web(web_server):
    port, token, proc = web_server
    r = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/")
    assert r.stdout == "403", r
    r = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                  "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
                  "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                  f"http://127.0.0.1:{port}/ws")  # fmt: skip
    assert r.stdout == "403", r
    with open(f"/proc/{proc.pid}/cmdline", "rb") as f:  # what every user can read of it
        assert token.encode() not in f.read()
    assert _children(proc.pid) == []


def test_web_leaves_no_app_behind_when_stopped(web_server):
    port, token, proc = web_server
    cookie = f"rigtui_web_{port}={token}"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(ws_upgrade(port, cookie))
        assert s.recv(4096).split()[1] == b"101"
        deadline = time.monotonic() + 30
        while not _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        apps = _children(proc.pid)
        assert apps, "no rigtui app was started for the WebSocket"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    deadline = time.monotonic() + 2
    while any(_alive(p) for p in apps) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in apps), "the app outlived `rigtui web`"


def test_watching_an_endpoint_without_its_key_says_so(xdg, tmp_path, demo8m):
    from rigtui.engine.server_monitor import EndpointWatch

    prof = write_profile(tmp_path, "keyed", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    served = Served(prof, "--listen", "127.0.0.1:0")
    try:
        url = served.wait_for("serving")["url"]
        watch = EndpointWatch(url, "not-the-key-0123456789")
        watch.start()
        deadline = time.monotonic() + 20
        while watch.stats.last_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        watch.stop()
        assert watch.stats.last_error is not None and "refused" in watch.stats.last_error
    finally:
        served.stop()
