"""perf: format encoding from sysfs trees, PMU plans, real perf_event_open, counter wraps."""

from __future__ import annotations

import errno
import os
import time

import pytest
from telemetry_helpers import (
    PMU,
    amd_df_tree,
    amd_umc_tree,
    intel_imc_tree,
    make_topology,
)

from rigtui.hostfs import HostFS
from rigtui.telemetry import perf
from rigtui.telemetry.perf import (
    FormatError,
    counter_delta,
    encode_config,
    parse_event_terms,
    parse_format_spec,
    refusal_reason,
    unit_scale,
)
from rigtui.telemetry.pmu import plan_memory_events
from rigtui.telemetry.traffic import PerfTraffic

TOPO2 = make_topology(sockets=2, cpus_per_socket=2)  # CPUs 0,1 socket 0; 2,3 socket 1


# -- the format encoder ---------------------------------------------------------------------
def test_format_spec_parsing():
    assert parse_format_spec("config:0-7,32-35") == ("config", ((0, 7), (32, 35)))
    assert parse_format_spec("config1:5") == ("config1", ((5, 5),))
    for bad in ("config", "cfg:0-7", "config:7-0", "config:0-64", "config:a-b"):
        with pytest.raises(FormatError):
            parse_format_spec(bad)


def test_event_terms():
    assert parse_event_terms("event=0x05,umask=0xcf,edge") == {"event": 5, "umask": 0xCF, "edge": 1}
    assert parse_event_terms("event=10, rdwrmask=2\n") == {"event": 10, "rdwrmask": 2}
    with pytest.raises(FormatError):
        parse_event_terms("event=zz")


def test_encode_split_ranges_amd_df_event14():
    # event 0x107 (DRAM channel 4 on Zen 2/3): low 8 bits -> 0-7, next 4 -> 32-35
    fmt = {"event": "config:0-7,32-35,59-60", "umask": "config:8-15"}
    cfg = encode_config({"event": 0x107, "umask": 0x38}, fmt)
    assert cfg["config"] == 0x07 | (0x38 << 8) | (0x1 << 32)
    # bits beyond 12 go to 59-60
    cfg = encode_config({"event": 0x1107}, fmt)
    assert cfg["config"] == 0x07 | (0x1 << 32) | (0x1 << 59)
    with pytest.raises(FormatError):
        encode_config({"event": 1 << 14}, fmt)  # 14 bits of room only
    with pytest.raises(FormatError):
        encode_config({"nosuch": 1}, fmt)


def test_encode_config1_and_umask12():
    fmt = {"umask": "config:8-15,24-27", "filter": "config1:0-15"}
    cfg = encode_config({"umask": 0xABC, "filter": 0x1234}, fmt)
    assert cfg["config"] == (0xBC << 8) | (0xA << 24)
    assert cfg["config1"] == 0x1234


def test_unit_scale_and_delta():
    assert unit_scale("6.103515625e-5", "MiB") == pytest.approx(64.0)
    assert unit_scale(None, None) == 1.0
    assert unit_scale("x", "MiB") is None
    assert unit_scale("1", "furlongs") is None
    assert counter_delta(100, 250) == 150
    # 48-bit hardware counter wrapping: 2^48 - 10 -> 5 is 15 counts
    assert counter_delta((1 << 48) - 10, 5, bits=48) == 15
    assert counter_delta((1 << 64) - 1, 9) == 10
    # a big drop is a reset, not a wrap
    assert counter_delta(10_000_000, 5) is None


# -- PMU plans from fixture trees -------------------------------------------------------------
def test_plan_intel_imc(tmp_path):
    intel_imc_tree(tmp_path, imcs=2)
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert plan.source == "perf:uncore_imc"
    # 2 IMCs x 2 events x 2 CPUs in cpumask (one per socket)
    assert len(plan.events) == 8
    rd = [e for e in plan.events if e.pmu == "uncore_imc_1" and e.direction == "read"]
    assert {(e.cpu, e.socket) for e in rd} == {(0, 0), (2, 1)}
    assert rd[0].pmu_type == 21
    assert rd[0].config == (0x04 | (0x03 << 8), 0, 0)
    assert rd[0].bytes_per_count == pytest.approx(64.0)
    wr = next(e for e in plan.events if e.direction == "write")
    assert wr.config[0] == 0x04 | (0x0C << 8)


def test_plan_intel_imc_granite_rapids_sch(tmp_path):
    intel_imc_tree(tmp_path, imcs=1, sch=True, cpumask="0")
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    names = sorted(e.event for e in plan.events)
    assert names == [
        "cas_count_read_sch0",
        "cas_count_read_sch1",
        "cas_count_write_sch0",
        "cas_count_write_sch1",
    ]
    by = {e.event: e.config[0] for e in plan.events}
    assert by["cas_count_read_sch1"] == 0x06 | (0xCF << 8)
    assert by["cas_count_write_sch0"] == 0x05 | (0xF0 << 8)


def test_plan_amd_umc(tmp_path):
    amd_umc_tree(tmp_path, channels_per_socket=3, socket_cpus=(0, 2))
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert plan.source == "perf:amd_umc"
    assert len(plan.events) == 12  # 6 channels x read/write
    rd = next(e for e in plan.events if e.pmu == "amd_umc_4" and e.direction == "read")
    assert rd.config[0] == 0x0A | (1 << 8) and rd.cpu == 2 and rd.socket == 1
    wr = next(e for e in plan.events if e.pmu == "amd_umc_0" and e.direction == "write")
    assert wr.config[0] == 0x0A | (2 << 8) and wr.socket == 0
    assert rd.pmu_type == 34 and rd.bytes_per_count == 64.0


