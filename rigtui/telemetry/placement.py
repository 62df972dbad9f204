"""Where the engine's model pages sit: bytes per NUMA node from `/proc/PID/numa_maps`.

The "everything landed on node 0" detector. Each numa_maps line is one mapping:
`7f2a00000000 default file=/models/x.gguf mapped=1024 N0=1000 N1=24 kernelpagesize_kB=4`
(see the kernel's Documentation/filesystems/proc.rst, "numa_maps"). `N<node>=<pages>` counts the
mapping's pages present on that node. Reading it walks the process's page tables, so it is
polled slowly (`placement_interval_s`), not every sample. Shell: `numastat -p PID`.
"""

from __future__ import annotations

import os
import time
from types import MappingProxyType

from rigtui.hostfs import HostFS
from rigtui.model.procfs import NumaMaps, model_mapping, parse_numa_maps
from rigtui.model.sample import ModelPlacement

__all__ = ["NumaMaps", "parse_numa_maps", "pick_model_file", "read_placement"]
pick_model_file = model_mapping  # the name the sampler's callers know

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
    model = model_mapping(maps, model_path)
    size = None
    if model:
        try:  # the path as the engine sees it, under its root: / for a live process
            size = os.stat(fs.path(f"proc/{pid}/root{model}")).st_size
        except OSError:
            size = None
    return ModelPlacement(
        model_file_bytes=size,
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
