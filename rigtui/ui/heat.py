"""Per-core load heat map of one socket, grouped by NUMA node and L3 domain (CCD/CCX).

One cell per physical core (the mean of its hardware threads) while the socket fits its panel;
on wide sockets (a 96-core EPYC in NPS1 has 12 CCDs on one node) each L3 domain collapses to one
cell holding its mean, followed by the node's mean and busiest core: a 2 x 192-core box stays at
a few lines per socket instead of 384 tiny bars. Pure: topology + loads in, rows out.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigtui.model.topology import Topology
from rigtui.ui.fmt import load_glyph, load_level, mean


@dataclass(frozen=True)
class HeatCell:
    glyph: str
    level: str  # fmt.load_level: none | idle | low | mid | high


@dataclass(frozen=True)
class HeatRow:
    label: str  # "n0" or "n0 L3#2"
    groups: tuple[tuple[HeatCell, ...], ...]  # one tuple per L3 domain (or one summary cell each)
    summary: str  # "avg 12% max 97%"
    summarised: bool  # True when each group is one cell for a whole L3 domain


def core_loads(topology: Topology, per_cpu: dict[int, float]) -> dict[int, float | None]:
    """core index -> mean load of its online threads (None when no thread was sampled)."""
    return {core.index: mean(per_cpu.get(c) for c in core.cpus) for core in topology.cores}


def _node_groups(topology: Topology, socket_id: int, node_id: int | None) -> list[list[int]]:
    """Core indices of a node in the socket, split by L3 domain, in core order."""
    by_l3: dict[int | None, list[int]] = {}
    l3_of_cpu = {c.id: c.l3 for c in topology.cpus}
    for core in topology.cores:
        if core.socket != socket_id or core.node != node_id:
            continue
        l3 = l3_of_cpu.get(core.cpus[0]) if core.cpus else None
        by_l3.setdefault(l3, []).append(core.index)
    return [by_l3[k] for k in sorted(by_l3, key=lambda k: (k is None, k if k is not None else 0))]


def socket_heat(
    topology: Topology, socket_id: int, per_cpu: dict[int, float], width: int
) -> list[HeatRow]:
    """Rows for one socket, fitted to `width` columns of text."""
    loads = core_loads(topology, per_cpu)
    node_ids: list[int | None] = sorted(
        {core.node for core in topology.cores if core.socket == socket_id},
        key=lambda n: (n is None, n if n is not None else 0),
    )
    rows: list[HeatRow] = []
    for node_id in node_ids:
        groups = _node_groups(topology, socket_id, node_id)
        all_loads = [loads.get(i) for g in groups for i in g]
        avg = mean(all_loads)
        busiest = max((v for v in all_loads if v is not None), default=None)
        summary = (
            "no data" if avg is None else f"avg {avg:3.0f}% max {busiest:3.0f}%"  # type: ignore[str-format]
        )
        label = f"n{node_id}" if node_id is not None else "n?"
        cells_needed = sum(len(g) for g in groups) + len(groups) - 1
        room = width - len(label) - 1 - len(summary) - 1
        if cells_needed <= room:
            rows.append(
                HeatRow(
                    label,
                    tuple(
                        tuple(
                            HeatCell(load_glyph(loads.get(i)), load_level(loads.get(i))) for i in g
                        )
                        for g in groups
                    ),
                    summary,
                    False,
                )
            )
            continue
        # Too wide for one line: one cell per L3 domain (its mean); with no L3 domains known,
        # one cell per run of adjacent cores sized to fit.
        if len(groups) == 1:
            flat = groups[0]
            step = max(1, -(-len(flat) // max(1, room)))
            groups = [flat[i : i + step] for i in range(0, len(flat), step)]
        cells = []
        for g in groups:
            v = mean(loads.get(i) for i in g)
            cells.append((HeatCell(load_glyph(v), load_level(v)),))
        rows.append(HeatRow(label, tuple(cells), summary, True))
    return rows
