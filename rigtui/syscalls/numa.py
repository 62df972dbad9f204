"""set_mempolicy(2) / get_mempolicy(2) through ctypes (glibc has no wrapper; libnuma may be absent).

The policy is per thread and inherited by threads and children created afterwards, so set it
before starting threads (the engine worker does it before importing llama_cpp). It places new
anonymous pages and page-cache pages the process faults in (llama.cpp maps the model MAP_SHARED;
mbind(2) on such a mapping does not move page-cache pages, so the process policy set here, or
`use_mmap = false`, is what places the weights).

Shell equivalent: `numactl --interleave=0,1 CMD`, `numactl --membind=0 CMD`, `numactl --show`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Iterable

# include/uapi/linux/mempolicy.h
MPOL_DEFAULT = 0
MPOL_PREFERRED = 1
MPOL_BIND = 2
MPOL_INTERLEAVE = 3
MPOL_LOCAL = 4
MPOL_PREFERRED_MANY = 5
MPOL_WEIGHTED_INTERLEAVE = 6

MODES = {"default": MPOL_DEFAULT, "preferred": MPOL_PREFERRED, "bind": MPOL_BIND,
         "interleave": MPOL_INTERLEAVE}  # fmt: skip
_MODE_NAMES = {
    MPOL_DEFAULT: "default",
    MPOL_PREFERRED: "preferred",
    MPOL_BIND: "bind",
    MPOL_INTERLEAVE: "interleave",
    MPOL_LOCAL: "local",
    MPOL_PREFERRED_MANY: "preferred-many",
    MPOL_WEIGHTED_INTERLEAVE: "weighted-interleave",
}

# (get_mempolicy, set_mempolicy) syscall numbers per machine (arch/*/entry/syscalls tables)
_SYSCALLS = {
    "x86_64": (239, 238),
    "i386": (275, 276),
    "i686": (275, 276),
    "aarch64": (236, 237),  # asm-generic table
    "riscv64": (236, 237),
    "loongarch64": (236, 237),
    "ppc64le": (260, 261),
    "ppc64": (260, 261),
    "s390x": (269, 270),
}

_BITS_PER_WORD = ctypes.sizeof(ctypes.c_ulong) * 8
# The kernel refuses get_mempolicy masks smaller than nr_node_ids; 1024 = MAX_NUMNODES with
# NODES_SHIFT=10, the largest distro kernels build with.
_MIN_MASK_BITS = 1024


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _numbers() -> tuple[int, int]:
    machine = platform.machine()
    nums = _SYSCALLS.get(machine)
    if nums is None:
        raise OSError(
            0,
            f"set_mempolicy: no syscall number known for {machine}; "
            'run the engine under `numactl` instead and set memory_policy = "default"',
        )
    return nums


def _mask_bits(nodes: Iterable[int] = ()) -> int:
    top = max(nodes, default=0) + 1
    bits = max(_MIN_MASK_BITS, top)
    return -(-bits // _BITS_PER_WORD) * _BITS_PER_WORD


def _make_mask(nodes: Iterable[int], nbits: int) -> ctypes.Array:
    words = (ctypes.c_ulong * (nbits // _BITS_PER_WORD))()
    for n in nodes:
        words[n // _BITS_PER_WORD] |= 1 << (n % _BITS_PER_WORD)
    return words


def _online_nodes() -> str:
    try:
        with open("/sys/devices/system/node/online") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def set_mempolicy(mode: str, nodes: Iterable[int] = ()) -> None:
    """Set the calling thread's NUMA memory policy. `mode`: default|interleave|bind|preferred.

    `nodes` is ignored for "default"; "preferred" takes exactly one node. Raises ValueError for a
    bad mode or node list, OSError (with the errno and what to do) when the kernel refuses.
    """
    if mode not in MODES:
        raise ValueError(f"memory policy {mode!r}: use one of {', '.join(MODES)}")
    node_list = sorted(set(int(n) for n in nodes))
    if any(n < 0 for n in node_list):
        raise ValueError(f"memory policy nodes {node_list}: node ids are >= 0")
    if mode == "default":
        node_list = []
    elif not node_list:
        raise ValueError(f"memory policy {mode!r} needs at least one node")
    elif mode == "preferred" and len(node_list) != 1:
        raise ValueError(f"memory policy 'preferred' takes one node, got {node_list}")
    _, nr_set = _numbers()
    nbits = _mask_bits(node_list)
    mask = _make_mask(node_list, nbits)
    libc = _libc()
    rc = libc.syscall(
        ctypes.c_long(nr_set),
        ctypes.c_int(MODES[mode]),
        mask if node_list else None,
        ctypes.c_ulong(nbits + 1 if node_list else 0),  # maxnode: the kernel counts one less
    )
    if rc != 0:
        err = ctypes.get_errno()
        what = {
            1: "not permitted (a container seccomp profile may block set_mempolicy: "
            'run with --cap-add SYS_NICE or use memory_policy = "default")',
            22: f"invalid node set {node_list} (online nodes: {_online_nodes()}; "
            "check `numactl -H` and the profile's memory_nodes)",
            38: 'the kernel has no NUMA support (CONFIG_NUMA): use memory_policy = "default"',
        }.get(err, os.strerror(err))
        raise OSError(err, f"set_mempolicy({mode}, {node_list}): {what}")


def get_mempolicy() -> tuple[str, tuple[int, ...]]:
    """The calling thread's policy: ("interleave", (0, 1)), ("default", ()), ..."""
    nr_get, _ = _numbers()
    nbits = _mask_bits()
    mask = _make_mask((), nbits)
    mode = ctypes.c_int(0)
    libc = _libc()
    rc = libc.syscall(
        ctypes.c_long(nr_get),
        ctypes.byref(mode),
        mask,
        ctypes.c_ulong(nbits),
        None,
        ctypes.c_ulong(0),
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"get_mempolicy: {os.strerror(err)} (is this kernel built with NUMA?)")
    # MPOL_F_STATIC_NODES / RELATIVE_NODES / NUMA_BALANCING flags live in the high bits
    base = mode.value & 0xFF
    nodes = tuple(i for i in range(nbits) if mask[i // _BITS_PER_WORD] >> (i % _BITS_PER_WORD) & 1)
    if base in (MPOL_DEFAULT, MPOL_LOCAL):
        nodes = ()
    return _MODE_NAMES.get(base, f"mode-{base}"), nodes
