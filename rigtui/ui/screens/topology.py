"""Topology: sockets → NUMA nodes (distances) → L3 domains → cores/threads, DIMMs per channel,
GPUs on their node — the `lstopo` picture as a keyboard-navigable tree."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from rigtui.model.topology import Topology
from rigtui.ui.fmt import escape, gib, human_bytes, short_cpu_list
from rigtui.ui.panels import host_line
from rigtui.ui.screens.base import RigScreen


def _distances(topo: Topology, node_id: int) -> str:
    node = topo.node(node_id)
    if node is None or not node.distances:
        return "distances ?"
    return "dist " + " ".join(f"{d}" for _, d in sorted(node.distances.items()))


def _cores_label(topo: Topology, core_indices: list[int]) -> str:
    cores = [topo.cores[i] for i in core_indices if i < len(topo.cores)]
    threads = sum(len(c.cpus) for c in cores)
    cpus = short_cpu_list(c for core in cores for c in core.cpus)
    return f"{len(cores)} cores / {threads} threads: cpus {cpus}"


def build_tree(tree: Tree, topo: Topology) -> None:
    root = tree.root
    root.set_label(f"Machine · {gib(topo.memory.total_bytes)} GiB · {len(topo.cores)} cores")
    l3_of_cpu = {c.id: c.l3 for c in topo.cpus}
    small = len(topo.cores) <= 32  # small machines open fully; big ones stay readable
    for sock in topo.sockets:
        s_node = root.add(
            f"Socket {sock.id} · {escape(sock.model or topo.cpu.model_name or '?')} · "
            f"{sock.cores} cores · {sock.dies} die(s)"
            + (f" · {sock.numa_mode}" if sock.numa_mode else ""),
            expand=True,
        )
        for nid in sock.nodes:
            node = topo.node(nid)
            if node is None:
                continue
            mem = f"{gib(node.mem_total_bytes)} GiB" if node.mem_total_bytes else "memory ?"
            kind = " (memory only)" if node.kind != "cpu" else ""
            n_node = s_node.add(
                f"NUMA node {nid}{kind} · {mem} · {_distances(topo, nid)}"
                + (f" · {escape(node.note)}" if node.note else ""),
                expand=True,
            )
            by_l3: dict[int | None, list[int]] = {}
            for core in topo.cores:
                if core.socket == sock.id and core.node == nid:
                    by_l3.setdefault(l3_of_cpu.get(core.cpus[0]) if core.cpus else None, []).append(
                        core.index
                    )
            for l3, core_ids in sorted(by_l3.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
                dom = topo.l3_domains[l3] if l3 is not None and l3 < len(topo.l3_domains) else None
                size = human_bytes(dom.size_bytes) if dom and dom.size_bytes else "?"
                label = f"L3 #{l3} {size}" if l3 is not None else "L3 unknown"
                l_node = n_node.add(f"{label} · {_cores_label(topo, core_ids)}", expand=small)
                for ci in core_ids:
                    core = topo.cores[ci]
                    kind_txt = f" {core.kind}-core" if core.kind else ""
                    l_node.add_leaf(
                        f"core {core.core_id}{kind_txt} · threads {', '.join(map(str, core.cpus))}"
                    )
            for gpu in topo.gpus:
                if gpu.numa_node == nid:
                    n_node.add_leaf(
                        f"GPU {gpu.index} · {escape(gpu.name or '?')} · {gpu.pci_address}"
                    )
    mem = topo.memory
    m_node = root.add(
        f"Memory · {mem.populated_channels or '?'} channels populated · "
        f"{mem.speed_mts or '?'} MT/s · {mem.theoretical_bandwidth_gbs or '?'} GB/s "
        f"({escape(mem.source)})",
        expand=True,
    )
    if not mem.dimms:
        m_node.add_leaf(escape(mem.hint or "DIMMs unknown (needs SMBIOS: sudo rigtui probe)"))
    by_channel: dict[tuple[int | None, str | None], list] = {}
    for d in mem.dimms:
        by_channel.setdefault((d.socket, d.channel), []).append(d)
    for (sock_id, channel), dimms in sorted(
        by_channel.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1] or "")
    ):
        where = f"socket {sock_id if sock_id is not None else '?'}"
        where += f" channel {channel}" if channel else " (channel not reported)"
        c_node = m_node.add(where, expand=small)
        for d in dimms:
            if d.populated:
                c_node.add_leaf(
                    f"{escape(d.locator or '?')}: {human_bytes(d.size_bytes)} {d.type or ''} "
                    f"{d.configured_speed_mts or d.speed_mts or '?'} MT/s "
                    f"{escape(d.manufacturer or '')} {escape(d.part_number or '')}".rstrip()
                )
            else:
                c_node.add_leaf(f"{escape(d.locator or '?')}: empty")
    orphans = [g for g in topo.gpus if g.numa_node is None or topo.node(g.numa_node) is None]
    if orphans:
        g_node = root.add("GPUs (no NUMA node reported)", expand=True)
        for gpu in orphans:
            g_node.add_leaf(f"GPU {gpu.index} · {escape(gpu.name or '?')} · {gpu.pci_address}")
    if not topo.gpus:
        root.add_leaf("no GPUs")


class TopologyScreen(RigScreen):
    BINDINGS = [
        Binding("e", "expand_all", "Expand", tooltip="Expand the whole tree"),
        Binding("w", "collapse_all", "Collapse", tooltip="Collapse to sockets"),
    ]

    def compose(self) -> ComposeResult:
        services = self.rig.services
        yield Static(
            host_line(self.rig.topology, services.mode, services.mode_detail), id="host-line"
        )
        tree: Tree[None] = Tree("Machine", id="topo-tree")
        tree.root.expand()
        build_tree(tree, self.rig.topology)
        yield tree
        yield Footer(compact=True)

    def action_expand_all(self) -> None:
        self.query_one(Tree).root.expand_all()

    def action_collapse_all(self) -> None:
        tree = self.query_one(Tree)
        for child in tree.root.children:
            _collapse(child)


def _collapse(node: TreeNode) -> None:
    for child in node.children:
        _collapse(child)
    node.collapse()
