"""Checks about the memory system: channels and DIMM speeds, NUMA layout and balancing, THP, and
the links between nodes as `rigtui bench mem` measured them.

Inputs come from the probed Topology (SMBIOS type 17 via the memory probe, `numactl -H`'s files,
/sys/kernel/mm/transparent_hugepage, /proc/sys/kernel/numa_balancing) and the cached bench.
"""

from __future__ import annotations

from rigtui.analysis.checks_common import (
    F_CPUINFO,
    F_NODES,
    F_NUMA_BALANCING,
    F_THP,
    F_THP_DEFRAG,
    check,
    gib,
    reason,
)
from rigtui.analysis.membench_notes import latency_notes, matrix_notes
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
    estimated = (mem.hint or "").startswith("channels estimated")
    if estimated:
        ev.append(("channels", "estimated: DIMM locators do not name channels (1 DIMM/channel)"))
    if not platform:
        return check(
            cid,
            title,
            "unknown",
            f"{shown} populated; the CPU is not in rigtui's platform table, so empty channels "
            "cannot be told",
            ev,
            why,
            "compare with the CPU's channel count in its datasheet (populate every channel)",
        )
    what = f"{shown} of {platform}" + (" (estimated from the DIMM count)" if estimated else "")
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


def numa_mode(top: Topology, ctx: CheckContext | None = None) -> Check:
    title, cid = "NUMA topology mode", "numa_mode"
    why = (
        "Each NUMA node is a group of memory channels: profiles bind or interleave memory and "
        "pin threads per node, so the node layout decides what placement can do. No mode is "
        "right for everything: it depends on running one instance or one model per node."
    )
    ctx = ctx or CheckContext()
    cpu_nodes = [n for n in top.nodes if n.kind == "cpu" and n.cpus]
    memonly = [n for n in top.nodes if not n.cpus]
    nomem = [n for n in top.nodes if n.cpus and n.mem_total_bytes == 0]
    modes = sorted({s.numa_mode for s in top.sockets if s.numa_mode})
    counts = [len([n for n in s.nodes if top.node(n) and top.node(n).cpus]) for s in top.sockets]
    if len(set(counts)) == 1:
        per_socket = f"{counts[0]} per socket"  # the usual case: short on an 8-socket box
    else:
        per_socket = ", ".join(
            f"socket {s.id}: {c} node(s)" for s, c in zip(top.sockets, counts, strict=True)
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
    if not top.sockets:
        return check(
            cid,
            title,
            "unknown",
            "no sockets read: CPU topology not readable",
            ev,
            why,
            "run `rigtui probe` to see which files under sys/devices/system were unreadable",
        )
    meaning = _mode_meaning(top)
    if meaning:
        ev.append(("what it means", meaning))
    summary = f"{len(top.sockets)} socket(s), {len(cpu_nodes)} CPU node(s) ({per_socket})"
    if modes:
        summary += f", {'/'.join(modes)}"
    if memonly:
        summary += f"; memory-only node(s) {[n.id for n in memonly]} (CXL/HBM/GPU memory)"
    verdict, problem, fix = _mode_verdict(top, counts, ctx)
    ev.append(("fits", verdict))
    if ctx.profile_numa is not None:
        ev.append(("the profile runs", _profile_scope_text(ctx)))
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
    if problem:
        return check(cid, title, "warn", f"{summary}: {problem}", ev, why, fix)
    return check(cid, title, "pass", f"{summary}: {verdict}", ev, why)


def memory_links(top: Topology, ctx: CheckContext | None = None) -> Check:
    """The node x node read and latency matrices of the cached `rigtui bench mem`: a pair far
    off its row is a link (xGMI/UPI width or speed, a die-to-die path) or a node short of DIMMs."""
    title, cid = "Links between NUMA nodes (measured)", "memory_links"
    why = ("A model interleaved or spread over nodes reads across the links between them every "
           "token: one slow pair (a narrow xGMI/UPI link, a node short of DIMMs) holds back "
           "every thread that waits on it at the next barrier.")  # fmt: skip
    ctx = ctx or CheckContext()
    nodes_with_cpus = [n for n in top.nodes if n.cpus]
    if len(top.nodes) < 2:
        return check(cid, title, "pass", "one NUMA node: no links between nodes",
                     [(F_NODES, f"{len(top.nodes)} node(s)")], why)  # fmt: skip
    res = ctx.membench
    if res is None or not (res.matrix or res.latency):
        live = "" if ctx.live else " (a captured tree: it measures the live machine only)"
        return check(cid, title, "unknown", f"not measured{live}",
                     [(F_NODES, f"{len(top.nodes)} nodes, {len(nodes_with_cpus)} with CPUs")],
                     why, "`rigtui bench mem` measures the read and latency matrices "
                     "(a minute or two; the TUI's Bench screen: b, then m)")  # fmt: skip
    notes = matrix_notes(res.nodes, res.matrix, top) + latency_notes(res.latency, top)
    flagged = [n for n in notes if "far below" in n or "far above" in n]
    ev: list[tuple[str, object]] = [("rigtui bench mem", n) for n in notes]
    local = [c.ns for c in res.latency if c.cpu_node == c.mem_node and c.ns]
    remote = [c.ns for c in res.latency if c.cpu_node != c.mem_node and c.ns]
    parts = [f"{len(res.matrix)} remote read cells"] if res.matrix else []
    if local and remote:
        parts.append(f"latency {min(local):.0f}-{max(local):.0f} ns local, "
                     f"{min(remote):.0f}-{max(remote):.0f} ns remote")  # fmt: skip
    if flagged:
        return check(cid, title, "warn", f"{len(flagged)} node pair(s) far off their row: "
                     + flagged[0].split(":")[0], ev, why,
                     "look at the cause named for each pair: the BIOS's xGMI/UPI link settings, "
                     "the DIMMs of the node named (`rigtui probe`), then `rigtui bench mem` "
                     "again")  # fmt: skip
    return check(cid, title, "pass", "no node pair far off its row: " + ", ".join(parts), ev, why)


def _profile_scope_text(ctx: CheckContext) -> str:
    where = (f"confined to node(s) {', '.join(map(str, ctx.profile_nodes))}"
             if ctx.profile_nodes else "over every node")  # fmt: skip
    return (f"one model {where} (numa = {ctx.profile_numa!r}, memory_policy = "
            f"{ctx.profile_memory_policy!r})")  # fmt: skip


def _mode_verdict(top: Topology, counts: list[int],
                  ctx: CheckContext) -> tuple[str, str | None, str | None]:  # fmt: skip
    """(what this NUMA mode fits, what is wrong with it for the profile given or None, fix)."""
    n_sockets = len(top.sockets)
    per = counts[0] if len(set(counts)) == 1 else max(counts)
    one_model_per_node = ctx.profile_numa == "isolate" or bool(ctx.profile_nodes)
    over_all = ctx.profile_numa is not None and not one_model_per_node
    if n_sockets > 1 and len(top.nodes) == 1:
        verdict = ("the sockets are interleaved into one node (NPS0 / node interleaving): right "
                   "for ONE instance over every socket, as the dual-Genoa build notes recommend "
                   "(the hardware spreads every page over all channels, nothing to place), but "
                   "no model can be kept on one socket's memory")  # fmt: skip
        if one_model_per_node:
            return verdict, ("the profile keeps its model on some nodes, but this mode gives "
                             "one node for the whole machine: nothing is isolated"), (
                "for one model per socket set NUMA nodes per socket = NPS1 (AMD) or Node "
                "Interleaving = Disabled (Intel) in the BIOS; for one model per node NPS2/4 or "
                "SNC2/3 (a pre-2008 front-side-bus machine has no such option)")  # fmt: skip
        return verdict, None, None
    if len(top.nodes) == 1:
        return "one node: nothing to place, every policy is the same", None, None
    if per <= 1:
        verdict = ("one node per socket (NPS1 / SNC off): one instance over every socket "
                   "(interleave: every other read crosses the socket link) or one model per "
                   "socket (bind: each reads its own channels)")  # fmt: skip
    else:
        verdict = (f"{per} nodes per socket (NPS{per} / SNC{per}): made for one model per node "
                   "(isolate: each reads its own channels, the fastest total tok/s); one "
                   "instance must interleave over the socket's nodes, where NPS1 does the "
                   "same with less to get wrong")  # fmt: skip
    if over_all and ctx.profile_memory_policy in ("default", None):
        return verdict, ("the profile spreads one model over the nodes but sets no memory "
                         "policy: the pages land on the node that loads them (first touch), "
                         "and every other node reads them remotely"), (
            'set memory_policy = "interleave" (with numa = "distribute"), or bind the model '
            "to one node per instance (node0-isolate, node1-isolate)")  # fmt: skip
    return verdict, None, None


def _mode_meaning(top: Topology) -> str | None:
    """One line on what the nodes-per-socket split means for placement (NPS/SNC explained)."""
    per = {s.id: len([n for n in s.nodes if top.node(n) and top.node(n).cpus]) for s in top.sockets}
    counts = set(per.values())
    if len(counts) != 1 or 0 in counts:
        return None
    n = counts.pop()
    chans = top.memory.platform_channels_per_socket
    if n == 1:
        return (
            "one node per socket: each socket's memory is interleaved over all its channels; "
            "a model bound to one node streams from that socket's channels only"
        )
    share = f" (about {chans // n} of {chans} channels each)" if chans and chans % n == 0 else ""
    return (
        f"{n} nodes per socket: each node owns 1/{n} of the socket's channels{share}; "
        f"a model bound to one node gets 1/{n} of the socket's bandwidth, so interleave it "
        "over the socket's nodes (numa = distribute, memory_policy = interleave)"
    )


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
            f"numa_balancing is {value} on a machine with {len(top.nodes)} NUMA nodes",
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


def memory_fabric(top: Topology) -> Check:
    """The fabric cap (AMD: CCDs x 32 B x FCLK) against the channels: a part with few CCDs
    cannot read what its channels allow, however they are populated."""
    mem = top.memory
    title, cid = "Fabric vs channels", "memory_fabric"
    why = (
        "On AMD Zen the cores read memory through one link per core die (CCD) to the I/O die, "
        "32 bytes per fabric clock: a socket with few CCDs tops out below its channels' "
        "bandwidth, and tok/s with it."
    )
    limit = mem.fabric
    if limit is None:
        status = "pass" if mem.dram_bandwidth_per_socket_gbs else "unknown"
        return check(cid, title, status, mem.fabric_note or "no fabric limit modelled",
                     [(F_CPUINFO, top.cpu.model_name)], why,
                     "measure what the memory delivers: `rigtui bench mem`")  # fmt: skip
    dram = dict(mem.dram_bandwidth_per_socket_gbs)
    ccds = ", ".join(f"socket {s}: {n}" for s, n in sorted(limit.ccds_per_socket.items()))
    ev: list[tuple[str, object]] = [
        (F_CPUINFO, top.cpu.model_name),
        ("/sys/devices/system/cpu/cpu*/cache/index3 (L3 domains -> CCDs)", ccds),
        (f"FCLK ({limit.basis}: the generation's default)", f"{limit.fclk_mhz:.0f} MHz"),
        ("fabric cap per socket (CCDs x 32 B x FCLK)",
         ", ".join(f"socket {s}: {c:.1f} GB/s" for s, c in sorted(limit.cap_per_socket_gbs.items()))),
        (f"channels per socket ({mem.source})",
         ", ".join(f"socket {s}: {b:.1f} GB/s" for s, b in sorted(dram.items())) or None),
    ]  # fmt: skip
    if not dram:
        return check(cid, title, "unknown",
                     f"fabric cap {max(limit.cap_per_socket_gbs.values()):.1f} GB/s per socket "
                     "(estimated); the channels' figure is not known to compare with", ev, why,
                     "run `sudo rigtui check` once so the DIMMs can be read")  # fmt: skip
    capped = {s: (limit.cap_per_socket_gbs[s], bw) for s, bw in dram.items()
              if mem.limited_by.get(s) == "fabric"}  # fmt: skip
    if not capped:
        return check(cid, title, "pass",
                     f"{ccds.split(': ')[-1]} CCDs per socket pull more than the channels "
                     "deliver: the channels are the limit", ev, why)  # fmt: skip
    s, (cap, bw) = min(capped.items(), key=lambda kv: kv[1][0] / kv[1][1])
    return check(
        cid, title, "warn",
        f"{limit.ccds_per_socket[s]} CCDs x 32 B x {limit.fclk_mhz / 1000:g} GHz = {cap:.1f} GB/s "
        f"per socket (estimated) against {bw:.1f} GB/s from the channels: the cores can read "
        f"only {cap / bw:.0%} of it",
        ev, why + (f" {limit.note.split('; ', 1)[1]}." if "; " in limit.note else ""),
        "a part with more CCDs (EPYC 9004/9005: 8 or more for 12 channels) lifts the cap; on "
        "Threadripper and Ryzen a higher FCLK in the BIOS does; measure the real figure with "
        "`rigtui bench mem`",
    )  # fmt: skip
