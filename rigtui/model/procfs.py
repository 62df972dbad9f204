"""Pure parsers of /proc files about one process, shared by the engine (a worker reporting its
own placement) and telemetry (the sampler polling an engine's): one copy of each, in the bottom
layer, since those two packages may not import each other.

- `/proc/PID/numa_maps` (Documentation/filesystems/proc.rst, "numa_maps"): one mapping a line,
  `7f2a00000000 default file=/models/x.gguf mapped=1024 N0=1000 N1=24 kernelpagesize_kB=4`;
  `N<node>=<pages>` counts its pages present on that node. Shell: `numastat -p PID`.
- `/proc/PID/status`: `Cpus_allowed_list` and `Mems_allowed_list`. Shell: `taskset -cp PID`.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field

from rigtui.model.cpulist import parse_cpulist

_OCTAL = re.compile(rb"\\([0-7]{3})")


def _unescape(path: bytes) -> str:
    """numa_maps escapes "\\n", "\\t", "=" and space in paths as \\ooo (seq_file_path). A name
    that is not UTF-8 (some library's) is decoded with replacement characters: it is shown and
    written as JSON, and a model file is not named so."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), path).decode("utf-8", "replace")


@dataclass
class NumaMaps:
    """numa_maps folded: bytes per node for each mapped file, and for anonymous memory (every
    mapping without a file: heap, stack, anon)."""

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


def model_mapping(maps: NumaMaps, model_path: str | None) -> str | None:
    """The model's mapping: the engine's model path (as given, or resolved: the kernel shows
    the real path), else one of the same name, else the largest mapped .gguf."""
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


def parse_status_lists(status_text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(Cpus_allowed_list, Mems_allowed_list) of a /proc/PID/status text."""
    cpus: tuple[int, ...] = ()
    mems: tuple[int, ...] = ()
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list":
            cpus = parse_cpulist(value)
        elif key == "Mems_allowed_list":
            mems = parse_cpulist(value)
    return cpus, mems
