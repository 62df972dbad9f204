"""What `rigtui bench mem`'s matrices say: remote:local ratios, the cells far off their row, and
the likely cause of each (a node short of DIMMs, the socket link, the path inside a socket).
Pure functions of a result and the Topology: the bench's notes and the `memory_links` check."""

from __future__ import annotations

from collections.abc import Sequence

from rigtui.model.analysis import LatencyCell, MemBandwidth
from rigtui.model.topology import Topology


def link_cause(top: Topology | None, cpu_node: int, mem_node: int) -> str:
    """The likely cause of a slow cell: a node short of memory (DIMMs missing on its channels),
    the socket link between two sockets, or the path between dies inside one."""
    if top is None:
        return "a narrow or slow link between them, or DIMMs missing on that node"
    node = top.node(mem_node)
    mine = node.mem_total_bytes if node else None
    peers = sorted(n.mem_total_bytes for n in top.nodes
                   if n.id != mem_node and n.kind == "cpu" and n.mem_total_bytes)  # fmt: skip
    if mine and peers and mine < 0.75 * peers[len(peers) // 2]:
        return (f"node {mem_node} holds {mine / (1 << 30):.0f} GiB where the other nodes hold "
                f"~{peers[len(peers) // 2] / (1 << 30):.0f}: DIMMs missing on its channels")  # fmt: skip
    a, b = top.socket_of_node(cpu_node), top.socket_of_node(mem_node)
    if a is not None and b is not None and a != b:
        vendor = (top.cpu.vendor or "").lower()
        if "amd" in vendor:
            link = ("the xGMI links between the sockets: fewer or narrower than the others' (the "
                    "BIOS's xGMI link width and speed settings, or a board with 3 links)")
        elif "intel" in vendor:
            link = "the UPI links between the sockets: fewer links to that socket, or a slower UPI speed"
        else:
            link = "the link between the sockets: its width or speed"
        return f"{link}; or DIMMs missing on node {mem_node}"
    return (f"the path between the dies inside socket {a} (SNC/NPS quadrants), or DIMMs missing "
            f"on node {mem_node}")  # fmt: skip


def matrix_notes(nodes: Sequence[MemBandwidth], cells: Sequence[MemBandwidth],
                  top: Topology | None = None) -> list[str]:  # fmt: skip
    """Remote:local per cell, and the cells far below their row's other remote cells (MLC's SNC
    matrices show two such cells among their peers), each with its likely cause."""
    local = {b.cpu_nodes[0]: b.read_gbs for b in nodes if len(b.cpu_nodes) == 1 and b.read_gbs}
    out: list[str] = []
    rows: dict[int, list[MemBandwidth]] = {}
    for c in cells:
        rows.setdefault(c.cpu_nodes[0], []).append(c)
    for cn, row in sorted(rows.items()):
        peers = sorted(c.read_gbs for c in row if c.read_gbs)
        for c in row:
            if not c.read_gbs:
                continue
            others = [v for v in peers if v != c.read_gbs] or peers
            median = others[len(others) // 2]
            if len(row) > 2 and c.read_gbs < 0.6 * median:
                out.append(f"node {cn} -> node {c.mem_nodes[0]} reads {c.read_gbs:.1f} GB/s, "
                           f"far below the row's other remote cells (~{median:.1f}): likely "
                           f"{link_cause(top, cn, c.mem_nodes[0])}")  # fmt: skip
    ratios = [f"{c.cpu_nodes[0]}->{c.mem_nodes[0]} {c.read_gbs / local[c.cpu_nodes[0]]:.2f}"
              for c in cells if c.read_gbs and local.get(c.cpu_nodes[0])]  # fmt: skip
    if ratios:
        out.append("remote:local read: " + ", ".join(ratios))
    return out


def latency_notes(cells: Sequence[LatencyCell], top: Topology | None = None) -> list[str]:
    """Remote:local latency per pair (local: the row's own node, else its quickest), and remote
    cells far slower than the row's other remote cells, with the likely cause."""
    rows: dict[int, list[LatencyCell]] = {}
    for c in cells:
        if c.ns:
            rows.setdefault(c.cpu_node, []).append(c)
    out: list[str] = []
    ratios = []
    for cn, row in sorted(rows.items()):
        own = next((c.ns for c in row if c.mem_node == cn), None) or min(c.ns or 0 for c in row)
        remote = [c for c in row if c.mem_node != cn]
        for c in remote:
            ratios.append(f"{cn}->{c.mem_node} {c.ns / own:.2f}")
            others = sorted(o.ns for o in remote if o is not c and o.ns)
            if len(others) >= 2 and c.ns > 1.6 * others[len(others) // 2]:
                out.append(f"node {cn} -> node {c.mem_node} takes {c.ns:.0f} ns, far above the "
                           f"row's other remote cells (~{others[len(others) // 2]:.0f} ns): likely "
                           f"{link_cause(top, cn, c.mem_node)}")  # fmt: skip
    if ratios:
        out.append("remote:local latency: " + ", ".join(ratios))
    return out
