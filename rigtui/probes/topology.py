"""Sockets, dies, cores, L3 domains and NUMA nodes, as the kernel describes them.

Files read (relative to the HostFS root), the shell equivalents being `lscpu -e`, `numactl -H`
and `lstopo`:
- sys/devices/system/cpu/{online,present}, cpu*/online
- sys/devices/system/cpu/cpu*/topology/{physical_package_id,die_id,core_id,thread_siblings*,
  core_cpus_list,core_siblings*}
- sys/devices/system/cpu/cpu*/cache/index*/{level,shared_cpu_list,shared_cpu_map,size}
- sys/devices/system/node/node*/{cpulist,cpumap,meminfo,distance,hugepages/...}
- proc/meminfo (one assumed node when the kernel has no node/ directory)

Cores are keyed by the kernel's own "same core" set (thread_siblings / core_cpus), then by
(package, die, core_id): core ids repeat across dies and sockets, and some kernels repeat them
inside a package too (fakememinitiators has two cpus with core_id 0 in package 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rigtui.hostfs import HostFS
from rigtui.model.cpulist import format_cpulist
from rigtui.probes.parse import (
    parse_cpulist,
    parse_cpumask,
    parse_distance,
    parse_meminfo,
    parse_size,
)

CPU_DIR = "sys/devices/system/cpu"
NODE_DIR = "sys/devices/system/node"


@dataclass
class RawCpu:
    """What sysfs says about one logical CPU (mutable while the probe assembles it)."""

    id: int
    online: bool
    package: int | None = None
    die: int | None = None
    core_id: int | None = None
    siblings: tuple[int, ...] = ()  # thread siblings incl. itself; () if the kernel says nothing
    package_cpus: tuple[int, ...] = ()  # core_siblings: CPUs of the same package
    node: int | None = None
    l3_cpus: tuple[int, ...] = ()
    l3_size: int | None = None


@dataclass
class RawNode:
    id: int
    cpus: tuple[int, ...]
    mem_total: int | None
    mem_free: int | None
    distances: dict[int, int]
    hugepages_2m: int | None
    unknown: dict[str, str] = field(default_factory=dict)


def read_list(fs: HostFS, rel_list: str, rel_mask: str | None = None) -> tuple[int, ...] | None:
    """A cpulist file, else its hex-mask twin; None if neither is readable; garbage is noted."""
    text = fs.read_str(rel_list)
    if text is not None:
        try:
            return parse_cpulist(text)
        except ValueError as exc:
            fs.note(rel_list, str(exc))
    if rel_mask is not None:
        text = fs.read_str(rel_mask)
        if text is not None:
            try:
                return parse_cpumask(text)
            except ValueError as exc:
                fs.note(rel_mask, str(exc))
    return None


def _numbered(fs: HostFS, rel_dir: str, prefix: str) -> list[int]:
    ids = []
    for name in fs.listdir(rel_dir):
        m = re.fullmatch(prefix + r"(\d+)", name)
        if m:
            ids.append(int(m.group(1)))
    return sorted(ids)


def _int_or_none(fs: HostFS, rel: str) -> int | None:
    v = fs.read_int(rel)
    return None if v is None or v < 0 else v  # -1 = "the kernel does not know"


def read_cpus(fs: HostFS) -> list[RawCpu]:
    """Every present CPU with its topology ids. Offline CPUs have no topology/ directory."""
    ids = _numbered(fs, CPU_DIR, "cpu")
    if not ids:
        fs.note(CPU_DIR, "no cpuN directories: cannot see logical CPUs")
        return []
    online_all = read_list(fs, f"{CPU_DIR}/online")
    cpus = []
    # Sibling, package and L3 sets are the same for every member: read once per set.
    known_sib: dict[int, tuple[int, ...]] = {}
    known_pkg: dict[int, tuple[int, ...]] = {}
    known_l3: dict[int, tuple[tuple[int, ...], int | None]] = {}
    for cid in ids:
        base = f"{CPU_DIR}/cpu{cid}"
        if online_all is not None:
            online = cid in online_all
        else:  # old trees: per-CPU online file, absent on the boot CPU
            flag = fs.read_str(f"{base}/online")
            online = flag != "0" if flag is not None else True
        c = RawCpu(id=cid, online=online)
        if online:
            t = f"{base}/topology"
            c.package = _int_or_none(fs, f"{t}/physical_package_id")
            c.die = _int_or_none(fs, f"{t}/die_id")
            c.core_id = _int_or_none(fs, f"{t}/core_id")
            if cid in known_sib:
                c.siblings = known_sib[cid]
            else:
                sib = read_list(fs, f"{t}/core_cpus_list", f"{t}/core_cpus") or read_list(
                    fs, f"{t}/thread_siblings_list", f"{t}/thread_siblings"
                )
                c.siblings = sib or ()
                known_sib.update((x, c.siblings) for x in c.siblings)
            if cid in known_pkg:
                c.package_cpus = known_pkg[cid]
            else:
                c.package_cpus = (
                    read_list(fs, f"{t}/package_cpus_list", f"{t}/package_cpus")
                    or read_list(fs, f"{t}/core_siblings_list", f"{t}/core_siblings")
                    or ()
                )
                known_pkg.update((x, c.package_cpus) for x in c.package_cpus)
            if cid in known_l3:
                c.l3_cpus, c.l3_size = known_l3[cid]
            else:
                _read_l3(fs, base, c)
                known_l3.update((x, (c.l3_cpus, c.l3_size)) for x in c.l3_cpus)
        cpus.append(c)
    return cpus


def _read_l3(fs: HostFS, base: str, c: RawCpu) -> None:
    # index3 is the L3 on every x86 and most ARM kernels: try it before listing the directory.
    names = ["index3"] + [i for i in fs.listdir(f"{base}/cache") if i != "index3"]
    for idx in names:
        if not idx.startswith("index"):
            continue
        d = f"{base}/cache/{idx}"
        if fs.read_str(f"{d}/level") != "3":
            continue
        shared = read_list(fs, f"{d}/shared_cpu_list", f"{d}/shared_cpu_map")
        c.l3_cpus = shared or (c.id,)
        size = fs.read_str(f"{d}/size")
        try:
            c.l3_size = parse_size(size) if size else None
        except ValueError as exc:
            fs.note(f"{d}/size", str(exc))
        return


def read_nodes(fs: HostFS, online_cpus: tuple[int, ...], known_cpus: tuple[int, ...] = ()
               ) -> tuple[list[RawNode], str | None]:  # fmt: skip
    """NUMA nodes (`numactl -H`). Without sys/devices/system/node (kernel built without NUMA,
    or a sparse capture) one node 0 holding every CPU and /proc/meminfo's memory is returned,
    with the reason as second value."""
    ids = _numbered(fs, NODE_DIR, "node")
    online_set = set(online_cpus)
    known_set = set(known_cpus)
    if not ids:
        mem = fs.read_text("proc/meminfo")
        info = parse_meminfo(mem) if mem else {}
        reason = "no sys/devices/system/node: kernel without NUMA; one node assumed"
        node = RawNode(
            0, tuple(online_cpus), info.get("MemTotal"), info.get("MemFree"), {0: 10}, None
        )
        if not info:
            node.unknown["mem_total_bytes"] = "proc/meminfo unreadable"
        return [node], reason
    nodes = []
    for nid in ids:
        base = f"{NODE_DIR}/node{nid}"
        cpus = read_list(fs, f"{base}/cpulist", f"{base}/cpumap")
        if cpus is None:  # very old trees: only cpuN links inside the node directory
            cpus = tuple(_numbered(fs, base, "cpu"))
        beyond = [c for c in cpus if known_cpus and c not in known_set]
        if beyond:
            fs.note(f"{base}/cpulist", f"lists CPUs {format_cpulist(beyond)}, which this machine "
                    f"does not have (it has {format_cpulist(known_cpus)}): left out")  # fmt: skip
        node = RawNode(nid, tuple(c for c in cpus if c in online_set), None, None, {}, None)
        text = fs.read_text(f"{base}/meminfo")
        if text is None:
            node.unknown["mem_total_bytes"] = f"{base}/meminfo unreadable"
        else:
            info = parse_meminfo(text)
            node.mem_total, node.mem_free = info.get("MemTotal"), info.get("MemFree")
            if node.mem_total is None:
                fs.note(f"{base}/meminfo", "no MemTotal line")
                node.unknown["mem_total_bytes"] = f"{base}/meminfo has no MemTotal"
        node.hugepages_2m = fs.read_int(f"{base}/hugepages/hugepages-2048kB/nr_hugepages")
        nodes.append(node)
    # The distance row of each node lists every online node in id order.
    for node in nodes:
        rel = f"{NODE_DIR}/node{node.id}/distance"
        text = fs.read_str(rel)
        if text is None:
            node.unknown["distances"] = f"{rel} unreadable"
            continue
        try:
            row = parse_distance(text)
        except ValueError as exc:
            fs.note(rel, str(exc))
            node.unknown["distances"] = str(exc)
            continue
        if len(row) != len(ids):  # which entry is which node is then unknown: keep none
            fs.note(rel, f"{len(row)} distances for {len(ids)} nodes: row ignored")
            node.unknown["distances"] = f"{rel}: {len(row)} distances for {len(ids)} nodes"
            continue
        node.distances = dict(zip(ids, row, strict=True))
    # A CPU belongs to one node. A tree (or a broken kernel) that lists one in two nodes would
    # make them overlap, and every plan over them double-count it: it stays in the first.
    owner: dict[int, int] = {}
    for node in nodes:
        twice = [c for c in node.cpus if c in owner]
        if twice:
            fs.note(f"{NODE_DIR}/node{node.id}/cpulist", f"CPUs {format_cpulist(twice)} are also in "
                    f"node {owner[twice[0]]}: kept there, left out of node {node.id}")  # fmt: skip
            node.cpus = tuple(c for c in node.cpus if c not in owner)
        for c in node.cpus:
            owner[c] = node.id
    return nodes, None


def assign_nodes(cpus: list[RawCpu], nodes: list[RawNode]) -> None:
    by_id = {c.id: c for c in cpus}
    for node in nodes:
        for cid in node.cpus:
            if cid in by_id:
                by_id[cid].node = node.id


def group_packages(cpus: list[RawCpu]) -> None:
    """Fill in the package id where the kernel says -1 (POWER, old ARM): CPUs the kernel lists as
    one package (core_siblings) form one socket, numbered in order of their first CPU."""
    online = [c for c in cpus if c.online]
    if not online or all(c.package is not None for c in online):
        return
    groups: dict[tuple[int, ...], int] = {}
    start = max((c.package for c in online if c.package is not None), default=-1) + 1
    for c in online:
        if c.package is None:
            key = c.package_cpus or (c.id,)
            c.package = groups.setdefault(key, start + len(groups))
