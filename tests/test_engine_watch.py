"""`rigtui sample --engine URL`: a served engine followed by its URL alone (both servers answer
llama-server's /slots and /metrics), its requests and tok/s in the sample's engine section."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from engine_helpers import write_profile
from serve_helpers import REPO, Served

from rigtui.engine.access import client_key
from rigtui.engine.llama_server import find_binary
from rigtui.engine.server_monitor import EndpointWatch

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(240)
openai = pytest.importorskip("openai")


def _profile(tmp_path, demo8m, engine: str):
    if engine == "llama-server" and find_binary("llama-server").path is None:
        pytest.skip("no llama-server: rigtui engines build")
    return write_profile(tmp_path, "watched", f'engine = "{engine}"\nmodel = "{demo8m}"\n'
                         "ctx = 2048\nthreads = 1\n")  # fmt: skip


@pytest.mark.parametrize("engine", ["llama-cpp-python", "llama-server"])
def test_watch_a_served_engine_by_its_url(tmp_path, demo8m, engine):
    s = Served(_profile(tmp_path, demo8m, engine), "--listen", "127.0.0.1:0")
    try:
        url = s.wait_for("serving")["url"]
        watch = EndpointWatch(url, client_key())
        watch.start()
        deadline = time.monotonic() + 20
        while watch.stats.url is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.stats.url == url and watch.stats.profile == "watched"
        client = openai.OpenAI(base_url=url, api_key=client_key(), timeout=60)
        busy = []

        def sampled() -> None:
            r = subprocess.run([sys.executable, "-m", "rigtui", "sample", "--engine", url, "--json",
                                "--count", "4", "--interval", "0.5", "--no-nvml"],
                               capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
            busy.append(r)

        t = threading.Thread(target=sampled)
        t.start()
        time.sleep(1.0)  # the sampler's watch is up
        for _ in range(3):
            client.completions.create(model="watched", prompt="the river", max_tokens=200)
        t.join(60)
        deadline = time.monotonic() + 5
        while watch.stats.requests_total < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        watch.stop()
        st = watch.stats
        assert st.requests_total >= 1 and st.gen_tok_s and st.slots
        # requests that begin and end between two polls are reported together, never lost
        assert st.total_gen == 600 and st.n_gen % 200 == 0
        (r,) = busy
        assert r.returncode == 0, r.stderr
        samples = [json.loads(line) for line in r.stdout.splitlines()]
        engines = [e for smp in samples for e in smp["engines"]]
        assert engines and all(e["url"] == url for e in engines)
        assert max(e["requests_total"] for e in engines) >= 1
    finally:
        s.stop()
