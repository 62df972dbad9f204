"""`rigtui exporter`: its metrics parsed by prometheus_client's own parser, checked by
`promtool check metrics`, and scraped by a real Prometheus (Debian's), whose query API must
return the values the recording implies. The exporter replays a recording of a 2-socket rig
(built here from a captured hwloc tree), so every value is known in advance."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from engine_helpers import fixture_topology
from serve_helpers import REPO, free_port

from rigtui.model.engine import EngineState, EngineStats, Slots
from rigtui.model.sample import (
    CpuUsage,
    GpuSample,
    MemoryTraffic,
    ModelPlacement,
    NodeMemory,
    Sample,
    SystemMemory,
)
from rigtui.model.topology import Sensor
from rigtui.telemetry.metrics import Counters, families
from rigtui.telemetry.record import Recorder

prom_client = pytest.importorskip("prometheus_client")
N_SAMPLES = 12
INTERVAL_S = 0.5  # the recorded interval between samples


def _sample(i: int, topo) -> Sample:
    sockets = sorted(s.id for s in topo.sockets)
    traffic = tuple(MemoryTraffic(socket=s, read_gbs=10.0 * (s + 1) + i, write_gbs=2.0 * (s + 1),
                                  source="perf:amd_umc", available=True, ceiling_gbs=460.8)
                    for s in sockets)  # fmt: skip
    nodes = tuple(NodeMemory(node=n.id, total_bytes=64 << 30, free_bytes=(60 << 30) - i * (1 << 28),
                             file_bytes=None, anon_bytes=None) for n in topo.nodes)  # fmt: skip
    cpus = tuple(c for s in topo.sockets for c in s.cpus)
    engine = EngineStats(instance="ui-1", profile="r1-q8", state=EngineState.GENERATING, pid=4242,
                         gen_tok_s=6.5 + i * 0.1, prompt_tok_s=55.0, ttft_s=0.8,
                         requests_in_flight=1, requests_total=i, total_gen=i * 100,
                         server="llama-server",
                         slots=Slots(instance="ui-1", t=0.0, n_slots=4, busy=1,
                                     kv_used_tokens=1000 + i, kv_ctx_tokens=8192))  # fmt: skip
    return Sample(
        t=1_800_000_000.0 + i * INTERVAL_S, interval_s=None if i == 0 else INTERVAL_S,
        cpu=CpuUsage(cpu_ids=cpus, per_cpu=tuple(50.0 for _ in cpus), freq_mhz=(), total=50.0,
                     per_socket={s: 40.0 + s * 20 for s in sockets}),  # fmt: skip
        memory_traffic=traffic, nodes=nodes,
        memory=SystemMemory(swap_total_bytes=0, swap_used_bytes=0, psi_some_avg10=1.5,
                            psi_full_avg10=0.0),  # fmt: skip
        temperatures=tuple(Sensor("k10temp", "Tctl", "cpu-package", 60.0 + s, s, None)
                           for s in sockets),  # fmt: skip
        gpus=(GpuSample(index=0, name="NVIDIA GeForce RTX 4090", available=True, util_pct=87.0,
                        mem_used_bytes=20 << 30, mem_total_bytes=24 << 30, temp_c=66.0,
                        power_w=310.5, sm_clock_mhz=2520, mem_clock_mhz=10501, pcie_gen=4,
                        pcie_gen_max=4, pcie_width=16, pcie_width_max=16),),
        placement=ModelPlacement(pid=4242, available=True,
                                          model_file_bytes_per_node={0: 3 << 30, 1: 1 << 30}),
        engines=(engine,), sample_cost_ms=1.2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rig(fixture_root):
    return fixture_topology(fixture_root("32em64t-2n8c+dax+nvme+mic+dimms"))


@pytest.fixture(scope="module")
def recording(tmp_path_factory, rig) -> Path:
    path = tmp_path_factory.mktemp("rec") / "rig.ndjson"
    rec = Recorder(path, rig, recorded="test: a 2-socket rig under load")
    for i in range(N_SAMPLES):
        rec.write(_sample(i, rig))
    rec.close()
    return path


def _expected_read_bytes(socket_id: int) -> float:
    # integrated over the intervals: samples 1..N-1, each INTERVAL_S long
    return sum((10.0 * (socket_id + 1) + i) * 1e9 * INTERVAL_S for i in range(1, N_SAMPLES))


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


@pytest.fixture()
def exporter(recording):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rigtui", "exporter", "--replay", str(recording),
                             "--interval", "0.02", "--listen", f"127.0.0.1:{port}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        try:
            text = _get(url)
            if f"rigtui_exporter_samples_total {float(N_SAMPLES)}" in text:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(f"the exporter never served the whole recording: {text[-500:]}")
    yield port, text
    proc.terminate()
    proc.wait(timeout=20)


def _by_name(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_families_integrate_traffic_into_counters(rig):
    counters = Counters()
    for i in range(N_SAMPLES):
        counters.update(_sample(i, rig))
    fams = {f.name: f for f in families(_sample(N_SAMPLES - 1, rig), rig, counters)}
    reads = dict(fams["rigtui_memory_read_bytes_total"].samples)
    assert reads[(("socket", "0"), ("source", "perf:amd_umc"))] == pytest.approx(_expected_read_bytes(0))
    assert reads[(("socket", "1"), ("source", "perf:amd_umc"))] == pytest.approx(_expected_read_bytes(1))
    for f in fams.values():  # units in names, _total only on counters
        assert f.name.startswith("rigtui_")
        assert f.name.endswith("_total") == (f.kind == "counter"), f.name


def test_exported_text_parses_and_has_the_rigs_numbers(exporter):
    _port, text = exporter
    m = _by_name(text)
    reads = {lab["socket"]: v for lab, v in m["rigtui_memory_read_bytes_total"]}
    assert reads["0"] == pytest.approx(_expected_read_bytes(0))
    assert reads["1"] == pytest.approx(_expected_read_bytes(1))
    pages = {lab["node"]: v for lab, v in m["rigtui_model_pages_bytes"]}
    assert pages == {"0": float(3 << 30), "1": float(1 << 30)}
    tok = m["rigtui_engine_generation_tokens_per_second"]
    assert tok[0][0]["instance"] == "ui-1" and tok[0][1] == pytest.approx(6.5 + (N_SAMPLES - 1) * 0.1)
    state = {lab["state"]: v for lab, v in m["rigtui_engine_state"]}
    assert state["generating"] == 1.0 and sum(state.values()) == 1.0
    temps = {lab["socket"]: v for lab, v in m["rigtui_temperature_celsius"]}
    assert temps == {"0": 60.0, "1": 61.0}
    util = {lab["socket"]: v for lab, v in m["rigtui_cpu_utilisation_ratio"]}
    assert util == {"all": 0.5, "0": 0.4, "1": 0.6}
    assert m["rigtui_sockets"][0][1] == 2.0
    ceilings = {lab["socket"]: v for lab, v in m["rigtui_memory_bandwidth_theoretical_bytes_per_second"]}
    assert ceilings == {"0": 51.2e9, "1": 51.2e9}  # the tree's DIMMs: channels x 8 B x MT/s
    assert m["rigtui_gpu_utilisation_ratio"] == [({"gpu": "0", "name": "NVIDIA GeForce RTX 4090"}, 0.87)]
    assert m["rigtui_gpu_memory_used_bytes"][0][1] == float(20 << 30)
    clocks = {lab["clock"]: v for lab, v in m["rigtui_gpu_clock_hertz"]}
    assert clocks == {"sm": 2520e6, "memory": 10501e6}
    gen = {lab["state"]: v for lab, v in m["rigtui_gpu_pcie_link_generation"]}
    assert gen == {"current": 4.0, "max": 4.0}
    # bounded cardinality: no label takes a value per request or per token
    for name, series in m.items():
        assert len(series) <= 64, name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool (Debian: prometheus)")
def test_promtool_finds_nothing_to_fix(exporter):
    _port, text = exporter
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus (Debian: prometheus)")
def test_a_real_prometheus_scrapes_it(exporter, tmp_path):
    port, _ = exporter
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: rig\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )  # fmt: skip
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    api = f"http://127.0.0.1:{prom_port}/api/v1/query?query="

    def query(q: str) -> list:
        try:
            body = json.loads(_get(api + urllib.parse.quote(q)))
        except OSError:
            return []
        return body["data"]["result"] if body.get("status") == "success" else []

    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not query("rigtui_memory_read_bytes_total"):
            time.sleep(0.5)
        reads = {r["metric"]["socket"]: float(r["value"][1])
                 for r in query("rigtui_memory_read_bytes_total")}  # fmt: skip
        assert reads, "Prometheus never stored a rigtui series"
        assert reads["0"] == pytest.approx(_expected_read_bytes(0))
        assert reads["1"] == pytest.approx(_expected_read_bytes(1))
        r = query('rigtui_model_pages_bytes{node="1"}')
        assert r and float(r[0]["value"][1]) == float(1 << 30)
        r = query('up{job="rig"}')
        assert r and r[0]["value"][1] == "1"
        r = query("sum(rigtui_node_memory_total_bytes)")  # PromQL over it works as on any target
        assert r and float(r[0]["value"][1]) == 2 * (64 << 30)
        # every query of the Grafana dashboard is valid PromQL, and those about what the rig
        # recorded (all but GPUs, checks and bench mem's cache) have data
        dash = json.loads((REPO / "dashboards" / "rigtui-grafana.json").read_text())
        exprs = [t["expr"].replace("$rig", ".*") for p in dash["panels"] for t in p["targets"]]
        assert len(exprs) >= 10
        for expr in exprs:
            body = json.loads(_get(api + urllib.parse.quote(expr)))
            assert body["status"] == "success", (expr, body)
            if not any(w in expr for w in ("gpu", "check", "measured")):
                deadline = time.monotonic() + 30  # rate() needs two scrapes in its window
                while not query(expr) and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert query(expr), f"no data for the dashboard's {expr}"
    finally:
        prom.terminate()
        prom.wait(timeout=30)


def test_loopback_by_default_and_a_clear_error_without_the_extra(monkeypatch, capsys):
    from rigtui.commands import exporter as cmd

    assert cmd.DEFAULT_LISTEN.startswith("127.0.0.1:")
    import builtins

    real = builtins.__import__

    def no_prometheus(name, *a, **kw):
        if name.startswith("prometheus_client"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_prometheus)
    import argparse

    assert cmd.run(argparse.Namespace()) == 1
    assert "pip install 'rigtui[prometheus]'" in capsys.readouterr().err


def test_checks_become_one_gauge_each_with_their_status(rig):
    fams = {f.name: f for f in families(None, rig, Counters(), checks=[("smt", "pass"),
                                                                    ("swap", "warn"),
                                                                    ("numa_mode", "unknown")])}  # fmt: skip
    got = {dict(lab)["check"]: (dict(lab)["status"], v) for lab, v in fams["rigtui_check_ok"].samples}
    assert got == {"smt": ("pass", 1.0), "swap": ("warn", 0.0), "numa_mode": ("unknown", 0.0)}
