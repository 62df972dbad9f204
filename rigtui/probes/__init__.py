"""rigtui.probes: `detect(fs) -> Topology`, the machine as the kernel describes it.

One module per concern (cpu, topology, memory, gpu, sensors, host, platforms), pure parsers in
`parse`. `detect` never raises: a part that fails is recorded in `Topology.problems` and the rest
is still returned. See docs/probe.md.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from rigtui.hostfs import HostFS
from rigtui.model.common import Problem
from rigtui.model.topology import (
    CacheDomain,
    Core,
    CpuInfo,
    LogicalCpu,
    NumaNode,
    Sensor,
    Socket,
    Topology,
)
from rigtui.probes import cpu as cpu_probe
from rigtui.probes import fabric, gpu, host, memory
from rigtui.probes import topology as topo_probe
from rigtui.probes.sensors import SensorReader

__all__ = ["detect"]

T = TypeVar("T")


def _guard(fs: HostFS, what: str, fn: Callable[[], T], fallback: Callable[[], T]) -> T:
    """Run one part of the probe; an unexpected exception becomes a Problem, never a crash."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - detect() must return on any tree
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        fs.note(what, f"internal error {type(exc).__name__}: {exc} (at {tb.name}:{tb.lineno})")
        return fallback()


def detect(fs: HostFS, *, nvml: bool | None = None) -> Topology:
    """Probe the machine under `fs.root`. `nvml=None`: use NVML only when reading the live
    machine (a captured tree's GPUs are not this machine's)."""
    use_nvml = fs.is_live if nvml is None else nvml
    facts = _guard(
        fs,
        "proc/cpuinfo",
        lambda: cpu_probe.read_cpuinfo(fs, live=fs.is_live),
        lambda: cpu_probe.CpuFacts(None, None, None, None, None, None, (), {}, {}),
    )
    parts = _guard(fs, "sys/devices/system/cpu", lambda: _cpu_topology(fs, facts), _empty_topology)
    cpu_info, cpus, cores, l3, sockets, nodes = parts
    hostinfo = _guard(fs, "host", lambda: host.read_host(fs), lambda: host.empty_host())
    meminfo = _guard(
        fs,
        "memory",
        lambda: memory.read_memory(fs, cpu_info.model_name, sockets, nodes),
        lambda: memory.unknown_memory("memory probe failed"),
    )
    base_memory = meminfo
    meminfo = _guard(
        fs, "memory fabric", lambda: fabric.apply_fabric(base_memory, cpu_info, sockets, l3,
                                   hostinfo.virtualization),
        lambda: base_memory,
    )
    nodes = _note_unaccounted_memory(fs, nodes, meminfo.total_bytes)
    gpus, displays = _guard(
        fs, "gpus", lambda: gpu.read_pci_gpus(fs, nvml=use_nvml), lambda: ((), ())
    )
    temps: tuple[Sensor, ...] = _guard(
        fs, "sensors", lambda: _read_sensors_once(fs, sockets, gpus, use_nvml), lambda: ()
    )
    return Topology(
        root=fs.root,
        cpu=cpu_info,
        cpus=cpus,
        cores=cores,
        l3_domains=l3,
        sockets=sockets,
        nodes=nodes,
        memory=meminfo,
        gpus=gpus,
        sensors=temps,
        host=hostinfo,
        problems=tuple(dict.fromkeys(fs.problems)),
        display_adapters=displays,
    )


def _note_unaccounted_memory(
    fs: HostFS, nodes: tuple[NumaNode, ...], total: int | None
) -> tuple[NumaNode, ...]:
    """Flag nodes whose meminfo misses memory the kernel has (/proc/meminfo MemTotal): seen in
    VMs whose memory is hot-plugged or ballooned outside the node accounting. Per-node figures
    then understate what the machine can allocate; say so rather than let a planner believe
    them. (Node totals above MemTotal are normal: MemTotal excludes kernel-reserved memory.)"""
    known = [n.mem_total_bytes for n in nodes if n.mem_total_bytes is not None]
    if not total or not known or len(known) != len(nodes) or sum(known) >= 0.9 * total:
        return nodes
    gib = 1 << 30
    why = (
        f"node meminfo files count {sum(known) / gib:.1f} GiB of the {total / gib:.1f} GiB in "
        "/proc/meminfo (memory hot-plugged or ballooned outside the node accounting, as in "
        "some VMs): per-node sizes understate what can be allocated"
    )
    fs.note("sys/devices/system/node", why)
    if len(nodes) == 1:
        note = f"meminfo counts {sum(known) / gib:.1f} of the machine's {total / gib:.1f} GiB"
        n = nodes[0]
        return (replace(n, note=f"{n.note}; {note}" if n.note else note),)
    return nodes


