"""Where the engine's model pages sit: bytes per NUMA node from `/proc/PID/numa_maps`.

The "everything landed on node 0" detector. Each numa_maps line is one mapping:
`7f2a00000000 default file=/models/x.gguf mapped=1024 N0=1000 N1=24 kernelpagesize_kB=4`
(see the kernel's Documentation/filesystems/proc.rst, "numa_maps"). `N<node>=<pages>` counts the
mapping's pages present on that node. Reading it walks the process's page tables, so it is
polled slowly (`placement_interval_s`), not every sample. Shell: `numastat -p PID`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from types import MappingProxyType

from rigtui.hostfs import HostFS
from rigtui.model.sample import ModelPlacement

_OCTAL = re.compile(rb"\\([0-7]{3})")


def _unescape(path: bytes) -> str:
    """numa_maps escapes "\\n", "\\t", "=" and space in paths as \\ooo."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), path).decode("utf-8", "replace")


@dataclass
class NumaMaps:
    """numa_maps folded: pages per node (bytes) for each file, and for anonymous memory."""

    file_bytes: dict[str, dict[int, int]] = field(default_factory=dict)
    anon_bytes: dict[int, int] = field(default_factory=dict)


def parse_numa_maps(data: bytes) -> NumaMaps:
    out = NumaMaps()
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) < 3:
            continue
        path: str | None = None
        page_kb = 4
        per_node: dict[int, int] = {}
        for tok in parts[2:]:
            if tok.startswith(b"file="):
                path = _unescape(tok[5:])
            elif tok.startswith(b"kernelpagesize_kB="):
                with contextlib.suppress(ValueError):
                    page_kb = int(tok[18:])
            elif tok[:1] == b"N" and b"=" in tok:
                node_s, _, pages_s = tok[1:].partition(b"=")
                try:
                    per_node[int(node_s)] = per_node.get(int(node_s), 0) + int(pages_s)
                except ValueError:
                    continue
        if not per_node:
            continue
        target = out.anon_bytes if path is None else out.file_bytes.setdefault(path, {})
        for node, pages in per_node.items():
            target[node] = target.get(node, 0) + pages * page_kb * 1024
    return out


def pick_model_file(maps: NumaMaps, model_path: str | None) -> str | None:
    """The model's mapping: the engine's known model path, else the largest mapped .gguf."""
    if model_path:
        real = os.path.realpath(model_path)
        for path in maps.file_bytes:
            if path in (model_path, real):
                return path
        base = os.path.basename(model_path)
        for path in maps.file_bytes:
            if os.path.basename(path) == base:
                return path
    ggufs = [p for p in maps.file_bytes if p.lower().endswith(".gguf")]
    if not ggufs:
        return None
    return max(ggufs, key=lambda p: sum(maps.file_bytes[p].values()))


def read_placement(fs: HostFS, pid: int, model_path: str | None = None) -> ModelPlacement:
    """One read of /proc/PID/numa_maps, folded into a ModelPlacement (never raises)."""
    now = time.time()
    try:
        with open(fs.path(f"proc/{pid}/numa_maps"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return ModelPlacement(pid, False, t=now, reason=f"engine PID {pid} is not running")
    except ProcessLookupError:
        return ModelPlacement(pid, False, t=now, reason=f"engine PID {pid} exited while reading")
    except PermissionError:
        return ModelPlacement(
            pid,
            False,
            t=now,
            reason=f"/proc/{pid}/numa_maps: permission denied (another user's "
            "process: run rigtui as that user or root)",
        )
    except OSError as exc:
        return ModelPlacement(pid, False, t=now, reason=f"/proc/{pid}/numa_maps: {exc.strerror}")
    if not data:
        return ModelPlacement(
            pid, False, t=now, reason=f"engine PID {pid} exited (empty numa_maps)"
        )
    maps = parse_numa_maps(data)
    model = pick_model_file(maps, model_path)
    return ModelPlacement(
        pid=pid,
        available=True,
        model_file_bytes_per_node=MappingProxyType(
            dict(sorted(maps.file_bytes.get(model, {}).items())) if model else {}
        ),
        anon_bytes_per_node=MappingProxyType(dict(sorted(maps.anon_bytes.items()))),
        model_path=model,
        t=now,
        reason=None if model else "no model file mapped (loaded without mmap, or not loaded yet)",
    )
