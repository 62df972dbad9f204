"""`rigtui probe --json`: the Topology as plain JSON values, with the fixed keys of issue 2.

Fixed keys (scripts rely on them; more keys may be added, none removed):
  cpus (int: online logical CPUs), cores (int: physical cores),
  sockets: [{id, model, cores, cpus: [int], nodes: [int]}],
  nodes: [{id, cpus: [int], mem_total_bytes: int|null, distances: {id: int},
           kind: "cpu"|"memory-only"}],
  cpu: {vendor, model, isa: {flag: bool}}, caches: {l3_instances},
  memory: {total_bytes, dimms: [...], populated_channels, theoretical_bandwidth_gbs, source},
  gpus: [...], sensors: [...], host: {kernel, ...}.
A value the machine does not report is null and its reason is in the sibling "unknown" object
({field: reason}). "problems" lists the files that could not be read and why.
"""

from __future__ import annotations

from typing import Any

from rigtui.model.common import to_jsonable
from rigtui.model.topology import Topology
from rigtui.probes.parse import format_cpulist

SCHEMA_VERSION = 1


def topology_to_json(topo: Topology) -> dict[str, Any]:
    """The `rigtui probe --json` document (plain dicts/lists, json.dumps-ready)."""
    cpu = topo.cpu
    unknown: dict[str, str] = {}
    if not topo.cpus:
        unknown["cpus"] = unknown["cores"] = "no CPU topology readable under the root"
    cpu_doc = {
        "vendor": cpu.vendor,
        "model": cpu.model_name,
        "isa": dict(cpu.isa),
        "arch": cpu.arch,
        "family": cpu.family,
        "model_number": cpu.model,
        "stepping": cpu.stepping,
        "smt_active": cpu.smt_active,
        "threads_per_core": cpu.threads_per_core,
        "online": list(cpu.online),
        "online_list": format_cpulist(cpu.online),
        "offline": list(cpu.offline),
        "allowed": list(cpu.allowed) if cpu.allowed is not None else None,
        "max_mhz": cpu.max_mhz,
        "cpuinfo_mhz": cpu.cpuinfo_mhz,
        "min_mhz": cpu.min_mhz,
        "hybrid": cpu.hybrid,
        "flags": list(cpu.flags),
        "unknown": _unknown(cpu.unknown, {"model": cpu.unknown.get("model_name")}),
    }
    sockets = [
        {
            "id": s.id,
            "model": s.model,
            "cores": s.cores,
            "cpus": list(s.cpus),
            "cpu_list": format_cpulist(s.cpus),
            "nodes": list(s.nodes),
            "dies": s.dies,
            "l3_domains": list(s.l3_domains),
            "numa_mode": s.numa_mode,
        }
        for s in topo.sockets
    ]
    nodes = [
        {
            "id": n.id,
            "cpus": list(n.cpus),
            "cpu_list": format_cpulist(n.cpus),
            "mem_total_bytes": n.mem_total_bytes,
            "mem_free_bytes": n.mem_free_bytes,
            "distances": {str(k): v for k, v in n.distances.items()},
            "kind": n.kind,
            "socket": n.socket,
            "hugepages_2m_total": n.hugepages_total,
            "note": n.note,
            "unknown": dict(n.unknown),
        }
        for n in topo.nodes
    ]
    mem = topo.memory
    memory = to_jsonable(mem)
    memory["dimms"] = [to_jsonable(d) for d in mem.dimms]
    memory["channels_per_socket"] = {str(k): v for k, v in mem.channels_per_socket.items()}
    memory["unknown"] = dict(mem.unknown)
    sizes = [d.size_bytes for d in mem.dimms if d.populated]
    memory["installed_bytes"] = sum(sizes) if sizes and None not in sizes else None  # type: ignore[arg-type]
    memory["populated_dimms"] = len(sizes)
    if mem.theoretical_bandwidth_gbs is not None and mem.source.startswith("platform-table"):
        memory["unknown"].setdefault(
            "measured", "bandwidth is the platform's maximum, not this machine's DIMMs"
        )
    return {
        "schema": SCHEMA_VERSION,
        "root": topo.root,
        "cpus": len(cpu.online),
        "cores": len(topo.cores),
        "sockets": sockets,
        "nodes": nodes,
        "cpu": cpu_doc,
        "caches": {
            "l3_instances": len(topo.l3_domains),
            "l3": [to_jsonable(d) for d in topo.l3_domains],
        },
        "memory": memory,
        "gpus": [to_jsonable(g) for g in topo.gpus],
        "display_adapters": [to_jsonable(g) for g in topo.display_adapters],
        "sensors": [to_jsonable(s) for s in topo.sensors],
        "host": to_jsonable(topo.host),
        "logical_cpus": [to_jsonable(c) for c in topo.cpus],
        "fingerprint": to_jsonable(topo.fingerprint()),
        "unknown": unknown,
        "problems": [{"path": p.path, "reason": p.reason} for p in topo.problems],
    }


def _unknown(base, extra: dict[str, str | None]) -> dict[str, str]:
    out = dict(base)
    out.update({k: v for k, v in extra.items() if v})
    return out