def _read_sensors_once(fs: HostFS, sockets, gpus, use_nvml: bool) -> tuple[Sensor, ...]:
    reader = SensorReader(fs, sockets, gpus=gpus, nvml=use_nvml)
    try:
        return reader.read()
    finally:
        reader.close()


Parts = tuple[
    CpuInfo,
    tuple[LogicalCpu, ...],
    tuple[Core, ...],
    tuple[CacheDomain, ...],
    tuple[Socket, ...],
    tuple[NumaNode, ...],
]


def _empty_topology() -> Parts:
    info = CpuInfo(
        None, None, None, None, None, None, {}, (), None, None, (), (), None, None, None, False,
        unknown={"model_name": "CPU probe failed"},
    )  # fmt: skip
    return info, (), (), (), (), ()


def _cpu_topology(fs: HostFS, facts: cpu_probe.CpuFacts) -> Parts:
    raw = topo_probe.read_cpus(fs)
    topo_probe.group_packages(raw)
    online = tuple(c.id for c in raw if c.online)
    offline = tuple(c.id for c in raw if not c.online)
    raw_nodes, node_reason = topo_probe.read_nodes(fs, online, tuple(c.id for c in raw))
    if node_reason:
        fs.problems.append(Problem(path="/sys/devices/system/node", reason=node_reason))
    topo_probe.assign_nodes(raw, raw_nodes)
    ids = [c.id for c in raw if c.online]
    caps = cpu_probe.read_capacities(fs, ids)
    freqs = cpu_probe.read_freqs(fs, ids)
    kinds = cpu_probe.read_kinds(fs, ids, caps)
    allowed, allowed_src = cpu_probe.read_allowed(fs)

    # Physical cores: the kernel's sibling set, else (package, die, core_id).
    online_set = set(online)
    core_keys: dict[object, list[int]] = {}
    for c in raw:
        if not c.online:
            continue
        sib = tuple(x for x in c.siblings if x in online_set)
        if sib and c.id in sib:
            key: object = ("sib", sib)
        elif c.core_id is not None:
            key = ("id", c.package, c.die, c.core_id)
        else:
            key = ("cpu", c.id)
        core_keys.setdefault(key, []).append(c.id)
    by_id = {c.id: c for c in raw}
    groups = sorted(core_keys.values(), key=lambda g: (by_id[g[0]].package or 0, min(g)))
    core_of: dict[int, int] = {}
    cores = []
    for i, members in enumerate(groups):
        first = by_id[min(members)]
        for m in members:
            core_of[m] = i
        cores.append(
            Core(i, first.package, first.die, first.core_id, tuple(sorted(members)), first.node,
                 kinds.get(first.id))
        )  # fmt: skip

    l3_keys: dict[tuple[int, ...], int] = {}
    for c in sorted(raw, key=lambda c: c.id):
        shared = tuple(x for x in c.l3_cpus if x in online_set)
        if c.online and shared:
            l3_keys.setdefault(shared, len(l3_keys))
    l3 = tuple(
        CacheDomain(i, 3, by_id[k[0]].l3_size, k, by_id[k[0]].package) for k, i in l3_keys.items()
    )
    l3_of = {cid: i for k, i in l3_keys.items() for cid in k}

    cpus = tuple(
        LogicalCpu(
            id=c.id, online=c.online, socket=c.package, die=c.die, core_id=c.core_id,
            core=core_of.get(c.id), node=c.node, l3=l3_of.get(c.id), kind=kinds.get(c.id),
            capacity=caps.get(c.id), max_mhz=freqs.get(c.id, (None, None))[0],
        )
        for c in raw
    )  # fmt: skip

    nodes = _numa_nodes(raw_nodes, by_id, allowed)
    sockets = _sockets(raw, cores, l3, nodes, facts)
    nodes = tuple(nodes)

    smt_file = fs.read_str("sys/devices/system/cpu/smt/active")
    tpc = max((len(c.cpus) for c in cores), default=0) or None
    smt = smt_file == "1" if smt_file in ("0", "1") else (tpc > 1 if tpc else None)
    mx = [f[0] for f in freqs.values() if f[0]]
    mn = [f[1] for f in freqs.values() if f[1]]
    unknown = dict(facts.unknown)
    if allowed is None:
        unknown["allowed"] = allowed_src or "unknown"
    if not mx:
        unknown["max_mhz"] = "no cpufreq in sys/devices/system/cpu/cpu*/cpufreq (VM or no driver)"
    if not raw:
        unknown["online"] = "no sys/devices/system/cpu/cpuN directories"
    info = CpuInfo(
        arch=facts.arch, vendor=facts.vendor, model_name=facts.model_name, family=facts.family,
        model=facts.model, stepping=facts.stepping, isa=facts.isa, flags=facts.flags,
        smt_active=smt, threads_per_core=tpc, online=online, offline=offline, allowed=allowed,
        max_mhz=max(mx) if mx else None, min_mhz=min(mn) if mn else None,
        hybrid=len(set(kinds.values())) > 1, unknown=unknown, cpuinfo_mhz=facts.cpuinfo_mhz,
    )  # fmt: skip
    return info, cpus, tuple(cores), l3, sockets, nodes


