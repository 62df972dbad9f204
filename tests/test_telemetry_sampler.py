"""Sampler on fixture trees and on this machine: rates, sources, faults, estimate, cost."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from types import MappingProxyType

import pytest
from telemetry_helpers import (
    amd_umc_tree,
    make_topology,
    proc_tree,
    set_cpu_stat,
    write,
)

from rigtui.hostfs import HostFS
from rigtui.model.engine import EngineState, EngineStats
from rigtui.telemetry import Sampler
from rigtui.telemetry.cpu import parse_proc_stat_cpus, utilisation
from rigtui.telemetry.memory import parse_psi
from rigtui.telemetry.threads import ThreadLoad, parse_task_cpu_ticks
from rigtui.telemetry.traffic import ResctrlTraffic, estimate_rates


def test_proc_stat_parsing_skips_aggregate_and_intr():
    data = (
        b"cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\n"
        b"cpu1 1 1 1 1\ncpu2 bad\nintr 1 2 3\ncpu9 1 1 1 1\n"
    )
    got = parse_proc_stat_cpus(data)
    assert got == {0: (20, 100), 1: (3, 4)}  # cpu9 after intr is not a per-CPU line
    assert utilisation(None, (20, 100)) is None
    assert utilisation((20, 100), (70, 200)) == 50.0
    assert utilisation((20, 100), (20, 100)) == 0.0


def test_psi_and_task_stat_parsing():
    assert parse_psi(
        "some avg10=1.50 avg60=0 avg300=0 total=9\nfull avg10=0.25 avg60=0 avg300=0 total=3\n"
    ) == (1.5, 0.25)
    assert parse_psi("garbage") == (None, None)
    line = b"1234 (llama (worker) 1) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0\n"
    assert parse_task_cpu_ticks(line) == 300
    assert parse_task_cpu_ticks(b"no paren") is None


def _tree(tmp_path, cpus=2, nodes=1):
    proc_tree(tmp_path, cpus=cpus, nodes=nodes)
    return HostFS(str(tmp_path))


def test_sampler_on_a_tree_rates_and_groups(tmp_path):
    fs = _tree(tmp_path, cpus=4, nodes=2)
    topo = make_topology(sockets=2, cpus_per_socket=2, root=str(tmp_path))
    with Sampler(fs, topo) as sampler:
        set_cpu_stat(tmp_path, [(0, 0)] * 4)
        first = sampler.sample()
        assert first.interval_s is None
        set_cpu_stat(tmp_path, [(100, 0), (50, 50), (0, 100), (25, 75)])
        s = sampler.sample()
    assert s.interval_s is not None and s.interval_s >= 0
    assert s.cpu.cpu_ids == (0, 1, 2, 3)
    assert s.cpu.per_cpu == (100.0, 50.0, 0.0, 25.0)
    assert s.cpu.per_socket == {0: 75.0, 1: 12.5}
    assert s.cpu.total == pytest.approx(43.8, abs=0.1)
    assert [n.node for n in s.nodes] == [0, 1]
    assert s.nodes[0].total_bytes == 8192 * 1024 and s.nodes[0].hugepages_free == 2
    assert s.memory.swap_used_bytes == 1024 * 1024
    assert s.memory.psi_some_avg10 is None  # no PSI file in the tree
    assert s.gpus == () and s.placement is None
    # captured tree: no perf, no resctrl, no engine -> traffic unavailable, with every reason
    assert [m.socket for m in s.memory_traffic] == [0, 1]
    m = s.memory_traffic[0]
    assert not m.available and m.read_gbs is None and m.source is None
    assert "perf:" in m.reason and "resctrl" in m.reason and "estimate" in m.reason
    assert m.ceiling_gbs == 300.0
    names = {st.name: st for st in s.sources}
    assert not names["cpu_freq"].available and "cpufreq" in names["cpu_freq"].reason
    assert names["cpu"].available and not names["psi"].available


def test_cpu_frequency_from_cpufreq(tmp_path):
    fs = _tree(tmp_path)
    for cpu, khz in ((0, 3_100_000), (1, 800_000)):
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq", f"{khz}\n")
    with Sampler(fs, make_topology(root=str(tmp_path))) as sampler:
        s = sampler.sample()
    assert s.cpu.freq_mhz == (3100.0, 800.0)


def test_estimate_while_generating_and_labelled(tmp_path):
    fs = _tree(tmp_path)
    topo = make_topology(root=str(tmp_path))
    gen = EngineStats("e1", "demo", EngineState.GENERATING, pid=None, gen_tok_s=20.0)
    ready = EngineStats("e1", "demo", EngineState.READY, pid=None, gen_tok_s=20.0)
    with Sampler(fs, topo, bytes_per_token=2e9) as sampler:
        s = sampler.sample((gen,))
        m = s.memory_traffic[0]
        assert m.available and m.source == "estimate"
        assert m.read_gbs == pytest.approx(40.0) and m.write_gbs is None
        assert m.reason.startswith("estimate:")
        assert s.engines == (gen,)
        idle = sampler.sample((ready,)).memory_traffic[0]
        assert not idle.available and "not generating" in idle.reason
        sampler.set_bytes_per_token(None)
        assert "bytes-per-token" in sampler.sample((gen,)).memory_traffic[0].reason


def test_estimate_split_over_sockets_by_model_placement():
    rates, why = estimate_rates(1e9, 10.0, (0, 1), {0: 3, 1: 1})
    assert why is None
    assert rates[0][0] == pytest.approx(7.5e9) and rates[1][0] == pytest.approx(2.5e9)
    rates, why = estimate_rates(1e9, 10.0, (0, 1), None)
    assert rates is None and "whole machine ~10.0 GB/s" in why


def test_resctrl_mbm_per_socket_with_unavailable(tmp_path):
    topo = make_topology(sockets=2, cpus_per_socket=1, root=str(tmp_path))
    for cpu, l3 in ((0, 0), (1, 8)):
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cache/index3/level", "3\n")
        write(tmp_path, f"sys/devices/system/cpu/cpu{cpu}/cache/index3/id", f"{l3}\n")
    base = "sys/fs/resctrl/mon_data"
    write(tmp_path, f"{base}/mon_L3_00/mbm_total_bytes", "1000\n")
    write(tmp_path, f"{base}/mon_L3_08/mbm_total_bytes", "Unavailable\n")
    r = ResctrlTraffic(HostFS(str(tmp_path)), topo)
    assert r.available
    assert r.read(None) is None
    write(tmp_path, f"{base}/mon_L3_00/mbm_total_bytes", "3000000001000\n")
    assert r.read(1.0) is None  # socket 1 still Unavailable: no partial figure
    write(tmp_path, f"{base}/mon_L3_08/mbm_total_bytes", "500\n")
    r.read(1.0)
    write(tmp_path, f"{base}/mon_L3_00/mbm_total_bytes", "3000000002000\n")
    write(tmp_path, f"{base}/mon_L3_08/mbm_total_bytes", "2000000500\n")
    rates = r.read(2.0)
    assert rates == {0: (None, None, 500.0), 1: (None, None, 1e9)}


def test_resctrl_not_mounted(tmp_path):
    r = ResctrlTraffic(HostFS(str(tmp_path)), make_topology())
    assert not r.available and "not mounted" in r.status.reason


class _Counter:
    def __init__(self):
        self.n = 0

    def read(self):
        self.n += 1
        if self.n > 3:
            raise OSError(errno.ENODEV, "No such device")
        return (self.n * 1_000_000, self.n, self.n)

    def close(self):
        pass


def test_sampler_perf_then_pmu_disappears_falls_back(tmp_path):
    fs = _tree(tmp_path)
    amd_umc_tree(tmp_path, channels_per_socket=2, socket_cpus=(0,))
    topo = make_topology(root=str(tmp_path))
    gen = EngineStats("e", None, EngineState.GENERATING, gen_tok_s=5.0)
    with Sampler(fs, topo, perf_opener=lambda ev: _Counter(), bytes_per_token=1e9) as sampler:
        first = sampler.sample((gen,)).memory_traffic[0]
        assert first.available and first.source == "perf:amd_umc" and first.read_gbs is None
        assert "two complete readings" in first.reason
        s = sampler.sample((gen,))
        m = s.memory_traffic[0]
        assert m.source == "perf:amd_umc" and m.reason is None
        # 2 channels x 1e6 counts x 64 B over the interval
        assert m.read_gbs == pytest.approx(2 * 64e6 / s.interval_s / 1e9, rel=0.01)
        assert m.total_gbs == pytest.approx(m.read_gbs + m.write_gbs, abs=0.002)
        sampler.sample((gen,))
        after = sampler.sample((gen,)).memory_traffic[0]  # counters now fail: PMU gone
    assert after.source == "estimate" and after.read_gbs == pytest.approx(5.0)
    assert "went away" in after.reason


def test_engine_threads_and_pid_that_exits(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()+0.4\nwhile time.time()<t: pass\n"]
    )
    try:
        fs = HostFS("/")
        load = ThreadLoad(fs)
        load.read(child.pid, None)
        time.sleep(0.2)
        got = load.read(child.pid, 0.2)
        assert load.status.available and got and got[0][0] == child.pid
        assert got[0][1] > 20.0  # a busy loop
        child.wait(5)
        assert load.read(child.pid, 0.2) == ()
        assert not load.status.available and str(child.pid) in load.status.reason
    finally:
        child.kill()
        child.wait()


def test_live_sampler_cost_and_json_roundtrip():
    from rigtui.telemetry.record import sample_from_json, sample_to_json

    topo = make_topology(sockets=1, cpus_per_socket=os.cpu_count() or 1)
    with Sampler(HostFS("/"), topo, pid=os.getpid(), nvml=False) as sampler:
        sampler.sample()
        time.sleep(0.05)
        costs = []
        for _ in range(20):
            s = sampler.sample()
            costs.append(s.sample_cost_ms)
    assert s.placement is not None and s.placement.available and s.placement.pid == os.getpid()
    assert sorted(costs)[10] < 5.0
    assert sample_from_json(sample_to_json(s)) == s


def test_placement_polled_slowly(tmp_path):
    topo = make_topology(sockets=1, cpus_per_socket=os.cpu_count() or 1)
    with Sampler(HostFS("/"), topo, pid=os.getpid(), placement_interval_s=3600, nvml=False) as sm:
        a = sm.sample().placement
        b = sm.sample().placement
        assert a is b  # not re-read inside the interval
        sm.set_pid(None)
        assert sm.sample().placement is None


def test_engine_pid_taken_from_engine_stats():
    topo = make_topology(sockets=1, cpus_per_socket=os.cpu_count() or 1)
    e = EngineStats("e", None, EngineState.READY, pid=os.getpid(), extra=MappingProxyType({}))
    with Sampler(HostFS("/"), topo, nvml=False) as sm:
        s = sm.sample((e,))
    assert s.placement is not None and s.placement.pid == os.getpid()


def test_hwmon_eio_marks_the_sensor_and_carries_on(tmp_path, monkeypatch):
    import builtins

    import rigtui.probes.sensors as sensors_mod

    fs = _tree(tmp_path)
    chip = "sys/class/hwmon/hwmon0"
    write(tmp_path, f"{chip}/name", "coretemp\n")
    write(tmp_path, f"{chip}/temp1_label", "Package id 0\n")
    write(tmp_path, f"{chip}/temp1_input", "45000\n")
    write(tmp_path, f"{chip}/temp2_label", "Core 0\n")
    write(tmp_path, f"{chip}/temp2_input", "47000\n")
    broken = str(tmp_path / chip / "temp2_input")

    def open_with_eio(path, *args, **kwargs):
        if str(path) == broken:
            raise OSError(errno.EIO, "Input/output error")
        return builtins.open(path, *args, **kwargs)

    with Sampler(fs, make_topology(root=str(tmp_path))) as sampler:
        ok = sampler.sample()
        monkeypatch.setattr(sensors_mod, "open", open_with_eio, raising=False)
        s = sampler.sample()
    assert {t.label: t.temp_c for t in ok.temperatures} == {"Package id 0": 45.0, "Core 0": 47.0}
    assert {t.label: t.temp_c for t in s.temperatures} == {"Package id 0": 45.0, "Core 0": None}
    status = next(st for st in s.sources if st.name == "temperatures")
    assert status.available and "1 sensor(s) unreadable" in status.reason
    assert "coretemp/Core 0" in status.reason
    assert s.cpu.cpu_ids == (0, 1)  # the rest of the sample is there


@pytest.mark.parametrize("name", ["16em64t-4s2c2t", "16amd64-8n2c"])
def test_sampler_on_captured_machines_never_crashes(fixture_root, name):
    from rigtui.probes import detect

    fs = HostFS(str(fixture_root(name)))
    topo = detect(fs)
    with Sampler(fs, topo) as sampler:
        sampler.sample()
        s = sampler.sample()
    assert [m.socket for m in s.memory_traffic] == sorted(x.id for x in topo.sockets)
    assert all(not m.available and m.reason for m in s.memory_traffic)
    assert len(s.nodes) == len(topo.nodes)
    assert s.gpus == ()  # NVML is never asked about a captured tree
