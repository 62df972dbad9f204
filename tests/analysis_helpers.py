"""Helpers for the analysis tests: hand-built Topology objects (a dual-socket EPYC-like box, the
live machine's shape) so checks and plans can be driven value by value."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from rigtui.model.topology import (
    CacheDomain,
    Core,
    CpuInfo,
    Dimm,
    Gpu,
    HostInfo,
    LogicalCpu,
    MemoryInfo,
    NumaNode,
    Socket,
    Topology,
)
from rigtui.probes.fabric import apply_fabric

GiB = 1 << 30
ISA_KEYS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "amx")


def dimm(
    socket: int,
    channel: str,
    mts: int = 4800,
    configured: int | None = 4800,
    populated: bool = True,
) -> Dimm:
    return Dimm(
        locator=f"P{socket} CHANNEL {channel}", bank_locator=None, populated=populated,
        size_bytes=32 * GiB if populated else None, type="DDR5" if populated else None,
        form_factor="RDIMM", speed_mts=mts if populated else None,
        configured_speed_mts=configured if populated else None, data_width_bits=64, rank=2,
        manufacturer=None, part_number=None, socket=socket, channel=channel,
        source="smbios:sys/firmware/dmi/entries",
    )  # fmt: skip


def epyc(
    sockets: int = 2,
    cores_per_socket: int = 4,
    nodes_per_socket: int = 1,
    channels: int = 12,
    populated: dict[int, int] | None = None,
    smt: bool = True,
    gpus: tuple[Gpu, ...] = (),
    mem_per_node: int = 192 * GiB,
    kernel: str = "6.8.0-45",
    flags: tuple[str, ...] = (
        "pni",
        "ssse3",
        "bmi2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512_vnni",
    ),
    ccds: int = 8,
) -> Topology:
    """A Zen4-like machine (an EPYC 9354: 8 CCDs, whose fabric reads what 12 DDR5-4800
    channels give): `cores_per_socket` cores, SMT2, `ccds` L3 domains per socket."""
    populated = populated or {s: channels for s in range(sockets)}
    cpus, cores, nodes, socks, dimms, l3 = [], [], [], [], [], []
    tpc = 2 if smt else 1
    ncpu_total = sockets * cores_per_socket
    cores_per_node = cores_per_socket // nodes_per_socket
    for s in range(sockets):
        sock_cpus = []
        for k in range(cores_per_socket):
            core_idx = s * cores_per_socket + k
            node = s * nodes_per_socket + k // cores_per_node
            ids = tuple(core_idx + t * ncpu_total for t in range(tpc))
            cores.append(Core(core_idx, s, 0, k, ids, node, None))
            for c in ids:
                l3_idx = s * ccds + k % ccds
                cpus.append(LogicalCpu(c, True, s, 0, k, core_idx, node, l3_idx, None, None, 3700.0))
            sock_cpus += ids
        for ch in range(channels):
            dimms.append(dimm(s, chr(ord("A") + ch), populated=ch < populated[s]))
        ordered = sorted(sock_cpus)
        for k in range(ccds):  # CCD k holds core k (a part with fewer cores than CCDs: repeats)
            mine = tuple(c.id for c in cpus if c.socket == s and c.l3 == s * ccds + k)
            l3.append(CacheDomain(len(l3), 3, 32 << 20, mine or cores[s * cores_per_socket
                                                                      + k % cores_per_socket].cpus, s))
        socks.append(
            Socket(
                s,
                "AMD EPYC 9354 32-Core Processor",
                cores_per_socket,
                tuple(ordered),
                tuple(range(s * nodes_per_socket, (s + 1) * nodes_per_socket)),
                1,
                tuple(range(s * ccds, (s + 1) * ccds)),
                f"NPS{nodes_per_socket}",
            )
        )
    n_nodes = sockets * nodes_per_socket
    for nid in range(n_nodes):
        node_cpus = tuple(sorted(c.id for c in cpus if c.node == nid))
        dist = {
            m: (10 if m == nid else 12 if m // nodes_per_socket == nid // nodes_per_socket else 32)
            for m in range(n_nodes)
        }
        nodes.append(
            NumaNode(
                nid,
                node_cpus,
                mem_per_node,
                mem_per_node - 4 * GiB,
                MappingProxyType(dist),
                "cpu",
                nid // nodes_per_socket,
            )
        )
    per_socket = {s: populated[s] * 8 * 4800 / 1000 for s in range(sockets)}
    memory = MemoryInfo(
        total_bytes=n_nodes * mem_per_node, dimms=tuple(dimms),
        populated_channels=sum(populated.values()),
        channels_per_socket=MappingProxyType(dict(populated)),
        platform_channels_per_socket=channels, platform_max_mts=4800, speed_mts=4800,
        theoretical_bandwidth_gbs=sum(per_socket.values()),
        bandwidth_per_socket_gbs=MappingProxyType(per_socket), source="smbios",
    )  # fmt: skip
    isa = {k: k in flags for k in ISA_KEYS}
    cpu = CpuInfo(
        arch="x86_64", vendor="AuthenticAMD", model_name="AMD EPYC 9354 32-Core Processor",
        family=25, model=17, stepping=1, isa=MappingProxyType(isa), flags=flags,
        smt_active=smt, threads_per_core=tpc, online=tuple(sorted(c.id for c in cpus)),
        offline=(), allowed=None, max_mhz=3700.0, min_mhz=1500.0, hybrid=False,
    )  # fmt: skip
    host = HostInfo(
        hostname="rig", kernel=kernel, os_name="Ubuntu 24.04", virtualization="none",
        thp_enabled="madvise", thp_defrag="madvise", numa_balancing=0,
        governors=MappingProxyType({"performance": len(cpus)}), boost=True,
        smt_control="on" if smt else "off", perf_event_paranoid=0, resctrl_mounted=True,
        swap_total_bytes=8 * GiB, swap_free_bytes=8 * GiB,
        mem_available_bytes=n_nodes * (mem_per_node - 4 * GiB),
    )  # fmt: skip
    memory = apply_fabric(memory, cpu, socks, l3)  # as the probe does
    return Topology(
        "/", cpu, tuple(cpus), tuple(cores), tuple(l3), tuple(socks), tuple(nodes), memory, gpus,
        (), host,
    )


def gpu(
    index: int = 0,
    vram: int = 24 * GiB,
    width: int = 16,
    max_width: int = 16,
    gen: int = 4,
    gen_max: int = 4,
) -> Gpu:
    return Gpu(
        index=index, pci_address=f"0000:{0x41 + index:02x}:00.0", vendor_id=0x10DE,
        device_id=0x2684, vendor="NVIDIA", name="NVIDIA GeForce RTX 4090", driver="nvidia",
        memory_total_bytes=vram, compute_capability="8.9", numa_node=0, local_cpus=(),
        link_speed="16.0 GT/s PCIe", link_width=width, link_max_speed="16.0 GT/s PCIe",
        link_max_width=max_width, pcie_gen=gen, pcie_gen_max=gen_max, nvml_index=index,
        source="pci+nvml",
    )  # fmt: skip


def with_host(top: Topology, **changes) -> Topology:
    return replace(top, host=replace(top.host, **changes))
