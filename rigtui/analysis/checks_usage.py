"""Checks about memory in use: swap, pressure stalls, free memory for the model, and where the
model file's page cache sits.

Inputs: /proc/meminfo (through the probed HostInfo) and the CheckContext (/proc/pressure/memory,
the model file and its per-node page placement from mincore + move_pages).
"""

from __future__ import annotations

from rigtui.analysis.checks_common import F_MEMINFO, F_PSI, check, gib
from rigtui.model.analysis import Check, CheckContext
from rigtui.model.topology import Topology

MiB = 1 << 20


def _no_model(cid: str, title: str, ev: list, why: str) -> Check:
    """The model-dependent checks without a model: unknown, and how to give one."""
    return check(
        cid, title, "unknown", "no model given", ev, why,
        "pass --model MODEL.gguf or --profile NAME",
    )  # fmt: skip


def swap(top: Topology) -> Check:
    title, cid = "Swap in use", "swap"
    why = "A swapped-out page of weights or KV cache costs a disk read on the next token."
    total, free = top.host.swap_total_bytes, top.host.swap_free_bytes
    ev = [(F_MEMINFO + " SwapTotal", total), (F_MEMINFO + " SwapFree", free)]
    if total is None or free is None:
        return check(cid, title, "unknown", "swap figures not readable", ev, why, "free -b")
    used = total - free
    if total == 0:
        return check(cid, title, "pass", "no swap configured", ev, why)
    if used >= 64 * MiB:
        return check(
            cid,
            title,
            "warn",
            f"{gib(used)} of swap in use",
            ev,
            why,
            "free memory (stop other jobs, smaller model or context), then "
            "`sudo swapoff -a && sudo swapon -a` to pull pages back; or "
            "`sudo sysctl -w vm.swappiness=1`",
        )
    return check(cid, title, "pass", f"swap {gib(total)}, {used // MiB} MiB used", ev, why)


def memory_pressure(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Memory pressure", "memory_pressure"
    why = "Tasks stalled on memory (reclaim, compaction, swap-in) mean the model's pages are being evicted."
    some, full = ctx.psi_memory_some_avg10, ctx.psi_memory_full_avg10
    ev = [(F_PSI + " some avg10", some), (F_PSI + " full avg10", full)]
    if not ctx.live:
        return check(
            cid,
            title,
            "unknown",
            "pressure is a live figure: not this machine (--root)",
            ev,
            why,
            "run `rigtui check` on the machine itself",
        )
    if some is None:
        return check(
            cid,
            title,
            "unknown",
            "no pressure stall information (PSI)",
            ev,
            why,
            "boot with psi=1 (kernel 4.20+ with CONFIG_PSI)",
        )
    if (full or 0) >= 5:
        return check(
            cid,
            title,
            "fail",
            f"tasks fully stalled on memory {full:.1f}% of the last 10 s",
            ev,
            why,
            "free memory: stop other jobs or use a smaller model/context",
        )
    if some >= 1:
        return check(
            cid,
            title,
            "warn",
            f"tasks stalled on memory {some:.1f}% of the last 10 s",
            ev,
            why,
            "free memory: stop other jobs or use a smaller model/context",
        )
    return check(cid, title, "pass", f"no memory pressure (some {some:.1f}%)", ev, why)


def free_memory(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Free memory for the model", "free_memory"
    why = "A model that does not fit in free memory is re-read from disk as pages are evicted."
    avail, total = top.host.mem_available_bytes, top.memory.total_bytes
    if total is None:
        total = sum(n.mem_total_bytes or 0 for n in top.nodes) or None
    ev = [
        (ctx.model_source or "model", ctx.model_path),
        ("model bytes", ctx.model_bytes),
        (F_MEMINFO + " MemAvailable", avail),
        ("memory total", total),
    ]
    if not ctx.model_bytes:
        return _no_model(cid, title, ev, why)
    need = ctx.model_bytes
    biggest = max((n.mem_total_bytes or 0 for n in top.nodes), default=0)
    if total and need > total:
        return check(
            cid,
            title,
            "fail",
            f"model needs {gib(need)}, the machine has {gib(total)}",
            ev,
            why,
            "use a smaller quantization, or offload layers to GPUs",
        )
    if avail is not None and need > avail:
        return check(
            cid,
            title,
            "warn",
            f"model needs {gib(need)}, {gib(avail)} available",
            ev,
            why,
            "stop other jobs or drop caches of other files; a smaller quant fits",
        )
    note = ""
    if len(top.nodes) > 1 and biggest and need > biggest:
        note = f"; larger than one node ({gib(biggest)}): interleave, don't bind to one node"
    if avail is None:
        return check(
            cid,
            title,
            "unknown",
            f"model needs {gib(need)}; MemAvailable unknown" + note,
            ev,
            why,
            "cat /proc/meminfo",
        )
    return check(
        cid, title, "pass", f"model needs {gib(need)}, {gib(avail)} available" + note, ev, why
    )


def model_page_cache(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Model page cache placement", "model_page_cache"
    why = (
        "llama.cpp mmaps the model: pages already cached stay on the node that first read them, "
        "so an interleaved or per-node launch still reads one node's memory."
    )
    per_node = ctx.model_page_bytes_per_node
    shown = (
        None
        if per_node is None
        else ", ".join(f"node {n}: {gib(b)}" for n, b in sorted(per_node.items())) or "none cached"
    )
    ev = [
        (ctx.model_source or "model", ctx.model_path),
        ("mincore + move_pages (resident pages per node)", shown),
    ]
    drop = (
        f"drop_caches_first = true in the profile evicts just this file before the load (no "
        f"root), as does `dd if={ctx.model_path or 'MODEL'} iflag=nocache count=0`"
    )
    if not ctx.model_path:
        return _no_model(cid, title, ev, why)
    if per_node is None:
        return check(
            cid,
            title,
            "unknown",
            ctx.model_page_reason or "placement not measured",
            ev,
            why,
            "run `rigtui check --model FILE` on the machine itself",
        )
    resident = sum(per_node.values())
    size = ctx.model_bytes or resident
    if len(top.nodes) <= 1:
        return check(
            cid, title, "pass", f"one NUMA node; {gib(resident)} of {gib(size)} cached", ev, why
        )
    if resident == 0:
        return check(cid, title, "pass", "not in the page cache: the launch places it", ev, why)
    node, top_bytes = max(per_node.items(), key=lambda kv: kv[1])
    if resident >= 0.1 * size and top_bytes >= 0.9 * resident:
        return check(
            cid,
            title,
            "warn",
            f"{gib(resident)} of the model cached, {top_bytes / resident:.0%} on node {node}",
            ev,
            why,
            drop,
        )
    return check(cid, title, "pass", f"{gib(resident)} cached, spread: {shown}", ev, why)
