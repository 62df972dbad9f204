"""Checks about memory: channels and DIMM speeds, NUMA layout and balancing, THP, swap, pressure,
free memory for the model, and where the model's page cache sits.

Inputs come from the probed Topology (SMBIOS type 17 via the memory probe, `numactl -H`'s files,
/proc/meminfo, /sys/kernel/mm/transparent_hugepage) and the CheckContext (model, page placement).
"""

from __future__ import annotations

from rigtui.analysis.checks_common import (
    F_MEMINFO,
    F_NODES,
    F_NUMA_BALANCING,
    F_PSI,
    F_THP,
    F_THP_DEFRAG,
    check,
    gib,
    reason,
)
from rigtui.model.analysis import Check, CheckContext
from rigtui.model.topology import Topology

MiB = 1 << 20


def memory_channels(top: Topology) -> Check:
    mem = top.memory
    title, cid = "Memory channels populated", "memory_channels"
    why = (
        "Token generation streams the weights from memory: bandwidth, and so tok/s, scales "
        "with the populated channels."
    )
    src = f"{mem.source} ({len([d for d in mem.dimms if d.populated])} DIMMs)"
    per_socket = dict(mem.channels_per_socket)
    platform = mem.platform_channels_per_socket
    assumed = (mem.source or "").startswith("platform")  # the platform's count, not read
    if not per_socket or assumed:
        hint = mem.hint or reason(
            mem.unknown,
            "channels_per_socket",
            "DIMM slots need root to read: run `sudo rigtui check` once",
        )
        what = "populated channels not read" + (
            f" (platform supports {platform} per socket)" if platform else ""
        )
        return check(cid, title, "unknown", what, [(src, None)], why, hint)
    shown = ", ".join(f"socket {s}: {n}" for s, n in sorted(per_socket.items()))
    ev = [(src, shown), ("platform channels per socket", platform)]
    counts = set(per_socket.values())
    if platform:
        worst = min(per_socket.values())
        if worst < platform:
            loss = 1 - worst / platform
            status = "fail" if loss >= 0.25 else "warn"
            return check(
                cid,
                title,
                status,
                f"{shown} of {platform} channels per socket: up to {loss:.0%} of the "
                f"bandwidth is missing",
                ev,
                why,
                f"populate all {platform} channels of every socket with identical DIMMs "
                "(one DIMM per channel runs fastest); see the board manual's population "
                "order",
            )
    if len(counts) > 1:
        return check(
            cid,
            title,
            "warn",
            f"sockets are populated unevenly ({shown})",
            ev,
            why,
            "populate every socket identically: the slower socket paces NUMA-split inference",
        )
    what = f"{shown}" + (f" of {platform}" if platform else " (platform's count unknown)")
    return check(cid, title, "pass", f"all channels populated: {what}", ev, why)


def dimm_speed(top: Topology) -> Check:
    mem = top.memory
    title, cid = "DIMM speed", "dimm_speed"
    why = "Bandwidth is channels x 8 bytes x MT/s: a slower (or one slow mixed) DIMM slows every channel."
    dimms = [d for d in mem.dimms if d.populated]
    configured = sorted({d.configured_speed_mts for d in dimms if d.configured_speed_mts})
    rated = sorted({d.speed_mts for d in dimms if d.speed_mts})
    if not configured:
        hint = mem.hint or "DIMM speeds need root: run `sudo rigtui check`, or install dmidecode"
        return check(
            cid,
            title,
            "unknown",
            "configured DIMM speed not known",
            [(mem.source, None)],
            why,
            hint,
        )
    ev = [
        (f"{mem.source} configured speed", "/".join(f"{s} MT/s" for s in configured)),
        (f"{mem.source} rated speed", "/".join(f"{s} MT/s" for s in rated) or None),
        ("platform max", f"{mem.platform_max_mts} MT/s" if mem.platform_max_mts else None),
    ]
    fix_bios = (
        "in the BIOS set the memory clock to the DIMMs' rated speed (AMD CBS > UMC > "
        "DDR options > Memory clock; Intel: Memory Frequency), disable any power-saving "
        "memory speed cap"
    )
    if len(configured) > 1 or len(rated) > 1:
        return check(
            cid,
            title,
            "warn",
            f"mixed DIMM speeds: configured {configured}, "
            f"rated {rated}: every channel runs at the slowest",
            ev,
            why,
            "use one DIMM part number throughout",
        )
    run = configured[0]
    if rated and run < rated[0]:
        return check(
            cid,
            title,
            "warn",
            f"DIMMs rated {rated[0]} MT/s run at {run} MT/s",
            ev,
            why,
            fix_bios + " (two DIMMs per channel also lowers the speed)",
        )
    if mem.platform_max_mts and run < mem.platform_max_mts:
        return check(
            cid,
            title,
            "warn",
            f"memory runs at {run} MT/s, below the platform's {mem.platform_max_mts} MT/s",
            ev,
            why,
            f"DIMMs rated {mem.platform_max_mts} MT/s would give "
            f"{mem.platform_max_mts / run - 1:.0%} more bandwidth",
        )
    return check(cid, title, "pass", f"all DIMMs at {run} MT/s", ev, why)


