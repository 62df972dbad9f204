"""`rigtui serve` end to end: a real engine child serving the 8M demo model on loopback, the
official `openai` client talking to it, and the ways it must fail or stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, Served, _alive

from rigtui.engine.access import client_key

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(240)
openai = pytest.importorskip("openai")

@pytest.fixture()
def prof(tmp_path, demo8m):
    return write_profile(tmp_path, "tiny", f'model = "{demo8m}"\nctx = 512\nthreads = 1\n'
                         '[sampling]\ntemperature = 0\n')  # fmt: skip


@pytest.fixture()
def served(prof):
    s = Served(prof, "--listen", "127.0.0.1:0")
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()


def test_openai_client_streamed_and_not(served):
    ev = served.wait_for("serving")
    url = ev["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1") and ev["model"] == "tiny"
    with urllib.request.urlopen(url[: -len("/v1")] + "/health", timeout=10) as r:
        assert json.load(r) == {"status": "ok"}
    client = openai.OpenAI(base_url=url, api_key=client_key(), timeout=60)
    assert [m.id for m in client.models.list()] == ["tiny"]

    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert chat.choices[0].finish_reason == "length" and chat.usage.completion_tokens >= 8
    done = served.wait_for("done")
    assert done["n_prompt"] == chat.usage.prompt_tokens and done["gen_tok_s"] > 0
    # llama.cpp's own counters agree with what llama-cpp-python told the client
    assert done["n_gen"] == chat.usage.completion_tokens
    assert done["ttft_s"] is None  # a non-streamed answer has no first token to time

    pieces = [
        c.choices[0].text
        for c in client.completions.create(model="tiny", prompt="Once", max_tokens=12, stream=True)
    ]
    assert len(pieces) >= 12 and "".join(pieces)
    done = served.wait_for("done")
    # llama-cpp-python stops at max_tokens only between whole UTF-8 characters: the random
    # demo vocabulary makes it decode a few more tokens, which the counters do see
    assert 12 <= done["n_gen"] <= 20 and done["stop_reason"] == "length"
    assert done["ttft_s"] > 0 and done["prompt_tok_s"] > 0 and done["gen_tok_s"] > 0

    deltas = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="anything", messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
            stream=True)
    ]  # fmt: skip
    assert "".join(deltas)
    served.wait_for("done")
    # the in-flight count went up and back to zero for each of the three requests
    served.wait_for("requests", in_flight=0, total=3, timeout=10)
    counts = [e for e in served.seen if e["event"] == "requests"]
    assert max(e["in_flight"] for e in counts) == 1

    worker = served.worker_pid()
    code, err = served.stop(signal.SIGTERM)
    assert code == 0
    time.sleep(0.2)
    assert not _alive(worker), "the engine outlived `rigtui serve`"


def test_client_disconnect_mid_stream_then_next_request(tmp_path, demo8m):
    prof = write_profile(tmp_path, "long", f'model = "{demo8m}"\nctx = 4096\nthreads = 1\n')
    served = Served(prof, "--listen", "127.0.0.1:0")
    url = served.wait_for("serving")["url"]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    body = json.dumps({"prompt": "x", "max_tokens": 4000, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nAuthorization: Bearer " + client_key().encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        got = b""
        while b"data:" not in got:  # read until streaming has begun, then hang up
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
    done = served.wait_for("done", timeout=60)
    # the generation stopped with the client, not at max_tokens
    assert done["n_gen"] < 3000 and done["stop_reason"] == "cancelled"
    client = openai.OpenAI(base_url=url, api_key=client_key(), timeout=60)
    r = client.completions.create(model="tiny", prompt="again", max_tokens=4)
    assert r.choices[0].text is not None
    assert served.stop(signal.SIGINT)[0] == 0


def test_nohup_keeps_serving_through_a_hangup(tmp_path, demo8m):
    """`nohup rigtui serve ... &` over SSH: the hangup when the session ends must not stop the
    server (SIGHUP was ignored when it started); SIGTERM still does."""
    prof = write_profile(tmp_path, "bg", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    proc = subprocess.Popen([sys.executable, "-m", "rigtui", "serve", str(prof), "--listen",
                             "127.0.0.1:0", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # fmt: skip
    try:
        url = next(json.loads(ln)["url"] for ln in proc.stdout if '"serving"' in ln)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None
        client = openai.OpenAI(base_url=url, api_key=client_key(), timeout=60)
        assert client.completions.create(model="bg", prompt="x", max_tokens=2).choices
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_api_key_required_when_named(tmp_path, demo8m):
    prof = write_profile(tmp_path, "keyed", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n'
                         'api_key_env = "TEST_RIGTUI_KEY"\n')  # fmt: skip
    s = Served(prof, "--listen", "127.0.0.1:0", env={"TEST_RIGTUI_KEY": "s3cret-key-0123456789"})
    try:
        ev = s.wait_for("serving")
        assert ev["auth"] is True
        bad = openai.OpenAI(base_url=ev["url"], api_key="wrong", timeout=30, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model="keyed", prompt="x", max_tokens=2)
        good = openai.OpenAI(base_url=ev["url"], api_key="s3cret-key-0123456789", timeout=30)
        assert good.completions.create(model="keyed", prompt="x", max_tokens=2).choices
    finally:
        assert s.stop()[0] == 0


def test_api_key_env_unset_is_a_clear_error(tmp_path, demo8m):
    prof = write_profile(tmp_path, "keyed", f'model = "{demo8m}"\nctx = 256\n'
                         'api_key_env = "TEST_RIGTUI_UNSET_KEY"\n')  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TEST_RIGTUI_UNSET_KEY"}
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof), "--listen",
                        "127.0.0.1:0"], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=120)  # fmt: skip
    assert r.returncode == 4
    assert "TEST_RIGTUI_UNSET_KEY" in r.stderr and "export" in r.stderr


def test_port_in_use_fails_before_loading(prof):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof), "--listen",
                            f"127.0.0.1:{port}"], capture_output=True, text=True, cwd=REPO,
                           timeout=120)  # fmt: skip
    assert r.returncode == 4
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--listen" in r.stderr
    assert "before it could serve" in r.stderr
    assert "serving" not in r.stderr.replace("before it could serve", "")
    assert time.monotonic() - t0 < 60


def test_non_loopback_needs_an_api_key(prof, capsys):
    from rigtui.cli import EXIT_USAGE, main

    assert main(["serve", str(prof), "--listen", "0.0.0.0:8080"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "api_key_env" in err and "other machines" in err


def test_sigkill_of_the_engine_ends_serve_with_the_reason(served):
    served.wait_for("serving")
    os.kill(served.worker_pid(), signal.SIGKILL)
    ev = served.wait_for("exit", timeout=30)
    assert ev["signal"] == signal.SIGKILL
    assert served.proc.wait(timeout=30) == 4  # serve ends by itself, saying why


def test_profile_listen_key_sets_the_default(tmp_path, demo8m):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    prof = write_profile(tmp_path, "here", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n'
                         f'listen = "127.0.0.1:{port}"\n')  # fmt: skip
    s = Served(prof)
    try:
        assert s.wait_for("serving")["url"] == f"http://127.0.0.1:{port}/v1"
    finally:
        assert s.stop()[0] == 0


def test_health_and_models_answer_without_the_key_only_for_health(tmp_path, demo8m):
    prof = write_profile(tmp_path, "keyed", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n'
                         'api_key_env = "TEST_RIGTUI_KEY"\n')  # fmt: skip
    s = Served(prof, "--listen", "127.0.0.1:0", env={"TEST_RIGTUI_KEY": "k" * 20})
    try:
        url = s.wait_for("serving")["url"]
        with urllib.request.urlopen(url[:-3] + "/health", timeout=10) as r:
            assert r.status == 200
        req = urllib.request.Request(url + "/completions", data=b'{"prompt": "x"}',
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 401
    finally:
        s.stop()


def test_ask_is_a_client_of_the_embedded_endpoint(tmp_path, demo8m, live_topology):
    """The TUI's chat path on the embedded engine: Text events from the endpoint, the request
    metered by the engine like any client's (no Token events from the stdin path)."""
    from rigtui.engine import EngineProcess
    from rigtui.model.engine import Done, Serving, Text, Token
    from rigtui.profiles import load_profile

    prof = load_profile(write_profile(tmp_path, "chat", f'model = "{demo8m}"\nctx = 512\n'
                                      'threads = 1\n'))  # fmt: skip
    engine = EngineProcess(prof, topology=live_topology, log_events=False, listen=("127.0.0.1", 0))
    engine.start()
    try:
        for ev in engine.events(timeout=60):
            if isinstance(ev, Serving):
                break
        assert engine.stats.url
        seq = engine.ask("hello", max_tokens=7)
        kinds, texts, done = [], [], None
        for ev in engine.events(timeout=60):
            kinds.append(type(ev))
            if isinstance(ev, Text) and ev.seq == seq:
                texts.append(ev.text)
            if isinstance(ev, Done):
                done = ev
            if isinstance(ev, Text) and ev.final and any(k is Done for k in kinds):
                break
        assert Token not in kinds and done is not None and done.n_gen == 7
        assert "".join(texts).strip() and engine.stats.requests_total == 1
    finally:
        engine.stop()


def test_stream_lines_reassembles_lines_split_across_reads():
    import io

    from rigtui.engine.endpoint_chat import sse_data, stream_lines

    body = b"".join(b'data: {"choices": [{"text": "w%d "}]}\n\n' % k for k in range(300)) + b"data: [DONE]\n\n"

    class Trickle(io.BytesIO):  # a socket that hands out odd-sized pieces
        sizes = [7, 1, 64, 3, 500, 2]

        def read1(self, n=-1):
            self.sizes.append(self.sizes.pop(0))
            return super().read1(min(n, self.sizes[0]))

    got = [o["choices"][0]["text"] for o in sse_data(stream_lines(Trickle(body)))]
    assert got == [f"w{k} " for k in range(300)]
    assert list(stream_lines(Trickle(b"a\nb"))) == [b"a", b"b"]  # a last line without "\n"
    assert [o["x"] for o in sse_data(stream_lines(['data: {"x": 1}', "data: [DONE]"]))] == [1]