def test_plan_amd_df_zen2(tmp_path):
    amd_df_tree(tmp_path)
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert plan.source == "perf:amd_df"
    assert len(plan.events) == 16  # 8 DRAM channels x 2 sockets
    ch7 = next(e for e in plan.events if e.event.endswith("_7") and e.socket == 1)
    assert ch7.direction == "total"
    assert ch7.config[0] == 0xC7 | (0x38 << 8) | (0x1 << 32)


def test_plan_amd_df_perfmon_v2_is_not_guessed(tmp_path):
    amd_df_tree(tmp_path, v2=True)
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert plan.source is None and not plan.events
    assert "not the Zen 2/3 layout" in plan.reason


def test_plan_nothing(tmp_path):
    (tmp_path / PMU / "software").mkdir(parents=True)
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert plan.source is None and "no memory-controller PMU" in plan.reason


def test_plan_broken_pmu_says_why(tmp_path):
    intel_imc_tree(tmp_path, imcs=1)
    (tmp_path / PMU / "uncore_imc_0" / "format" / "umask").unlink()
    plan = plan_memory_events(HostFS(str(tmp_path)), TOPO2.socket_of_cpu)
    assert not plan.events and "umask" in plan.reason


# -- real perf_event_open on this machine: the software task-clock ----------------------------
def test_task_clock_counts_this_process():
    counter = perf.open_task_clock()
    try:
        v0, e0, r0 = counter.read()
        t_end = time.thread_time() + 0.05
        x = 0
        while time.thread_time() < t_end:
            x += 1
        v1, e1, r1 = counter.read()
    finally:
        counter.close()
    assert v1 - v0 >= 40_000_000  # >= 40 ms of task clock (ns) for 50 ms of busy loop
    assert e1 >= e0 and r1 >= r0 and r1 > 0
    assert perf.scaled(v1, e1, r1) == pytest.approx(v1)


def test_open_with_bad_type_raises_oserror():
    with pytest.raises(OSError) as info:
        perf.open_counter(0x7FFF_FFF0, {"config": 0}, cpu=-1, pid=0, exclude_kernel=True)
    assert info.value.errno in (errno.ENOENT, errno.EINVAL, errno.ENODEV)


def test_refusal_reason_text():
    msg = refusal_reason(OSError(errno.EACCES, "Permission denied"), 2)
    assert msg == (
        "needs perf_event_paranoid <= 0 (now 2) or CAP_PERFMON: "
        "sudo sysctl kernel.perf_event_paranoid=0"
    )


# -- PerfTraffic with counters scripted from a fixture plan -----------------------------------
class FakeCounter:
    def __init__(self, values):
        self.values = list(values)
        self.closed = False

    def read(self):
        if self.closed or not self.values:
            raise OSError(errno.ENODEV, "No such device")
        return self.values.pop(0)

    def close(self):
        self.closed = True


def _fs_with(tmp_path, builder, paranoid="2"):
    builder(tmp_path)
    (tmp_path / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc/sys/kernel/perf_event_paranoid").write_text(paranoid + "\n")
    return HostFS(str(tmp_path))


def test_perf_refused_says_exactly_what_to_do(tmp_path):
    fs = _fs_with(tmp_path, lambda r: intel_imc_tree(r, imcs=1), paranoid="3")

    def refuse(ev):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    traffic = PerfTraffic(fs, TOPO2, opener=refuse)
    assert not traffic.available
    assert traffic.status.reason == (
        "needs perf_event_paranoid <= 0 (now 3) or CAP_PERFMON: "
        "sudo sysctl kernel.perf_event_paranoid=0"
    )


def test_perf_rates_per_socket_across_a_wrap(tmp_path):
    fs = _fs_with(tmp_path, lambda r: intel_imc_tree(r, imcs=1))
    made = {}
    top = 1 << 64

    def opener(ev):
        # socket 0 read counter wraps: top-1000 -> 1000 is 2000 counts (128 kB)
        if ev.direction == "read" and ev.socket == 0:
            seq = [(top - 1000, 10, 10), (1000, 20, 20), (3000, 30, 30)]
        elif ev.direction == "read":
            seq = [(0, 10, 10), (1_000_000, 20, 20), (2_000_000, 30, 30)]
        else:
            # multiplexed: ran half of the time -> scaled x2
            seq = [(0, 10, 5), (500, 20, 10), (1000, 30, 15)]
        made[(ev.event, ev.socket)] = c = FakeCounter(seq)
        return c

    traffic = PerfTraffic(fs, TOPO2, opener=opener)
    assert traffic.available and traffic.source == "perf:uncore_imc"
    assert traffic.read(None) is None  # first reading: no rate
    rates = traffic.read(2.0)
    assert rates[0][0] == pytest.approx(2000 * 64 / 2.0)
    assert rates[1][0] == pytest.approx(1_000_000 * 64 / 2.0)
    assert rates[0][1] == pytest.approx(500 * 2 * 64 / 2.0)
    assert rates[0][2] == pytest.approx(rates[0][0] + rates[0][1])


def test_perf_pmu_that_disappears(tmp_path):
    fs = _fs_with(tmp_path, lambda r: amd_umc_tree(r, channels_per_socket=1))
    counters = []

    def opener(ev):
        c = FakeCounter([(0, 1, 1), (64, 2, 2)])  # dies after two reads
        counters.append(c)
        return c

    traffic = PerfTraffic(fs, TOPO2, opener=opener)
    traffic.read(None)
    assert traffic.read(1.0) is not None
    assert traffic.read(1.0) is None
    assert not traffic.available
    assert "stopped counting" in traffic.status.reason and "went away" in traffic.status.reason
    assert all(c.closed for c in counters)
