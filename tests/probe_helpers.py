"""Readers for the expected outputs shipped beside the fixtures: hwloc's `lstopo -v` console text
and XML, and util-linux's `lscpu` output. Test-only code."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

_UNITS = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "KB": 1024, "MB": 1024**2}


@dataclass
class Expected:
    """Counts and ids from a reference tool. `node_mem` values are bytes (None = not shown);
    `mem_unit` is the display unit of each node's memory (the precision to compare at)."""

    packages: list[int | None] = field(default_factory=list)
    cores: int = 0
    pus: set[int] = field(default_factory=set)
    node_mem: dict[int, int | None] = field(default_factory=dict)
    mem_unit: dict[int, int] = field(default_factory=dict)
    node_cpus: dict[int, set[int]] = field(default_factory=dict)
    memory_modules: list[dict[str, str]] = field(default_factory=list)


_LINE = re.compile(r"^\s*(Package|Core|PU|NUMANode(?:\(\w+\))?)\s+L#\d+\s*(?:\((.*)\))?\s*$")


def parse_console(path: Path) -> Expected:
    """hwloc `lstopo -v` text: one object per line, "Type L#i (P#os attr=value ...)"."""
    exp = Expected()
    for line in path.read_text().splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        kind, attrs = m.group(1), m.group(2) or ""
        pm = re.search(r"(?:^|\s)P#(\d+)", attrs)
        os_index = int(pm.group(1)) if pm else None
        if kind == "Package":
            exp.packages.append(os_index)
        elif kind == "Core":
            exp.cores += 1
        elif kind == "PU":
            assert os_index is not None
            exp.pus.add(os_index)
        else:
            assert os_index is not None
            mm = re.search(r"local=(\d+)(KiB|MiB|GiB|TiB)", attrs)
            exp.node_mem[os_index] = int(mm.group(1)) * _UNITS[mm.group(2)] if mm else None
            exp.mem_unit[os_index] = _UNITS[mm.group(2)] if mm else 1
    return exp


def parse_xml(path: Path) -> Expected:
    """hwloc XML topology: <object type=... os_index=... local_memory=bytes>."""
    exp = Expected()
    root = ET.parse(path).getroot()
    for obj in root.iter("object"):
        t = obj.get("type")
        idx = obj.get("os_index")
        if t == "Package":
            exp.packages.append(int(idx) if idx is not None else None)
        elif t == "Core":
            exp.cores += 1
        elif t == "PU":
            exp.pus.add(int(idx or 0))
        elif t == "NUMANode":
            mem = obj.get("local_memory")
            exp.node_mem[int(idx or 0)] = int(mem) if mem else None
            exp.mem_unit[int(idx or 0)] = 1
        elif t == "Misc" and obj.get("subtype") == "MemoryModule":
            exp.memory_modules.append({i.get("name"): i.get("value") for i in obj.iter("info")})
    return exp


def parse_lscpu(path: Path) -> Expected:
    """The first (human) block of util-linux's expected `lscpu` output."""
    text = path.read_text().split("\n\n")[0]
    kv = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        kv[k.strip()] = v.strip()
    from rigtui.probes.parse import parse_cpulist

    sockets = int(kv["Socket(s)"])
    exp = Expected()
    exp.packages = [None] * sockets
    exp.cores = int(kv["Core(s) per socket"]) * sockets
    exp.pus = set(parse_cpulist(kv["On-line CPU(s) list"]))
    for k, v in kv.items():
        m = re.fullmatch(r"NUMA node(\d+) CPU\(s\)", k)
        if m:
            exp.node_mem[int(m.group(1))] = None
            exp.node_cpus[int(m.group(1))] = set(parse_cpulist(v))
    assert len(exp.node_mem) == int(kv.get("NUMA node(s)", len(exp.node_mem)))
    return exp


def write_tree(
    root: Path, files: dict[str, str | bytes], links: dict[str, str] | None = None
) -> Path:
    """Create a small /sys-/proc-like tree: {relative path: content}, {link path: target}."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    for rel, target in (links or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
    return root


def cpu_tree(
    sockets: int = 2,
    cores: int = 2,
    threads: int = 2,
    model: str = "AMD EPYC 9654 96-Core Processor",
) -> dict[str, str]:
    """Files of a machine with `sockets` x `cores` x `threads`, one NUMA node per socket,
    Linux numbering (thread 0 of every core first, then the SMT siblings)."""
    files: dict[str, str] = {}
    n_cores = sockets * cores
    total = n_cores * threads
    files["sys/devices/system/cpu/online"] = f"0-{total - 1}\n"
    flags = "fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 lm"
    cpuinfo = []
    for cpu in range(total):
        core = cpu % n_cores
        sock = core // cores
        sibs = ",".join(str(core + t * n_cores) for t in range(threads))
        base = f"sys/devices/system/cpu/cpu{cpu}"
        files[f"{base}/topology/physical_package_id"] = f"{sock}\n"
        files[f"{base}/topology/core_id"] = f"{core % cores}\n"
        files[f"{base}/topology/thread_siblings_list"] = sibs + "\n"
        l3 = ",".join(
            str(c + t * n_cores)
            for t in range(threads)
            for c in range(sock * cores, (sock + 1) * cores)
        )
        files[f"{base}/cache/index3/level"] = "3\n"
        files[f"{base}/cache/index3/size"] = "32768K\n"
        files[f"{base}/cache/index3/shared_cpu_list"] = l3 + "\n"
        cpuinfo.append(
            f"processor\t: {cpu}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
            f"model name\t: {model}\nstepping\t: 1\nphysical id\t: {sock}\nflags\t\t: {flags}\n"
        )
    files["proc/cpuinfo"] = "\n".join(cpuinfo)
    dist = []
    for s in range(sockets):
        dist.append(" ".join("10" if s == t else "32" for t in range(sockets)))
    for s in range(sockets):
        cpus = [c for c in range(total) if (c % n_cores) // cores == s]
        from rigtui.probes.parse import format_cpulist

        files[f"sys/devices/system/node/node{s}/cpulist"] = format_cpulist(cpus) + "\n"
        files[f"sys/devices/system/node/node{s}/meminfo"] = (
            f"Node {s} MemTotal:       {64 * 1024 * 1024} kB\nNode {s} MemFree:        {60 * 1024 * 1024} kB\n"
        )
        files[f"sys/devices/system/node/node{s}/distance"] = dist[s] + "\n"
    files["proc/meminfo"] = (
        f"MemTotal:       {sockets * 64 * 1024 * 1024} kB\nMemAvailable:   1024 kB\n"
    )
    return files
