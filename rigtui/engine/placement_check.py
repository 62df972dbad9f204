"""Did the placement asked for happen? Compare the profile's policy with what numa_maps found.

Pure: the worker reads the facts (numa_maps, the threads' affinity, the model file's file system
from /proc/self/mounts) and calls `placement_warnings`; the warnings travel in the `Placement`
event so `rigtui run`, `rigtui serve` and the TUI all say the same, loudly.

Why pages land elsewhere than asked, seen on a real two-node kernel (tests/vm):
- the model file was already in the page cache (an earlier run, a fresh copy): cached pages stay
  on the node that first read them, whatever the policy of the next reader;
- the file lives on tmpfs/ramfs: its pages were allocated when it was written, by the writer;
- llama.cpp's NUMA modes re-pin threads (and widen the main thread after each graph).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

BIND_MIN_SHARE = 0.95  # bind/preferred: at least this share on the policy's nodes
INTERLEAVE_MIN_SHARE = 0.5  # interleave: each node at least half its even share
MIN_RESIDENT_BYTES = 1 << 20  # below this there is nothing to judge yet
RAM_FILESYSTEMS = ("tmpfs", "ramfs", "hugetlbfs", "shm")


def fs_type_of(path: str, mounts_text: str) -> str | None:
    """The file system type of `path` from a /proc/mounts text (longest mount point prefix)."""
    best, best_type = "", None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def _shares(pages: Mapping[int, int]) -> dict[int, float]:
    total = sum(pages.values())
    return {n: b / total for n, b in sorted(pages.items())} if total else {}


def _fmt(shares: Mapping[int, float]) -> str:
    return ", ".join(f"node{n} {100 * s:.0f}%" for n, s in shares.items())


def _cause(fs_type: str | None, mmap: bool, policy: str, nodes: Sequence[int]) -> str:
    if fs_type in RAM_FILESYSTEMS:
        flag = "--interleave" if policy == "interleave" else "--membind"
        return (f"the model file is on {fs_type}: its pages were placed when the file was "
                "written, by the writer's policy, and a reader's policy does not move them. Fix: "
                f"write it under the policy (`numactl {flag}={','.join(map(str, nodes))} cp SRC "
                "DST`), or put it on a disk file system, or set mmap = false (the weights are "
                "then copied into the engine's own memory, placed by the policy)")  # fmt: skip
    if not mmap:
        return ("with mmap = false the weights are the engine's own memory: pages elsewhere "
                "mean the policy was refused or the node ran out of free memory (`numastat -m`)")
    return ("the file was already in the page cache (an earlier run, or it was just copied or "
            "downloaded): cached pages stay on the node that first read them. Fix: "
            "drop_caches_first = true in the profile (drops just this file, no root), or "
            "`dd if=MODEL iflag=nocache count=0` before the launch, or mmap = false")  # fmt: skip


def placement_warnings(
    *,
    policy: str,
    policy_nodes: Sequence[int],
    file_bytes_per_node: Mapping[int, int],
    fs_type: str | None = None,
    mmap: bool = True,
    cpus_asked: Sequence[int] | None = None,
    thread_cpus: Sequence[int] = (),
) -> tuple[str, ...]:
    """What did not happen as asked, each with the likely cause and the fix; () when it did."""
    out: list[str] = []
    nodes = sorted(set(policy_nodes))
    resident = sum(file_bytes_per_node.values())
    shares = _shares(file_bytes_per_node)
    if resident >= MIN_RESIDENT_BYTES and nodes:
        if policy in ("bind", "preferred"):
            on = sum(shares.get(n, 0.0) for n in nodes)
            if on < BIND_MIN_SHARE:
                out.append(f"memory_policy = {policy} to node {','.join(map(str, nodes))}, but "
                           f"{100 * on:.0f}% of the model's resident pages are there "
                           f"({_fmt(shares)}): {_cause(fs_type, mmap, policy, nodes)}")  # fmt: skip
        elif policy == "interleave" and len(nodes) > 1:
            even = 1.0 / len(nodes)
            low = [n for n in nodes if shares.get(n, 0.0) < even * INTERLEAVE_MIN_SHARE]
            if low:
                out.append(f"memory_policy = interleave over nodes {','.join(map(str, nodes))}, "
                           f"but the model's pages are {_fmt(shares)}: {_cause(fs_type, mmap, policy, nodes)}")  # fmt: skip
    if cpus_asked and thread_cpus:
        outside = sorted(set(thread_cpus) - set(cpus_asked))
        if outside:
            out.append(f"engine threads may run on CPUs outside the profile's set "
                       f"({','.join(map(str, outside[:16]))}{'...' if len(outside) > 16 else ''}): "
                       "llama.cpp's numa = distribute/isolate re-pin its threads to whole "
                       "nodes; use numa = \"numactl\" (or \"disabled\") to keep rigtui's pinning")  # fmt: skip
    return tuple(out)
