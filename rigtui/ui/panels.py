"""Dashboard panels: one per socket, one per GPU, and the host line (the engine panel is in
`rigtui.ui.engine_panel`).

Each panel is handed snapshots (`update_from(...)`) by the dashboard screen and renders them;
none of them reads anything. Text uses Textual content markup with theme variables
(`$success`, `$warning`, `$error`), so themes and NO_COLOR apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from rigtui.model.engine import EngineState
from rigtui.model.sample import GpuSample, MemoryTraffic, NodeMemory, Sample
from rigtui.model.topology import Sensor, Topology
from rigtui.ui.fmt import bar, escape, gib, human_bytes, num, spark_rows
from rigtui.ui.heat import socket_heat

W = TypeVar("W", bound=Widget)

LEVEL_STYLE = {
    "none": "$text-muted",
    "idle": "$text-muted",
    "low": "$success",
    "mid": "$warning",
    "high": "$error",
}
STATE_STYLE = {
    EngineState.IDLE: "$text-muted",
    EngineState.STARTING: "$warning",
    EngineState.LOADING: "$warning",
    EngineState.READY: "$success",
    EngineState.GENERATING: "$accent",
    EngineState.STOPPING: "$warning",
    EngineState.EXITED: "$text-muted",
    EngineState.FAILED: "$error",
}


def host_line(topology: Topology, mode: str, detail: str) -> str:
    """`host · CPU · 2 sockets · 8 nodes · 24 ch DDR5-4800 · kernel` (markup)."""
    h, cpu, mem = topology.host, topology.cpu, topology.memory
    host = f"[b]{escape(h.hostname or 'unknown host')} [/b]· "
    parts = [escape(cpu.model_name or cpu.arch or "unknown CPU")]
    parts.append(
        f"{len(topology.sockets)} socket{'s' if len(topology.sockets) != 1 else ''} · "
        f"{len(topology.nodes)} node{'s' if len(topology.nodes) != 1 else ''} · "
        f"{len(topology.cores)}c/{len(cpu.online)}t"
    )
    if mem.populated_channels:
        kind = next((d.type for d in mem.dimms if d.populated and d.type), None) or "MT/s"
        speed = (
            ""
            if not mem.speed_mts
            else f" {kind}-{mem.speed_mts}"
            if kind != "MT/s"
            else f" {mem.speed_mts} MT/s"
        )
        parts.append(f"{mem.populated_channels} ch{speed}")
    else:
        parts.append("channels ?")
    if h.kernel:
        parts.append(escape(h.kernel))
    if mode != "live":
        parts.append(f"[$warning]{escape(mode)}{': ' + escape(detail) if detail else ''}[/]")
    return host + " · ".join(parts)


def part(widget: Widget, selector: str) -> Static:
    """The Static child `selector` of a panel, looked up once: a query matches CSS selectors
    over the children on every call, and the panels ask for theirs every second."""
    cache = widget.__dict__.setdefault("_rig_parts", {})
    found = cache.get(selector)
    if found is None:
        found = cache[selector] = widget.query_one(selector, Static)
    return found


def parts(widget: Widget, kind: type[W]) -> list[W]:
    """Every descendant of type `kind`, looked up once the widget has mounted its children
    (the dashboard composes them once). Before that (a resize can come first) the query is
    not kept: an empty list kept then would leave those panels undrawn for good."""
    cache = widget.__dict__.setdefault("_rig_parts", {})
    found = cache.get(kind)
    if found is None:
        found = list(widget.query(kind))
        if found:
            cache[kind] = found
    return found


def set_title(widget: Widget, title: str) -> None:
    """Set a border title only when it changed: Textual repaints the widget on every set."""
    if widget.__dict__.get("_rig_title") != title:
        widget.__dict__["_rig_title"] = title
        widget.border_title = title


def set_tooltip(widget: Widget, tip: str | None) -> None:
    """Set a tooltip only when it changed (each set walks the screen's tooltip state)."""
    if widget.__dict__.get("_rig_tip", ...) != tip:
        widget.__dict__["_rig_tip"] = tip
        widget.tooltip = tip


def set_text(widget: Static, text: str) -> None:
    """Update a Static only when its text changed (an identical update still costs a repaint,
    and most of the dashboard is unchanged from one second to the next), and re-lay out the
    screen only when its size may have changed: a tok/s figure that changes in place needs a
    repaint of this widget, not a reflow of every panel (`Static.update` reflows by default,
    which was most of the app's CPU while an engine streamed)."""
    if getattr(widget, "_rig_text", None) == text:
        return
    content = Content.from_markup(text)
    # the rows it takes at the widget's width, as it is rendered (word wrap included)
    width = widget.content_size.width
    rows = content.get_height(widget.styles, width) if width else None
    same = rows is not None and rows == getattr(widget, "_rig_rows", None)
    widget._rig_text, widget._rig_rows = text, rows  # type: ignore[attr-defined]
    widget.update(content, layout=not same)


def first_clause(text: str, limit: int = 60) -> str:
    """'perf: no PMU (a, b) in /sys/...; resctrl: ...' -> 'perf: no PMU (a, b) in /sys/...'."""
    head = text.split(";")[0].strip()
    return head if len(head) <= limit else head[: limit - 1] + "…"


def traffic_total(t: MemoryTraffic | None) -> float | None:
    """Read + write GB/s, or the source's combined figure when it cannot split them."""
    if t is None or not t.available:
        return None
    if t.total_gbs is not None:
        return t.total_gbs
    if t.read_gbs is None and t.write_gbs is None:
        return None
    return (t.read_gbs or 0.0) + (t.write_gbs or 0.0)


def socket_traffic(sample: Sample | None, socket_id: int) -> MemoryTraffic | None:
    """The sample's memory traffic of one socket (None: not in the sample)."""
    if sample is None:
        return None
    return next((m for m in sample.memory_traffic if m.socket == socket_id), None)


def traffic_ceiling(topology: Topology, t: MemoryTraffic | None, socket_id: int) -> float | None:
    """The socket's ceiling in GB/s: the sample's own, else the machine's channels'."""
    if t is not None and t.ceiling_gbs:
        return t.ceiling_gbs
    return topology.memory.bandwidth_per_socket_gbs.get(socket_id)


def node_memory(topology: Topology, node_id: int, n: NodeMemory | None) -> tuple[int, int] | None:
    """(total, free) bytes of a node: the sample's, else the probe's; None when unknown."""
    topo_node = topology.node(node_id)
    total = n.total_bytes if n and n.total_bytes else (topo_node and topo_node.mem_total_bytes)
    free = n.free_bytes if n else (topo_node and topo_node.mem_free_bytes)
    if not total or free is None:
        return None
    return total, free


def socket_sensors(topology: Topology, sample: Sample | None, socket_id: int) -> list[Sensor]:
    """The socket's sensors with a reading (the sample's, else the probe's)."""
    sensors = sample.temperatures if sample else topology.sensors
    return [s for s in sensors if s.socket == socket_id and s.temp_c is not None]


def node_breakdown(n: NodeMemory) -> str:
    """'page cache 1.2 · anon 0.4 · free 6.1 GiB · huge 0/0' (unknown parts say so)."""

    def part(label: str, v: int | None) -> str:
        return f"{label} {gib(v)}" if v is not None else f"{label} ?"

    text = " · ".join(
        (part("page cache", n.file_bytes), part("anon", n.anon_bytes), part("free", n.free_bytes))
    )
    text += " GiB"
    if n.hugepages_total:
        text += f" · huge pages {n.hugepages_free if n.hugepages_free is not None else '?'}"
        text += f"/{n.hugepages_total} free"
    return f"[$text-muted]{text}[/]"


class SocketPanel(Vertical):
    """Load heat map, memory traffic vs the ceiling, memory per node, temperatures."""

    def __init__(self, topology: Topology, socket_id: int) -> None:
        super().__init__(id=f"socket-{socket_id}", classes="panel")
        self.topology = topology
        self.socket_id = socket_id
        sock = topology.socket(socket_id)
        mode = f" · {sock.numa_mode}" if sock and sock.numa_mode else ""
        cores = sock.cores if sock else 0
        self.border_title = f"Socket {socket_id} · {cores} cores{mode}"

    def compose(self) -> ComposeResult:
        yield Static("", classes="heat")
        yield Static("", classes="traffic-label")
        yield Static("", classes="traffic")
        yield Static("", classes="nodes")
        yield Static("", classes="temps")

    def update_from(
        self,
        history: Sequence[Sample],
        *,
        spark_height: int = 1,
        node_detail: bool = False,
        engine: str | None = None,
    ) -> None:
        """`spark_height`: rows per traffic sparkline; `node_detail`: a second line per node
        (page cache, anonymous, free, huge pages); `engine`: "generating", "running" (loaded,
        not generating) or None, to say when the traffic estimate will appear."""
        sample = history[-1] if history else None
        width = max(20, self.content_region.width or self.size.width or 78)
        set_text(part(self, ".heat"), self._heat_text(sample, width))
        traffic = self._traffic_text(sample, engine)
        set_text(part(self, ".traffic-label"), traffic)
        spark_text = self._traffic_spark(history, width, max(1, spark_height))
        spark_widget = part(self, ".traffic")
        set_text(spark_widget, spark_text)
        spark_widget.display = bool(spark_text)
        set_text(part(self, ".nodes"), self._nodes_text(sample, width, node_detail))
        set_text(part(self, ".temps"), self._temps_text(sample))

    def _traffic_spark(self, history: Sequence[Sample], width: int, rows: int = 1) -> str:
        """Read and write (or R+W) history, one column per sample, scaled to the ceiling;
        `rows` lines high each (the label sits on the bottom line)."""
        mine = [socket_traffic(s, self.socket_id) for s in history]
        if not any(traffic_total(t) is not None for t in mine):
            return ""
        ceiling = next((t.ceiling_gbs for t in reversed(mine) if t and t.ceiling_gbs), None)
        ceiling = ceiling or self.topology.memory.bandwidth_per_socket_gbs.get(self.socket_id)
        cols = max(8, width - 8)  # room for the label and a scrollbar that may appear

        def block(label: str, values: list[float | None]) -> list[str]:
            body = spark_rows(values, cols, rows, ceiling)
            # the label heads the graph (top line), like an axis title
            return [(label if k == 0 else "").ljust(4) + line for k, line in enumerate(body)]

        # one continuous graph of what the channels carry (R+W; the label line has the split);
        # an estimate has reads only
        writes = any(t is not None and t.available and t.write_gbs is not None for t in mine)
        reads_only = not writes and any(t is not None and t.read_gbs is not None for t in mine)
        return "\n".join(block("R" if reads_only else "R+W",
                               [traffic_total(t) if t and t.available else None for t in mine]))  # fmt: skip

    def _heat_text(self, sample: Sample | None, width: int) -> str:
        if sample is None:
            return "[$text-muted]waiting for the first sample…[/]"
        per_cpu = dict(zip(sample.cpu.cpu_ids, sample.cpu.per_cpu, strict=False))
        lines = []
        for row in socket_heat(self.topology, self.socket_id, per_cpu, width):
            total = sum(len(g) for g in row.groups)
            sep = " " if total * 2 <= width - 24 else ""
            cells = sep.join(
                "".join(f"[{LEVEL_STYLE[c.level]}]{escape(c.glyph)}[/]" for c in g)
                for g in row.groups
            )
            unit = " [$text-muted](per L3)[/]" if row.summarised else ""
            lines.append(f"{row.label} {cells} [$text-muted]{row.summary}[/]{unit}")
        return "\n".join(lines) or "[$text-muted]no cores in this socket[/]"

    def _traffic_text(self, sample: Sample | None, engine: str | None = None) -> str:
        t = socket_traffic(sample, self.socket_id)
        ceiling = traffic_ceiling(self.topology, t, self.socket_id)
        ceil_txt = f" of {ceiling:.0f} GB/s" if ceiling else " (ceiling unknown)"
        ceil_note = f" · ceiling {ceiling:.0f} GB/s" if ceiling else " · ceiling unknown"
        basis = self.topology.memory.source
        if t is None or not t.available:
            why = (t.reason if t else None) or "no memory-traffic counters on this machine"
            set_tooltip(self, why)  # the whole reason (also in ? help); the panel shows its start
            if engine == "running":
                # the estimate needs generation: say when it comes, not only why counters lack
                return (
                    f"mem R/W [$text-muted]estimate appears while the engine generates "
                    f"(no counters: {escape(first_clause(why, 32))}){ceil_note}[/]"
                )
            return f"mem R/W [$text-muted]unavailable: {escape(first_clause(why))}[/]{ceil_note}"
        total = traffic_total(t) or 0.0
        pct = f" {100 * total / ceiling:.0f}%" if ceiling else ""
        if t.read_gbs is None and t.write_gbs is None:
            figures = f"mem R+W {total:.1f} GB/s"
        elif t.write_gbs is None:  # an estimate reads weights: it has no write figure
            figures = f"mem R {num(t.read_gbs)} GB/s"
        else:
            figures = f"mem R {num(t.read_gbs)} W {num(t.write_gbs)} GB/s"
        where = f"src {t.source or '?'}"
        if not (t.ceiling_gbs) and ceiling and basis != "unknown":
            where += f", ceiling from {basis}"
        return f"{figures}{ceil_txt}{pct} [$text-muted]{escape(where)}[/]"

    def _nodes_text(self, sample: Sample | None, width: int, detail: bool = False) -> str:
        sock = self.topology.socket(self.socket_id)
        node_ids = sock.nodes if sock else ()
        by_id: dict[int, NodeMemory] = {n.node: n for n in sample.nodes} if sample else {}
        lines = []
        for nid in node_ids:
            n = by_id.get(nid)
            known = node_memory(self.topology, nid, n)
            if known is None:
                lines.append(f"n{nid} mem [$text-muted]unknown[/]")
                continue
            total, free = known
            used = total - free
            gauge = bar(used / total, max(6, min(20, width - 36)))
            lines.append(f"n{nid} mem {gauge} {gib(used)}/{gib(total)} GiB used")
            if detail and n is not None:
                lines.append("    " + node_breakdown(n))
        return "\n".join(lines)

    def _temps_text(self, sample: Sample | None) -> str:
        mine = socket_sensors(self.topology, sample, self.socket_id)
        if not mine:
            return "[$text-muted]temp: no sensor for this socket[/]"
        return "temp " + "  ".join(f"{escape(s.label)} {s.temp_c:.0f}°C" for s in mine[:6])


class GpuPanel(Vertical):
    """Util, VRAM, temperature, power, PCIe link now/max of one GPU."""

    def __init__(self, topology: Topology, index: int) -> None:
        super().__init__(id=f"gpu-{index}", classes="panel")
        self.topology = topology
        self.index = index
        gpu = next((g for g in topology.gpus if g.index == index), None)
        node = f" · node {gpu.numa_node}" if gpu and gpu.numa_node is not None else ""
        self.border_title = f"GPU {index} · {gpu.name if gpu and gpu.name else 'unknown'}{node}"

    def compose(self) -> ComposeResult:
        yield Static("", classes="gpu-text")

    def update_from(self, history: Sequence[Sample]) -> None:
        sample = history[-1] if history else None
        g: GpuSample | None = None
        if sample is not None:
            g = next((x for x in sample.gpus if x.index == self.index), None)
        set_text(part(self, ".gpu-text"), self._gpu_text(g))

    def _gpu_text(self, g: GpuSample | None) -> str:
        topo = next((x for x in self.topology.gpus if x.index == self.index), None)
        if g is None or not g.available:
            why = (g.reason if g else None) or "no live GPU readings"
            link = ""
            if topo is not None:
                link = f"\nPCIe {topo.link_speed or '?'} x{topo.link_width or '?'}"
                link += f" (max {topo.link_max_speed or '?'} x{topo.link_max_width or '?'})"
            return f"[$text-muted]{escape(why)}[/]{escape(link)}"
        util = g.util_pct
        mem_frac = (
            g.mem_used_bytes / g.mem_total_bytes
            if g.mem_used_bytes is not None and g.mem_total_bytes
            else None
        )
        power = f"{num(g.power_w, '.0f')}/{num(g.power_limit_w, '.0f')} W"
        link_now = f"Gen{g.pcie_gen or '?'} x{g.pcie_width or '?'}"
        link_max = f"Gen{g.pcie_gen_max or '?'} x{g.pcie_width_max or '?'}"
        link_style = (
            "$warning"
            if (g.pcie_gen, g.pcie_width)
            != (
                g.pcie_gen_max,
                g.pcie_width_max,
            )
            else "$text"
        )
        return (
            f"util {bar((util or 0) / 100, 12)} {num(util, '.0f')}%   temp {num(g.temp_c, '.0f')}°C\n"
            f"VRAM {bar(mem_frac, 12)} {human_bytes(g.mem_used_bytes)}/"
            f"{human_bytes(g.mem_total_bytes)}   {power}\n"
            f"PCIe [{link_style}]{link_now} [/](max {link_max})"
        )
