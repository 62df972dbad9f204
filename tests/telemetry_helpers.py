"""Hand-built Topology objects and small sysfs trees for the telemetry tests."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from rigtui.model.topology import (
    CacheDomain,
    Core,
    CpuInfo,
    HostInfo,
    LogicalCpu,
    MemoryInfo,
    NumaNode,
    Socket,
    Topology,
)


def make_topology(
    sockets: int = 1,
    cpus_per_socket: int = 2,
    nodes_per_socket: int = 1,
    root: str = "/",
    online: tuple[int, ...] | None = None,
) -> Topology:
    """`sockets` x `cpus_per_socket` logical CPUs (one thread per core), nodes split evenly."""
    cpus: list[LogicalCpu] = []
    cores: list[Core] = []
    per_node = max(1, cpus_per_socket // nodes_per_socket)
    for s in range(sockets):
        for i in range(cpus_per_socket):
            cid = s * cpus_per_socket + i
            node = s * nodes_per_socket + min(i // per_node, nodes_per_socket - 1)
            cpus.append(LogicalCpu(cid, True, s, 0, i, cid, node, s, None, None, None))
            cores.append(Core(cid, s, 0, i, (cid,), node, None))
    ids = tuple(c.id for c in cpus) if online is None else online
    nodes = tuple(
        NumaNode(
            n,
            tuple(c.id for c in cpus if c.node == n),
            1 << 30,
            1 << 29,
            MappingProxyType({}),
            "cpu",
            n // nodes_per_socket,
        )
        for n in range(sockets * nodes_per_socket)
    )
    sock = tuple(
        Socket(
            s,
            "Test CPU",
            cpus_per_socket,
            tuple(c.id for c in cpus if c.socket == s),
            tuple(n.id for n in nodes if n.socket == s),
            1,
            (s,),
        )
        for s in range(sockets)
    )
    l3 = tuple(CacheDomain(s, 3, 32 << 20, sock[s].cpus, s) for s in range(sockets))
    isa = MappingProxyType({})
    return Topology(
        root=root,
        cpu=CpuInfo(
            "x86_64",
            "GenuineIntel",
            "Test CPU",
            6,
            143,
            8,
            isa,
            (),
            False,
            1,
            ids,
            (),
            ids,
            None,
            None,
            False,
        ),
        cpus=tuple(cpus),
        cores=tuple(cores),
        l3_domains=l3,
        sockets=sock,
        nodes=nodes,
        memory=MemoryInfo(
            16 << 30,
            (),
            None,
            MappingProxyType({}),
            None,
            None,
            None,
            None,
            MappingProxyType({s: 300.0 for s in range(sockets)}),
            "unknown",
        ),
        gpus=(),
        sensors=(),
        host=HostInfo(
            "test",
            "6.8",
            "Test OS",
            "none",
            "madvise",
            "madvise",
            0,
            MappingProxyType({}),
            None,
            None,
            2,
            False,
            0,
            0,
            1 << 30,
        ),
    )


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


PMU = "sys/bus/event_source/devices"


def intel_imc_tree(
    root: Path, *, imcs: int = 2, sch: bool = False, cpumask: str = "0,2", pmu_type_base: int = 20
) -> None:
    """uncore_imc_N as the kernel's uncore_snbep.c exports them (Skylake-SP..Sapphire Rapids,
    or Granite Rapids/Sierra Forest with `sch`): type, cpumask, format/, events/ with scale/unit."""
    for i in range(imcs):
        base = f"{PMU}/uncore_imc_{i}"
        write(root, f"{base}/type", f"{pmu_type_base + i}\n")
        write(root, f"{base}/cpumask", cpumask + "\n")
        write(root, f"{base}/format/event", "config:0-7\n")
        write(root, f"{base}/format/umask", "config:8-15\n")
        write(root, f"{base}/format/edge", "config:18\n")
        write(root, f"{base}/format/inv", "config:23\n")
        write(root, f"{base}/format/thresh", "config:24-31\n")
        write(root, f"{base}/events/clockticks", "event=0x01,umask=0x00\n")
        if sch:
            events = {
                "cas_count_read_sch0": "event=0x05,umask=0xcf",
                "cas_count_read_sch1": "event=0x06,umask=0xcf",
                "cas_count_write_sch0": "event=0x05,umask=0xf0",
                "cas_count_write_sch1": "event=0x06,umask=0xf0",
            }
        else:
            events = {
                "cas_count_read": "event=0x04,umask=0x03",
                "cas_count_write": "event=0x04,umask=0x0c",
            }
        for name, terms in events.items():
            write(root, f"{base}/events/{name}", terms + "\n")
            write(root, f"{base}/events/{name}.scale", "6.103515625e-5\n")
            write(root, f"{base}/events/{name}.unit", "MiB\n")


def amd_umc_tree(
    root: Path,
    *,
    channels_per_socket: int = 2,
    socket_cpus: tuple[int, ...] = (0, 2),
    pmu_type_base: int = 30,
) -> None:
    """amd_umc_N (Zen 4/5, PerfMonV2): one PMU per memory channel, format only, no events/."""
    n = 0
    for cpu in socket_cpus:
        for _ in range(channels_per_socket):
            base = f"{PMU}/amd_umc_{n}"
            write(root, f"{base}/type", f"{pmu_type_base + n}\n")
            write(root, f"{base}/cpumask", f"{cpu}\n")
            write(root, f"{base}/format/event", "config:0-7\n")
            write(root, f"{base}/format/rdwrmask", "config:8-9\n")
            n += 1


def amd_df_tree(root: Path, *, cpumask: str = "0,2", v2: bool = False) -> None:
    """amd_df (family 17h/19h pre-PerfMonV2: event14 + umask8; PerfMonV2: event14v2 + umask12)."""
    base = f"{PMU}/amd_df"
    write(root, f"{base}/type", "11\n")
    write(root, f"{base}/cpumask", cpumask + "\n")
    write(root, f"{base}/format/event", "config:0-7,32-37\n" if v2 else "config:0-7,32-35,59-60\n")
    write(root, f"{base}/format/umask", "config:8-15,24-27\n" if v2 else "config:8-15\n")


def proc_tree(root: Path, cpus: int = 2, nodes: int = 1) -> None:
    """Minimal /proc and node meminfo for the sampler."""
    lines = ["cpu  100 0 100 800 0 0 0 0 0 0"]
    lines += [f"cpu{i} 50 0 50 400 0 0 0 0 0 0" for i in range(cpus)]
    lines += ["intr 12345 0 0", "ctxt 999", "btime 1700000000"]
    write(root, "proc/stat", "\n".join(lines) + "\n")
    write(root, "proc/meminfo", "MemTotal: 16384 kB\nSwapTotal: 2048 kB\nSwapFree: 1024 kB\n")
    for n in range(nodes):
        write(
            root,
            f"sys/devices/system/node/node{n}/meminfo",
            f"Node {n} MemTotal: 8192 kB\nNode {n} MemFree: 4096 kB\n"
            f"Node {n} FilePages: 1024 kB\nNode {n} AnonPages: 512 kB\n"
            f"Node {n} HugePages_Total: 4\nNode {n} HugePages_Free: 2\n",
        )


def set_cpu_stat(root: Path, per_cpu: list[tuple[int, int]]) -> None:
    """Rewrite proc/stat with (busy, idle) jiffies per CPU."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    lines += [f"cpu{i} {b} 0 0 {idle} 0 0 0 0 0 0" for i, (b, idle) in enumerate(per_cpu)]
    lines += ["intr 1 2 3"]
    # rewrite in place: a kept-open fd must see the new content (as /proc regenerates it)
    with open(root / "proc/stat", "r+") as f:
        f.truncate(0)
        f.write("\n".join(lines) + "\n")


def exists(root: Path, rel: str) -> bool:
    return os.path.exists(root / rel)
