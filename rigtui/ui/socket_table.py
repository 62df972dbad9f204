"""The dashboard's compact socket view: one line per socket, for machines whose socket panels do
not fit the terminal (an 8-socket box at 80x24). Each line carries the socket's figures in the
panels' order: a per-core load strip and its mean, memory traffic against the ceiling, memory in
use on its nodes, its hottest sensor. Renders the samples it is handed and reads nothing."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from rigtui.model.sample import Sample
from rigtui.model.topology import Topology
from rigtui.ui.fmt import load_glyph, load_level, mean, spark
from rigtui.ui.heat import core_loads
from rigtui.ui.panels import (
    LEVEL_STYLE,
    node_memory,
    part,
    set_text,
    socket_sensors,
    socket_traffic,
    traffic_ceiling,
    traffic_total,
)

STRIP = 12  # load cells per socket: each the mean of its share of the socket's cores


def load_strip(loads: Sequence[float | None], cells: int = STRIP) -> list[float | None]:
    """`loads` (per core, in core order) folded to at most `cells` means."""
    if len(loads) <= cells:
        return list(loads)
    out = []
    for k in range(cells):
        part = loads[k * len(loads) // cells : (k + 1) * len(loads) // cells]
        out.append(mean(part))
    return out


class SocketTable(Vertical):
    """One line per socket (see the module docstring)."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(id="socket-table", classes="panel")
        self.topology = topology
        self.border_title = f"Sockets · {len(topology.sockets)}"

    def compose(self) -> ComposeResult:
        yield Static("", id="socket-rows")

    def update_from(self, history: Sequence[Sample]) -> None:
        width = max(40, self.content_region.width or self.size.width or 78)
        set_text(part(self, "#socket-rows"), self.rows_text(history, width))

    def rows_text(self, history: Sequence[Sample], width: int = 78) -> str:
        """The table at `width` columns: what is left after the fixed columns holds each
        socket's mean load over the samples (one column per sample, newest on the right)."""
        topo = self.topology
        sample = history[-1] if history else None
        per_cpu = dict(zip(sample.cpu.cpu_ids, sample.cpu.per_cpu, strict=False)) if sample else {}
        loads = core_loads(topo, per_cpu)
        nodes = {n.node: n for n in sample.nodes} if sample else {}
        fixed = 3 + 1 + STRIP + 5 + 1 + 15 + 1 + 13 + 1 + 6  # the columns before the history
        spark_w = width - fixed - 1
        header = (f"{'':3} {'load':<{STRIP + 5}} {'mem R+W GB/s':<15} {'mem used GiB':<13} "
                  f"{'temp':<6}" + (" load history" if spark_w >= 8 else ""))  # fmt: skip
        lines = [f"[$text-muted]{header}[/]"]
        sock_cpus = {s.id: [c.id for c in topo.cpus if c.socket == s.id] for s in topo.sockets}
        past_cpu = [dict(zip(s.cpu.cpu_ids, s.cpu.per_cpu, strict=False))
                    for s in history[-spark_w:]] if spark_w >= 8 else []  # fmt: skip
        for sock in topo.sockets:
            cores = [loads.get(c.index) for c in topo.cores if c.socket == sock.id]
            strip = "".join(f"[{LEVEL_STYLE[load_level(v)]}]{load_glyph(v)}[/]"
                            for v in load_strip(cores))  # fmt: skip
            avg = mean(cores)
            pad = " " * (STRIP - min(STRIP, len(cores)))
            load = f"{strip} {f'{avg:.0f}%' if avg is not None else '–':>4}{pad}"
            line = (f"S{sock.id:<2} {load} {self._traffic(sample, sock.id):<15} "
                    f"{self._memory(sock.nodes, nodes):<13} {self._temp(sample, sock.id)}")  # fmt: skip
            if spark_w >= 8:
                cpus = sock_cpus[sock.id]
                past = [mean(loads_then.get(c) for c in cpus) for loads_then in past_cpu]
                line += f" [$text-muted]{spark(past, spark_w, 100.0)}[/]"
            lines.append(line)
        return "\n".join(lines)

    def _traffic(self, sample: Sample | None, socket_id: int) -> str:
        t = socket_traffic(sample, socket_id)
        total = traffic_total(t)
        if total is None:
            return "–"
        ceiling = traffic_ceiling(self.topology, t, socket_id)
        pct = f" {100 * total / ceiling:.0f}%" if ceiling else ""
        return f"{total:.1f}{pct}"

    def _memory(self, node_ids: Sequence[int], nodes: dict) -> str:
        total = used = 0
        for nid in node_ids:
            known = node_memory(self.topology, nid, nodes.get(nid))
            if known is None:
                return "?"
            total, used = total + known[0], used + known[0] - known[1]
        return f"{used / 2**30:.1f}/{total / 2**30:.0f}" if total else "?"

    def _temp(self, sample: Sample | None, socket_id: int) -> str:
        temps = [s.temp_c for s in socket_sensors(self.topology, sample, socket_id)]
        return f"{max(temps):.0f}°C".ljust(6) if temps else "–".ljust(6)
