"""The llama-server backend end to end: rigtui's own build of llama.cpp's llama-server (test.sh
builds it: `rigtui engines build`) serving the demo models on loopback, the official `openai`
client talking to it, MoE tensor overrides and RPC servers on loopback, and the ways it must
fail or stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, Served, _alive

from rigtui.engine import EngineProcess
from rigtui.engine.access import client_key
from rigtui.engine.demo_model import write_demo_model
from rigtui.engine.llama_server import RPC_NAME, binary_info, find_binary
from rigtui.model.engine import Text

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(240)
openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def server_bin() -> str:
    found = find_binary("llama-server")
    if found.path is None:
        if os.environ.get("CI"):
            pytest.fail(f"no llama-server for the tests: {found.reason} ({found.hint})")
        pytest.skip(f"no llama-server: {found.reason}; run `rigtui engines build`")
    return found.path


@pytest.fixture(scope="module")
def moe_model(tmp_path_factory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("moe") / "moe4.gguf", size="8M", experts=4).path


def _profile(tmp_path: Path, name: str, model: Path, extra: str = "") -> Path:
    return write_profile(tmp_path, name, f'engine = "llama-server"\nmodel = "{model}"\nctx = 512\n'
                         f'threads = 1\n{extra}[sampling]\ntemperature = 0\n')  # fmt: skip


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def test_serve_with_llama_server_for_the_openai_client(tmp_path, demo8m, server_bin):
    s = Served(_profile(tmp_path, "ls", demo8m), "--listen", "127.0.0.1:0")
    try:
        serving = s.wait_for("serving")
        assert serving["server"] == "llama-server" and serving["url"].endswith("/v1")
        pid = s.worker_pid()
        # the child *is* llama-server: exec'd after pinning, same pid
        assert Path(_cmdline(pid)[0]).name == "llama-server"
        client = openai.OpenAI(base_url=serving["url"], api_key=client_key(), timeout=60)
        assert [m.id for m in client.models.list()] == ["ls"]
        r = client.completions.create(model="ls", prompt="the river", max_tokens=12)
        assert r.usage.completion_tokens == 12 and r.choices[0].text.strip()
        done = s.wait_for("done")
        assert done["n_gen"] == 12 and done["gen_tok_s"] > 0 and done["prompt_tok_s"] > 0
        chunks = []
        stream = client.chat.completions.create(model="ls", max_tokens=300, stream=True,
                                                messages=[{"role": "user", "content": "hi"}])  # fmt: skip
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                chunks.append(chunk.choices[0].delta.content)
        assert len(chunks) >= 200  # one chunk per token: it streamed
        done = s.wait_for("done")
        assert done["n_gen"] == 300 and done["n_prompt"] > 0
        req = s.wait_for("requests", in_flight=0)
        assert req["total"] == 2
        placement = next(e for e in s.seen if e["event"] == "placement")
        assert placement["pid"] == pid and placement["model_buffers"]  # llama.cpp's own account
        assert sum(placement["model_file_bytes_per_node"].values()) > 0
    finally:
        code, err = s.stop()
    assert code == 0, err
    assert not _alive(pid)


def test_dashboard_stats_fold_from_a_real_client(tmp_path, server_bin, live_topology):
    """What the TUI shows: EngineProcess stats folded from the monitor's events while an
    outside client streams."""
    from rigtui.profiles import load_profile

    # a slot's context is capped at the model's trained one: room for the whole answer
    model = write_demo_model(tmp_path / "long.gguf", size="8M", n_ctx_train=8192).path
    path = _profile(tmp_path, "dash", model)
    path.write_text(path.read_text().replace("ctx = 512", "ctx = 4096"))
    profile = load_profile(path)
    engine = EngineProcess(profile, topology=live_topology, log_events=False,
                           listen=("127.0.0.1", 0))  # fmt: skip
    engine.start()
    try:
        deadline = time.monotonic() + 60
        while engine.stats.url is None and time.monotonic() < deadline:
            assert engine.running, engine.log_tail[-10:]
            time.sleep(0.1)
        assert engine.stats.server == "llama-server" and engine.stats.slots is not None
        client = openai.OpenAI(base_url=engine.stats.url, api_key=client_key(), timeout=60)
        seen_busy = False
        # long enough (> 1 s) for the idle poll (once a second) to see it under way
        for _ in client.completions.create(model="dash", prompt="a", max_tokens=3500, stream=True):
            seen_busy = seen_busy or engine.stats.requests_in_flight == 1
        deadline = time.monotonic() + 10
        while engine.stats.requests_in_flight and time.monotonic() < deadline:
            time.sleep(0.1)
        st = engine.stats
        assert seen_busy and st.requests_in_flight == 0 and st.requests_total == 1
        assert st.n_gen == 3500 and st.total_gen >= 3500 and st.gen_tok_s and st.ttft_s
        with pytest.raises(NotImplementedError, match="endpoint"):
            engine.prompt("no stdin ops for llama-server")
        # rigtui's own chat is a client of the endpoint: Text events, stats from the server
        seq = engine.ask("the river", max_tokens=9)
        texts = []
        for ev in engine.events(timeout=30):
            if isinstance(ev, Text) and ev.seq == seq:
                texts.append(ev.text)
                if ev.final:
                    break
        assert ev.final and ev.stop_reason == "length" and "".join(texts).strip()
        deadline = time.monotonic() + 10
        while engine.stats.requests_total < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.stats.requests_total == 2
    finally:
        ex = engine.stop(timeout=10)
    assert ex is not None and ex.code == 0 and ex.signal is None


@pytest.fixture()
def rpc_servers(server_bin):
    """Two rpc-servers on loopback, each started by `rigtui rpc-server --node 0`."""
    procs, ports = [], []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        procs.append(subprocess.Popen([sys.executable, "-m", "rigtui", "rpc-server", "--node", "0",
                                       "--listen", f"127.0.0.1:{ports[-1]}", "--threads", "1"],
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))  # fmt: skip
    for port in ports:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    yield ports, procs
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def test_rpc_on_loopback_with_moe_experts_kept_on_the_cpu(tmp_path, moe_model, rpc_servers):
    ports, procs = rpc_servers
    # rigtui rpc-server became rpc-server, pinned and bound before the exec
    assert Path(_cmdline(procs[0].pid)[0]).name in (RPC_NAME, "ggml-rpc-server")
    rpc = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    prof = _profile(tmp_path, "moe", moe_model,
                    f'gpu_layers = -1\nrpc = [{rpc}]\noverride_tensors = ["exps=CPU"]\n')  # fmt: skip
    s = Served(prof, "--listen", "127.0.0.1:0")
    try:
        serving = s.wait_for("serving")
        argv = _cmdline(s.worker_pid())
        i = argv.index("--override-tensor")
        assert argv[i + 1] == "exps=CPU"
        assert argv[argv.index("--rpc") + 1] == ",".join(f"127.0.0.1:{p}" for p in ports)
        client = openai.OpenAI(base_url=serving["url"], api_key=client_key(), timeout=60)
        r = client.completions.create(model="moe", prompt="the", max_tokens=8)
        assert r.usage.completion_tokens == 8
        buffers = next(e for e in s.seen if e["event"] == "placement")["model_buffers"]
        # the layers went to the two RPC servers; the experts (most of the file) stayed home
        remote = {k: v for k, v in buffers.items() if k.startswith("RPC")}
        assert len(remote) == 2, buffers
        assert buffers["CPU_Mapped"] > sum(remote.values()), buffers
    finally:
        code, err = s.stop()
    assert code == 0, err


def test_override_to_a_buffer_type_the_binary_lacks_is_refused(tmp_path, demo8m, server_bin):
    assert "CUDA0" not in binary_info(server_bin).buffer_types
    prof = _profile(tmp_path, "nogpu", demo8m, 'override_tensors = ["blk\\\\.0\\\\.=CUDA0"]\n')
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert r.returncode == 4
    assert "no buffer type 'CUDA0'" in r.stderr and "CPU" in r.stderr


@pytest.mark.parametrize("kind", ["missing", "not-executable", "not-llama-server"])
def test_bad_binaries_are_clear_errors(tmp_path, demo8m, kind):
    path = tmp_path / "llama-server"
    if kind == "not-executable":
        path.write_text("#!/bin/sh\n")
    elif kind == "not-llama-server":
        path.write_text("#!/bin/sh\necho 'usage: something else' >&2\nexit 1\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    prof = _profile(tmp_path, "bad", demo8m, f'binary = "{path}"\n')
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert r.returncode == 4, r.stderr
    expected = {"missing": "does not exist", "not-executable": "not an executable",
                "not-llama-server": "is not a llama-server"}[kind]  # fmt: skip
    assert expected in r.stderr


def test_port_in_use_is_said(tmp_path, demo8m, server_bin):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(_profile(tmp_path, "p", demo8m)),
                            "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True,
                           cwd=REPO, timeout=120)  # fmt: skip
    assert r.returncode == 4
    assert "port is in use" in r.stderr and "--listen" in r.stderr


def test_crash_during_load_is_said(tmp_path, demo8m, server_bin):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(demo8m.read_bytes()[: 3 * 2**20])  # cut off inside the tensor data
    prof = _profile(tmp_path, "broken", broken)
    r = subprocess.run([sys.executable, "-m", "rigtui", "serve", str(prof), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert r.returncode in (3, 4), r.stderr  # a profile check may already catch the short file
    assert "load" in r.stderr


def test_sigkill_of_llama_server_and_a_client_that_hangs_up(tmp_path, demo8m, server_bin):
    s = Served(_profile(tmp_path, "k", demo8m), "--listen", "127.0.0.1:0")
    try:
        serving = s.wait_for("serving")
        client = openai.OpenAI(base_url=serving["url"], api_key=client_key(), timeout=60)
        stream = client.completions.create(model="k", prompt="x", max_tokens=5000, stream=True)
        for i, _ in enumerate(stream):
            if i == 20:
                break
        stream.close()  # hang up mid-stream: the server must carry on
        r = client.completions.create(model="k", prompt="again", max_tokens=4)
        assert r.usage.completion_tokens == 4
        pid = s.worker_pid()
        os.kill(pid, signal.SIGKILL)
        ex = s.wait_for("exit")
        assert ex["signal"] == signal.SIGKILL and "SIGKILL" in ex["reason"]
        assert s.proc.wait(timeout=30) == 4  # serve ends by itself, saying why
        assert not _alive(pid)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def test_n_cpu_moe_keeps_what_the_plan_says_on_the_cpu(tmp_path, moe_model, rpc_servers):
    """--n-cpu-moe 1 with every layer offloaded (to RPC servers, the GPUs of this machine):
    llama.cpp's own buffer sizes match the plan's account of the overridden tensors."""
    from rigtui.analysis.gguf_facts import read_gguf_facts
    from rigtui.analysis.tensor_overrides import place_tensors

    ports, _ = rpc_servers
    rpc = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    prof = _profile(tmp_path, "ncmoe", moe_model, f"gpu_layers = -1\nrpc = [{rpc}]\nn_cpu_moe = 1\n")
    s = Served(prof, "--listen", "127.0.0.1:0")
    try:
        s.wait_for("serving")
        argv = _cmdline(s.worker_pid())
        assert argv[argv.index("--n-cpu-moe") + 1] == "1"
        buffers = next(e for e in s.seen if e["event"] == "placement")["model_buffers"]
    finally:
        code, err = s.stop()
    assert code == 0, err
    facts = read_gguf_facts(moe_model)
    (group,) = place_tensors(facts.tensors, (), n_cpu_moe=1)[0]
    assert group.tensors == 3 and all(n.startswith("blk.0.") for n in group.examples)
    # With mmap, CPU_Mapped is the span of the file mapped for the CPU's tensors: from the
    # embedding table (the input layer always stays home) to the end of layer 0's experts,
    # layer 0's attention in between included.
    from gguf import GGUFReader

    spans = {t.name: (int(t.data_offset), int(t.data_offset) + int(t.n_bytes))
             for t in GGUFReader(str(moe_model)).tensors}  # fmt: skip
    on_cpu = ["token_embd.weight", *(n for n, _ in facts.tensors if n.startswith("blk.0.ffn_") and "_exps" in n)]
    expected = max(spans[n][1] for n in on_cpu) - min(spans[n][0] for n in on_cpu)
    assert abs(buffers["CPU_Mapped"] - expected) <= 2**14, (buffers, expected)  # MiB shown to 0.01
    assert expected < facts.weights_bytes / 2  # layer 1's experts went to the RPC servers


def test_rigtui_run_asks_llama_server_like_a_client(tmp_path, demo8m, server_bin):
    prof = _profile(tmp_path, "runls", demo8m)
    r = subprocess.run([sys.executable, "-m", "rigtui", "run", str(prof), "-p", "the river", "-n", "9"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "gen 9 tok" in r.stderr and "prompt " in r.stderr
    assert "weights by llama.cpp" in r.stderr  # the placement after generating
    b = subprocess.run([sys.executable, "-m", "rigtui", "bench", str(prof)], capture_output=True,
                       text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert b.returncode == 3 and "llama-bench" in b.stderr
