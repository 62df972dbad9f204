"""What a user or a client hands the engine, bounded: a prompt far past the context is refused
from its front (tokenizing 100 MB whole took 5.5 GB), a request body past what the context
can hold gets 413 before anyone reads it, `-n` cut to the context says so, and the command
line's sampling overrides pass the profile's own rules."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, Served

from rigtui.engine.access import client_key

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rigtui", "run", *args], input=stdin,
                          capture_output=True, cwd=REPO, timeout=300)  # fmt: skip


@pytest.fixture()
def small(tmp_path, demo8m):
    return write_profile(tmp_path, "small", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')


def test_a_prompt_far_past_the_context_is_refused_from_its_front(small):
    r = _run(str(small), "-p", "-", "-n", "4", stdin=b"the memory of a socket " * 400_000)  # 9 MB
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "fills the context (256 tokens): its first 16,384 bytes alone are" in err


def test_a_prompt_over_what_any_context_holds_is_refused_before_the_engine(small):
    r = _run(str(small), "-p", "-", stdin=b"x" * ((64 << 20) + 1))
    assert r.returncode == 2 and b"over 64 Mi characters" in r.stderr and b"loading" not in r.stderr


def test_n_cut_to_the_context_says_so(small):
    r = _run(str(small), "-p", "one two three " * 10, "-n", "200")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "note: generating at most" in err and "not 200" in err
    r = _run(str(small), "-p", "hello", "-n", "8")
    assert r.returncode == 0 and b"note:" not in r.stderr


@pytest.mark.parametrize("flag, value, why", [
    ("--temperature", "-1", "--temperature -1.0 is out of range"),
    ("--temperature", "nan", "--temperature nan is out of range"),
    ("--seed", str(2**40), "--seed 1099511627776 is out of range"),
    ("-n", str(1 << 30), "-n 1073741824 is out of range"),
])  # fmt: skip
def test_sampling_overrides_follow_the_profiles_rules(small, flag, value, why):
    r = _run(str(small), "-p", "hi", flag, value)
    assert r.returncode == 2 and why in r.stderr.decode()


def _post(port: int, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode() + body)
        s.shutdown(socket.SHUT_WR) if body else None
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:  # the server hung up on a body it would not read
            pass
    return out


def test_a_request_body_past_the_context_is_refused_unread(small):
    served = Served(small, "--listen", "127.0.0.1:0")
    try:
        url = served.wait_for("serving")["url"]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        auth = f"Authorization: Bearer {client_key()}\r\n"
        # 100 MB announced, nothing sent: the answer comes at once, the body is never read
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json"
                f"\r\nContent-Length: {100 << 20}\r\nConnection: close\r\n\r\n")  # fmt: skip
        out = _post(port, head)
        assert out.startswith(b"HTTP/1.1 413"), out[:200]
        assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_too_large"
        # without a Content-Length (chunked), the stream is cut off past the limit
        chunk = b"x" * (1 << 20)
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(12)) + b"0\r\n\r\n"
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json"
                "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")  # fmt: skip
        out = _post(port, head, body)
        assert not out.startswith(b"HTTP/1.1 200"), out[:200]
        # and the engine still answers a real request
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json"
                "\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n")  # fmt: skip
        body = json.dumps({"prompt": "hi", "max_tokens": 2}).encode()
        out = _post(port, head.replace("{n}", str(len(body))) + body.decode())
        assert out.startswith(b"HTTP/1.1 200"), out[:300]
    finally:
        served.stop()