def _numa_nodes(raw_nodes, by_id, allowed) -> list[NumaNode]:
    cpu_nodes = {n.id for n in raw_nodes if n.cpus}
    out = []
    for n in raw_nodes:
        pkgs = sorted({by_id[c].package for c in n.cpus if c in by_id} - {None})
        note = None
        socket = pkgs[0] if len(pkgs) == 1 else None
        if not n.cpus and n.distances:
            # Memory-only node (CXL, HBM, PMEM, GPU memory): nearest node that has CPUs.
            near = sorted((d, i) for i, d in n.distances.items() if i in cpu_nodes and i != n.id)
            if near:
                best = [i for d, i in near if d == near[0][0]]
                owners = {
                    by_id[c].package
                    for r in raw_nodes
                    if r.id in best
                    for c in r.cpus
                    if c in by_id
                }
                socket = owners.pop() if len(owners) == 1 else None
                note = f"memory-only; nearest CPU node(s) {','.join(map(str, best))}"
            if (n.mem_total or 0) == 0:
                note = "no CPUs and no memory (a generic initiator or a hot-plug slot)"
        elif len(pkgs) > 1:
            note = f"spans sockets {','.join(map(str, pkgs))}"
        if allowed is not None and n.cpus and not set(n.cpus) <= set(allowed):
            outside = sorted(set(n.cpus) - set(allowed))
            note = (note + "; " if note else "") + (
                f"CPUs {','.join(map(str, outside))} outside this process's cpuset"
            )
        out.append(
            NumaNode(
                id=n.id, cpus=n.cpus, mem_total_bytes=n.mem_total, mem_free_bytes=n.mem_free,
                distances=n.distances, kind="cpu" if n.cpus else "memory-only", socket=socket,
                hugepages_total=n.hugepages_2m, note=note, unknown=n.unknown,
            )
        )  # fmt: skip
    return out


def _sockets(raw, cores, l3, nodes, facts) -> tuple[Socket, ...]:
    pkgs = sorted({c.package for c in raw if c.online and c.package is not None})
    pkg_of = {c.id: c.package for c in raw if c.package is not None}
    spans = any(len({pkg_of.get(c) for c in n.cpus} - {None}) > 1 for n in nodes)
    out = []
    for p in pkgs:
        cpus = tuple(c.id for c in raw if c.online and c.package == p)
        cpu_set = set(cpus)
        cpu_nodes = sorted({n.id for n in nodes if n.cpus and set(n.cpus) & cpu_set})
        mem_nodes = [n.id for n in nodes if not n.cpus and n.socket == p]
        n_cores = sum(1 for c in cores if c.socket == p)
        dies = len({c.die for c in raw if c.online and c.package == p})
        mode = _numa_mode(facts.vendor, len(cpu_nodes), spans, facts.model_name)
        out.append(
            Socket(
                id=p, model=facts.model_name, cores=n_cores, cpus=cpus,
                nodes=tuple(sorted(cpu_nodes + mem_nodes)), dies=max(dies, 1),
                l3_domains=tuple(d.index for d in l3 if set(d.cpus) & cpu_set), numa_mode=mode,
            )
        )  # fmt: skip
    return tuple(out)


def _numa_mode(
    vendor: str | None, nodes_in_socket: int, node_spans_sockets: bool, model: str | None = None
) -> str | None:
    """Nodes per socket, named the way the BIOS option is: NPSn on EPYC/Threadripper, SNCn on
    Xeon. Desktop parts and older server chips have no such option: "1 node", "2 nodes"."""
    if node_spans_sockets:
        return "nodes span sockets"  # old UMA boxes, node interleaving, IA-64 cells
    if nodes_in_socket == 0:
        return None
    name = (model or "").upper()
    if vendor == "AuthenticAMD" and not any(k in name for k in ("EPYC", "THREADRIPPER")):
        vendor = None
    if vendor == "GenuineIntel" and "XEON" not in name:
        vendor = None
    if vendor == "AuthenticAMD":
        return (
            f"NPS{nodes_in_socket}" if nodes_in_socket in (1, 2, 4) else f"{nodes_in_socket} nodes"
        )
    if vendor == "GenuineIntel":
        return "SNC off" if nodes_in_socket == 1 else f"SNC{nodes_in_socket}"
    return f"{nodes_in_socket} node" + ("s" if nodes_in_socket > 1 else "")
