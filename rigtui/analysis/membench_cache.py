"""The last `rigtui bench mem` result, cached per machine for the TUI and the planner.

File: `$XDG_CACHE_HOME/rigtui/membench.json` (else ~/.cache/rigtui/), holding
`{"fingerprint": Topology.fingerprint(), "result": <MemBenchResult as JSON>}` entries, newest
first. A result is only used for a topology with the same fingerprint (CPU model, sockets, nodes,
cores, memory size/channels/speed, GPUs), so a DIMM upgrade or a BIOS NPS change invalidates it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rigtui.analysis.membw_kernel import cache_dir
from rigtui.model.analysis import LatencyCell, MemBandwidth, MemBenchResult
from rigtui.model.common import to_jsonable
from rigtui.model.topology import Topology

CACHE_FILE = "membench.json"
_KEEP = 8  # machines remembered (a captured tree replayed with --root has its own fingerprint)


def _cache_path(directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / CACHE_FILE


def _norm(fp: Any) -> str:
    return json.dumps(to_jsonable(fp), sort_keys=True)


def bandwidth_from_json(obj: dict[str, Any]) -> MemBandwidth:
    return MemBandwidth(
        label=str(obj["label"]), cpu_nodes=tuple(obj["cpu_nodes"]),
        mem_nodes=tuple(obj["mem_nodes"]), threads=int(obj["threads"]),
        bytes_per_thread=int(obj["bytes_per_thread"]), read_gbs=obj.get("read_gbs"),
        triad_gbs=obj.get("triad_gbs"), theoretical_gbs=obj.get("theoretical_gbs"),
        theoretical_basis=obj.get("theoretical_basis"), placement_ok=obj.get("placement_ok"),
        note=obj.get("note"), copy_gbs=obj.get("copy_gbs"),
    )  # fmt: skip


def latency_from_json(obj: dict[str, Any]) -> LatencyCell:
    return LatencyCell(
        cpu_node=int(obj["cpu_node"]), mem_node=int(obj["mem_node"]), cpu=int(obj["cpu"]),
        ns=obj.get("ns"), bytes=int(obj["bytes"]), hops=int(obj["hops"]),
        placement_ok=obj.get("placement_ok"),
    )  # fmt: skip


def membench_from_json(obj: dict[str, Any]) -> MemBenchResult:
    """Inverse of `to_jsonable(MemBenchResult)`. Raises KeyError/TypeError/ValueError if bad."""
    machine = obj.get("machine")
    return MemBenchResult(
        t=float(obj["t"]), kernel=str(obj["kernel"]), fingerprint=dict(obj["fingerprint"]),
        nodes=tuple(bandwidth_from_json(b) for b in obj["nodes"]),
        sockets=tuple(bandwidth_from_json(b) for b in obj.get("sockets", [])),
        matrix=tuple(bandwidth_from_json(b) for b in obj.get("matrix", [])),
        machine=bandwidth_from_json(machine) if machine else None,
        notes=tuple(obj.get("notes", [])), seconds=obj.get("seconds"),
        interleaved=bandwidth_from_json(obj["interleaved"]) if obj.get("interleaved") else None,
        cross_socket=bandwidth_from_json(obj["cross_socket"]) if obj.get("cross_socket") else None,
        latency=tuple(latency_from_json(c) for c in obj.get("latency", [])),
        latency_note=obj.get("latency_note"),
    )  # fmt: skip


def _entries(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def save_membench(result: MemBenchResult, directory: Path | None = None) -> Path:
    """Store `result` (replacing any for the same fingerprint); atomic write. Returns the path."""
    path = _cache_path(directory)
    key = _norm(result.fingerprint)
    kept = [e for e in _entries(path) if _norm(e.get("fingerprint")) != key]
    entries = [{"fingerprint": to_jsonable(result.fingerprint), "result": to_jsonable(result)}]
    entries += kept[: _KEEP - 1]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".membench-")
    with os.fdopen(fd, "w") as f:
        json.dump(entries, f, indent=1)
    os.replace(tmp, path)
    return path


def load_cached_membench(
    topology: Topology, directory: Path | None = None
) -> MemBenchResult | None:
    """The cached result measured on a machine with `topology`'s fingerprint, or None."""
    try:
        path = _cache_path(directory)
    except OSError:
        return None
    key = _norm(topology.fingerprint())
    for entry in _entries(path):
        if _norm(entry.get("fingerprint")) == key:
            try:
                return membench_from_json(entry["result"])
            except (KeyError, TypeError, ValueError):
                return None
    return None
