"""numa_maps and engine threads against a real llama-cpp-python process running the demo model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from telemetry_helpers import make_topology

from rigtui.hostfs import HostFS
from rigtui.telemetry import Sampler
from rigtui.telemetry.placement import parse_numa_maps, pick_model_file, read_placement

pytest.importorskip("llama_cpp")
CHILD = Path(__file__).with_name("telemetry_engine_child.py")


def test_parse_numa_maps_lines():
    data = (
        b"55d0c0000000 default file=/usr/bin/python3.11 mapped=100 N0=100 kernelpagesize_kB=4\n"
        b"7f00 interleave:0-1 file=/models/My\\040Model.gguf mapped=768 N0=512 N1=256 "
        b"kernelpagesize_kB=4\n"
        b"7f10 bind:1 file=/models/My\\040Model.gguf mapped=2 N1=2 kernelpagesize_kB=2048\n"
        b"7f20 default anon=300 dirty=300 N0=200 N1=100 kernelpagesize_kB=4\n"
        b"7f30 default heap anon=10 dirty=10 N0=10 kernelpagesize_kB=4\n"
        b"7f40 default file=/lib/x.so\n"  # nothing resident: no N counts
        b"garbage\n"
    )
    maps = parse_numa_maps(data)
    model = "/models/My Model.gguf"
    assert maps.file_bytes[model] == {0: 512 * 4096, 1: 256 * 4096 + 2 * 2048 * 1024}
    assert maps.anon_bytes == {0: 210 * 4096, 1: 100 * 4096}
    assert "/lib/x.so" not in maps.file_bytes
    assert pick_model_file(maps, None) == model
    assert pick_model_file(maps, "/elsewhere/My Model.gguf") == model
    assert pick_model_file(parse_numa_maps(b""), None) is None


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from rigtui.engine.demo_model import write_demo_model

    model = tmp_path_factory.mktemp("model") / "demo-8M.gguf"
    write_demo_model(model, size="8M")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(model), "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = _next_event(proc, "ready")
        proc.stdin.write("gen 48\n")
        proc.stdin.flush()
        _next_event(proc, "done")  # every weight has been read once: pages are resident
        yield proc, ready, model
    finally:
        proc.kill()
        proc.wait()


def _next_event(proc, kind: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"engine child exited (code {proc.poll()}) before {kind!r}")
        if line.startswith("{"):
            ev = json.loads(line)
            if ev.get("event") == kind:
                return ev
    raise TimeoutError(kind)


def test_placement_of_a_real_engine(engine):
    proc, ready, model = engine
    placement = read_placement(HostFS("/"), proc.pid, str(model))
    assert placement.available and placement.reason is None
    assert placement.model_path == str(model)
    size = os.path.getsize(model)
    resident = sum(placement.model_file_bytes_per_node.values())
    # the weights were all touched by generation; numa_maps counts mapped pages
    assert 0.5 * size <= resident <= size + 4096
    assert placement.model_file_bytes == size  # what "% of the file" divides by
    assert set(placement.model_file_bytes_per_node) <= {n for n in range(64)}
    assert sum(placement.anon_bytes_per_node.values()) > 1 << 20  # KV cache, buffers, heap
    # without the known path the largest .gguf mapping is found
    assert read_placement(HostFS("/"), proc.pid).model_path == str(model)


def test_sampler_follows_engine_then_pid_exits(engine, tmp_path):
    proc, ready, model = engine
    topo = make_topology(sockets=1, cpus_per_socket=os.cpu_count() or 1)
    with Sampler(HostFS("/"), topo, pid=proc.pid, placement_interval_s=0.0, nvml=False) as sm:
        sm.sample()
        proc.stdin.write("gen 200000\n")  # busy for the whole check, even at ~4000 tok/s
        proc.stdin.flush()
        time.sleep(0.3)
        s = sm.sample()
        assert s.placement.available and sum(s.placement.model_file_bytes_per_node.values()) > 0
        tids = [tid for tid, _ in s.cpu.engine_threads]
        assert proc.pid in tids and len(tids) >= 2  # llama.cpp's worker threads
        assert max(p for _, p in s.cpu.engine_threads) > 10.0
        proc.kill()
        proc.wait()
        after = sm.sample()
    assert after.placement is not None and not after.placement.available
    assert str(proc.pid) in after.placement.reason
    threads = next(st for st in after.sources if st.name == "engine_threads")
    assert not threads.available and str(proc.pid) in threads.reason