def numa_mode(top: Topology) -> Check:
    title, cid = "NUMA topology mode", "numa_mode"
    why = (
        "Each NUMA node is a group of memory channels: profiles bind or interleave memory and "
        "pin threads per node, so the node layout decides what placement can do."
    )
    cpu_nodes = [n for n in top.nodes if n.kind == "cpu" and n.cpus]
    memonly = [n for n in top.nodes if not n.cpus]
    nomem = [n for n in top.nodes if n.cpus and n.mem_total_bytes == 0]
    modes = sorted({s.numa_mode for s in top.sockets if s.numa_mode})
    per_socket = ", ".join(
        f"socket {s.id}: {len([n for n in s.nodes if top.node(n) and top.node(n).cpus])} node(s)"
        for s in top.sockets
    )
    ev = [
        (
            F_NODES,
            f"{len(top.nodes)} node(s): "
            + ", ".join(
                f"node{n.id} {len(n.cpus)} CPUs {gib(n.mem_total_bytes)}" for n in top.nodes
            ),
        ),
        ("inferred mode", ", ".join(modes) or None),
    ]
    summary = f"{len(top.sockets)} socket(s), {len(cpu_nodes)} CPU node(s) ({per_socket})"
    if modes:
        summary += f", {'/'.join(modes)}"
    if memonly:
        summary += f"; memory-only node(s) {[n.id for n in memonly]} (CXL/HBM/GPU memory)"
    if len(top.sockets) > 1 and len(top.nodes) == 1:
        return check(
            cid,
            title,
            "warn",
            summary + ": the sockets are interleaved into one node",
            ev,
            why,
            "in the BIOS turn socket/node interleaving off (AMD: NUMA nodes per "
            "socket = NPS1 or more; Intel: Node Interleaving = Disabled) so the OS sees "
            "one node per socket and remote accesses can be avoided",
        )
    if nomem:
        return check(
            cid,
            title,
            "warn",
            summary + f"; node(s) {[n.id for n in nomem]} have CPUs but no memory",
            ev,
            why,
            "populate memory on every socket/node, or pin to nodes that have memory",
        )
    return check(cid, title, "pass", summary, ev, why)


def numa_balancing(top: Topology) -> Check:
    title, cid = "Automatic NUMA balancing", "numa_balancing"
    why = (
        "The kernel unmaps pages to sample accesses and migrates them, fighting llama.cpp's "
        "own placement and costing page faults during generation."
    )
    value = top.host.numa_balancing
    ev = [(F_NUMA_BALANCING, value)]
    if len(top.nodes) <= 1:
        return check(cid, title, "pass", "one NUMA node: balancing has nothing to do", ev, why)
    if value is None:
        return check(
            cid,
            title,
            "unknown",
            reason(top.host.unknown, "numa_balancing", "numa_balancing not readable"),
            ev,
            why,
            "cat " + F_NUMA_BALANCING,
        )
    if value:
        return check(
            cid,
            title,
            "warn",
            f"numa_balancing is {value} on a {len(top.nodes)}-node machine",
            ev,
            why,
            "sudo sysctl -w kernel.numa_balancing=0 (persist: "
            "echo kernel.numa_balancing=0 | sudo tee /etc/sysctl.d/90-numa.conf)",
        )
    return check(cid, title, "pass", "numa_balancing is off", ev, why)


def transparent_hugepages(top: Topology) -> Check:
    title, cid = "Transparent huge pages", "transparent_hugepages"
    why = (
        "With THP 'always', faults may stall in compaction under memory pressure and "
        "khugepaged competes for CPU; 'madvise' lets llama.cpp opt in where it helps."
    )
    mode, defrag = top.host.thp_enabled, top.host.thp_defrag
    ev = [(F_THP, mode), (F_THP_DEFRAG, defrag)]
    if mode is None:
        return check(
            cid,
            title,
            "unknown",
            reason(
                top.host.unknown, "thp_enabled", "THP setting not readable (kernel without THP?)"
            ),
            ev,
            why,
            "cat " + F_THP,
        )
    if mode == "always":
        return check(
            cid,
            title,
            "warn",
            f"THP is 'always' (defrag {defrag or '?'})",
            ev,
            why,
            f"echo madvise | sudo tee {F_THP} (persist: transparent_hugepage=madvise on "
            "the kernel command line)",
        )
    return check(cid, title, "pass", f"THP is '{mode}'", ev, why)


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
        return check(
            cid,
            title,
            "unknown",
            "no model given",
            ev,
            why,
            "pass --model MODEL.gguf or --profile NAME",
        )
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
        f"sync; echo 1 | sudo tee /proc/sys/vm/drop_caches (or evict only this file: "
        f"dd if={ctx.model_path or 'MODEL'} iflag=nocache count=0) before a NUMA launch"
    )
    if not ctx.model_path:
        return check(
            cid,
            title,
            "unknown",
            "no model given",
            ev,
            why,
            "pass --model MODEL.gguf or --profile NAME",
        )
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
