"""The fabric cap (issue 11, item 2): theoretical = min(channels x 8 B x MT/s, CCDs x 32 B x
FCLK) on AMD, CCDs from the L3 domains, FCLK the generation's default labelled estimated;
checked against the local-ML hardware guide's worked examples (../shared/notes)."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest
from analysis_helpers import epyc

from rigtui.analysis.checks import run_checks
from rigtui.model.topology import CacheDomain, MemoryInfo, Socket, Topology
from rigtui.probes.fabric import amd_generation, apply_fabric, fabric_limit


def _with(top: Topology, *, name: str, family: int, model: int, l3_per_socket: int,
          channels: int, mts: int, vendor: str = "AuthenticAMD") -> Topology:  # fmt: skip
    """`top` as another CPU: its sockets get `l3_per_socket` L3 domains each and
    `channels` x `mts` of DRAM; the memory facts are then capped as the probe caps them."""
    l3, socks = [], []
    for s in top.sockets:
        ids = []
        for k in range(l3_per_socket):
            idx = len(l3)
            l3.append(CacheDomain(idx, 3, 32 << 20, (s.cpus[k % len(s.cpus)],), s.id))
            ids.append(idx)
        socks.append(replace(s, l3_domains=tuple(ids), model=name))
    bw = {s.id: channels * 8 * mts / 1000 for s in top.sockets}
    mem = MemoryInfo(
        total_bytes=top.memory.total_bytes, dimms=(), populated_channels=channels * len(socks),
        channels_per_socket=MappingProxyType({s.id: channels for s in socks}),
        platform_channels_per_socket=channels, platform_max_mts=mts, speed_mts=mts,
        theoretical_bandwidth_gbs=sum(bw.values()), bandwidth_per_socket_gbs=bw, source="smbios",
    )  # fmt: skip
    cpu = replace(top.cpu, vendor=vendor, model_name=name, family=family, model=model)
    mem = apply_fabric(mem, cpu, socks, l3)
    return replace(top, cpu=cpu, sockets=tuple(socks), l3_domains=tuple(l3), memory=mem)


def test_the_guides_ryzen_5_7400f_is_capped_at_57_6_of_83_2_gbs():
    # "BW = min(2 ch * 8 * 5.2 GT/s, 1 CCD * 32 * 1.8 GHz) = min(83.2, 57.6) GB/s = 57.6 GB/s"
    top = _with(epyc(sockets=1), name="AMD Ryzen 5 7400F 6-Core Processor", family=0x19,
                model=0x61, l3_per_socket=1, channels=2, mts=5200)  # fmt: skip
    mem = top.memory
    assert mem.dram_bandwidth_per_socket_gbs[0] == pytest.approx(83.2)
    assert mem.fabric is not None and mem.fabric.basis == "estimated"
    assert mem.fabric.ccds_per_socket == {0: 1} and mem.fabric.fclk_mhz == 1800
    assert mem.bandwidth_per_socket_gbs[0] == pytest.approx(57.6)
    assert mem.theoretical_bandwidth_gbs == pytest.approx(57.6)
    assert mem.limited_by == {0: "fabric"}
    [c] = run_checks(top, only=["memory_fabric"])
    assert c.status == "warn" and "57.6 GB/s" in c.summary and "83.2 GB/s" in c.summary
    assert "69%" in c.summary  # 57.6 / 83.2


def test_the_guides_epyc_9755_is_bound_by_its_channels_537_6_gbs():
    # "BW = min(12 ch * 8 * 5.6 GT/s, 16 CCD * 32 * 2.0 GHz) = min(537.6, 1024) GB/s"
    top = _with(epyc(sockets=2), name="AMD EPYC 9755 128-Core Processor", family=0x1A,
                model=0x02, l3_per_socket=16, channels=12, mts=5600)  # fmt: skip
    mem = top.memory
    assert mem.fabric is not None and mem.fabric.cap_per_socket_gbs == {0: 1024.0, 1: 1024.0}
    assert mem.bandwidth_per_socket_gbs == {0: pytest.approx(537.6), 1: pytest.approx(537.6)}
    assert mem.theoretical_bandwidth_gbs == pytest.approx(1075.2)  # the guide's 2-CPU figure
    assert set(mem.limited_by.values()) == {"dram"}
    [c] = run_checks(top, only=["memory_fabric"])
    assert c.status == "pass" and "channels are the limit" in c.summary


def test_a_dual_epyc_9124_like_the_400b_thread_build_warns_per_socket():
    # the 400B-on-DDR5 thread's 2 x EPYC 9124 with 24 x DDR5-4800: 4 CCDs per socket
    top = _with(epyc(sockets=2), name="AMD EPYC 9124 16-Core Processor", family=0x19,
                model=0x11, l3_per_socket=4, channels=12, mts=4800)  # fmt: skip
    mem = top.memory
    assert mem.bandwidth_per_socket_gbs == {0: pytest.approx(230.4), 1: pytest.approx(230.4)}
    assert mem.dram_bandwidth_per_socket_gbs == {0: pytest.approx(460.8), 1: pytest.approx(460.8)}
    [c] = run_checks(top, only=["memory_fabric"])
    assert c.status == "warn" and "4 CCDs" in c.summary and "50%" in c.summary
    assert "GMI-wide" in c.why  # the caveat of these parts is said, not hidden
    assert "8 or more" in (c.fix or "")


def test_zen_2_and_zen_4c_count_two_l3_domains_per_ccd():
    rome = amd_generation(0x17, 0x31)
    bergamo = amd_generation(0x19, 0xA0)
    turin_dense = amd_generation(0x1A, 0x11)
    assert rome is not None and not isinstance(rome, str) and rome.l3_per_ccd == 2
    assert bergamo is not None and not isinstance(bergamo, str) and bergamo.l3_per_ccd == 2
    assert turin_dense is not None and not isinstance(turin_dense, str)
    assert turin_dense.l3_per_ccd == 1  # Zen 5c: 16 cores under one L3
    # EPYC 9754 Bergamo: 16 CCXs = 8 CCDs x 32 B x 1.8 GHz = 460.8 = its 12 x DDR5-4800
    top = _with(epyc(sockets=1), name="AMD EPYC 9754 128-Core Processor", family=0x19,
                model=0xA0, l3_per_socket=16, channels=12, mts=4800)  # fmt: skip
    assert top.memory.fabric is not None and top.memory.fabric.ccds_per_socket == {0: 8}
    assert top.memory.bandwidth_per_socket_gbs[0] == pytest.approx(460.8)


@pytest.mark.parametrize(("vendor", "family", "model", "says"), [
    ("GenuineIntel", 6, 0xAD, "Intel's on-die interconnect (ring or mesh) is not modelled"),
    ("AuthenticAMD", 0x17, 0x01, "no I/O-die link"),  # Zen 1 Naples: controllers on every die
    ("AuthenticAMD", 0x10, 0x09, "no I/O-die link"),  # the Opteron fixtures' family
    ("AuthenticAMD", 0x19, 0x74, "no I/O-die link"),  # a Phoenix APU
    ("AuthenticAMD", 0x1B, 0x00, "not in rigtui's fabric table"),
])  # fmt: skip
def test_other_cpus_say_which_limit_applies(vendor, family, model, says):
    top = epyc(sockets=1)
    cpu = replace(top.cpu, vendor=vendor, family=family, model=model)
    socks = (Socket(0, None, 4, (0,), (0,), 1, (0,)),)
    limit, note = fabric_limit(cpu, socks, (CacheDomain(0, 3, None, (0,), 0),))
    assert limit is None and says in note
    mem = apply_fabric(top.memory, cpu, socks, ())
    assert mem.bandwidth_per_socket_gbs == top.memory.bandwidth_per_socket_gbs
    assert mem.fabric_note == note and set(mem.limited_by.values()) == {"dram"}
    [c] = run_checks(replace(top, cpu=cpu, memory=mem), only=["memory_fabric"])
    assert c.status == "pass" and says in c.summary


def test_the_probe_caps_a_captured_tree_and_says_so_in_json(fixture_root, tmp_path):
    """A real tree through `detect`: the Opteron (family 0x10) is not capped, the note says
    why, and probe --json carries the fields."""
    import json
    import subprocess
    import sys

    root = fixture_root("16amd64-8n2c")
    out = subprocess.run([sys.executable, "-m", "rigtui", "probe", "--json", "--root", str(root)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    mem = json.loads(out.stdout)["memory"]
    assert mem["fabric"] is None and "no I/O-die link" in mem["fabric_note"]
    assert "limited_by" in mem and "dram_bandwidth_per_socket_gbs" in mem


def test_a_vm_or_an_l3_layout_no_ccx_has_is_not_counted():
    """QEMU shows one L3 per socket whatever the host has: counting it as one CCD would cap a
    VM at 57.6 GB/s for no reason. Neither is estimated, and the note says why."""
    top = epyc(sockets=1, cores_per_socket=4)
    socks = (replace(top.sockets[0], l3_domains=(0,)),)
    l3 = (CacheDomain(0, 3, 32 << 20, top.sockets[0].cpus, 0),)
    limit, note = fabric_limit(top.cpu, socks, l3, virtualization="kvm")
    assert limit is None and "virtual machine (kvm)" in note
    crowded = (replace(socks[0], cores=96),)  # 96 cores under one L3: no Zen CCX is that big
    limit, note = fabric_limit(top.cpu, crowded, l3)
    assert limit is None and "96 cores under 1 L3" in note
    limit, _ = fabric_limit(top.cpu, socks, l3, virtualization="none")  # bare metal: counted
    assert limit is not None and limit.ccds_per_socket == {0: 1}
