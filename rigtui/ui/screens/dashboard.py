"""Dashboard (home): host line, engine panel, a panel per socket and per GPU.

Panels are sized for 80x24 first; on a taller terminal the rows left over go to taller
sparklines (tok/s, memory traffic), a per-node memory breakdown and the engine's last request
and output tail, instead of leaving the bottom of the screen empty. On a wide terminal the
engine panel spans the width and the sockets sit side by side below it, in socket order. When
the socket panels do not fit at all (an 8-socket box at 80x24), one line per socket instead
(`SocketTable`).
"""

from __future__ import annotations

import math
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from rigtui.model.engine import EngineState
from rigtui.ui.engine_panel import EnginePanel, EngineView
from rigtui.ui.fmt import escape
from rigtui.ui.panels import GpuPanel, SocketPanel, host_line, part, parts, set_text
from rigtui.ui.screens.base import RigScreen
from rigtui.ui.socket_table import SocketTable

WIDE = 120  # columns from which panels sit in two columns
ENGINE_BASE = 10  # rows of the engine panel with one-row sparklines (borders included)
GPU_BASE = 6  # rows of a GPU panel
ENGINE_IDLE = 3  # rows of the engine panel with no engine launched
MAX_SOCKET_SPARK = 10  # rows of a socket's traffic graph at most
MAX_SPARK = 6  # rows per sparkline at most: taller only stretches the same 120 samples


def socket_base(nodes: int) -> int:
    """Rows of a socket panel at its smallest: borders, a heat line and a memory line per node,
    the traffic label (two lines when it wraps), the traffic graph, temperatures."""
    return 2 + 2 * nodes + 2 + 1 + 1


class DashboardScreen(RigScreen):
    BINDINGS: ClassVar = [
        Binding("l", "launch", "Launch", tooltip="Launch the --launch profile or the demo"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch":  # what the idle panel offers: only with a live engine, none yet
            return self.rig.supervisor is not None and not self.rig.board.instances
        return True

    def compose(self) -> ComposeResult:
        topo = self.rig.topology
        services = self.rig.services
        yield Static(host_line(topo, services.mode, services.mode_detail), id="host-line")
        yield Static("", id="source-note")
        with VerticalScroll(id="dash-body"):
            yield EnginePanel(topo)
            if len(topo.sockets) > 1:
                yield SocketTable(topo)
            panels: list = [SocketPanel(topo, sock.id) for sock in topo.sockets]
            panels += [GpuPanel(topo, gpu.index) for gpu in topo.gpus]
            if len(panels) % 2:  # alone in the last row of two: it takes the whole row
                panels[-1].add_class("span")
            yield from panels
        yield Footer(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#dash-body").set_class(event.size.width >= WIDE, "wide")
        self.refresh_data()

    def roofline(self) -> tuple[float | None, str]:
        """(limit tok/s, basis): theoretical bandwidth / bytes read per token."""
        rig = self.rig
        bw, bw_basis = self.bandwidth()
        inst = rig.current
        stats = inst.stats if inst else None
        bpt = inst.bytes_per_token if inst else None
        basis = inst.bytes_per_token_basis if inst else None
        if bpt is None and stats is not None and stats.model_bytes:
            bpt = float(stats.model_bytes)
            basis = "estimate: model file size per token"
        if bw is None:
            mem = rig.topology.memory
            why = mem.unknown.get("theoretical_bandwidth_gbs") or "memory bandwidth unknown"
            hint = " (b, then m measures it)" if rig.services.run_membench is not None else ""
            return None, f"no roofline: {why}{hint}"
        if bpt is None:
            return None, f"{bw:.0f} GB/s ÷ bytes per token (known once a model is loaded)"
        return (
            bw * 1e9 / bpt,
            f"{bw:.0f} GB/s ({bw_basis}) ÷ {bpt / 1e6:.1f} MB/token ({basis})",
        )

    def bandwidth(self) -> tuple[float | None, str]:
        mem = self.rig.topology.memory
        if mem.theoretical_bandwidth_gbs is not None:
            return mem.theoretical_bandwidth_gbs, f"theoretical, {mem.source}"
        measured = getattr(self.rig.membench, "machine", None)
        if measured is not None and measured.read_gbs:
            return measured.read_gbs, "measured by rigtui bench mem"
        return None, ""

    def machine_line(self) -> str | None:
        """With several engines generating they share the memory bandwidth: their bytes per
        second together against it (each engine's own roofline assumes it is alone)."""
        running = [i for i in self.rig.board.running() if i.stats.gen_tok_s]
        if len(running) < 2:
            return None
        total_tok = sum(i.stats.gen_tok_s or 0.0 for i in running)
        bw, _ = self.bandwidth()
        line = f"all {len(running)} engines: {total_tok:.1f} tok/s"
        bytes_s = [
            (i.stats.gen_tok_s or 0.0) * (i.bytes_per_token or float(i.stats.model_bytes or 0))
            for i in running
        ]
        if bw and all(bytes_s):
            line += (
                f" · {sum(bytes_s) / 1e9:.1f} GB/s = {sum(bytes_s) / (bw * 1e9):.0%} of {bw:.0f}"
            )
        return line

    def layout_budget(self) -> tuple[int, int, int, bool, bool]:
        """(engine sparkline rows, output tail lines, socket sparkline rows, node detail, one
        line per socket) from the rows each grid row of panels gets on this terminal."""
        topo = self.rig.topology
        width, height = self.size.width, self.size.height
        cols = 2 if width >= WIDE else 1
        avail = max(0, height - 2)  # host line and footer
        n_inst = len(self.rig.board.instances)
        # no engine launched: the panel is its one line of advice
        engine_min = ENGINE_BASE + (n_inst + 1 if n_inst > 1 else 0) if n_inst else ENGINE_IDLE
        nodes = max((len(s.nodes) for s in topo.sockets), default=1)
        n_sock, n_gpu = len(topo.sockets), len(topo.gpus)
        # the socket panels at their smallest, side by side, then the GPUs in the same grid
        full = engine_min + math.ceil(n_sock / cols) * socket_base(nodes) + \
            (math.ceil((n_sock + n_gpu) / cols) - math.ceil(n_sock / cols)) * GPU_BASE
        table = n_sock > 1 and full > avail
        grid_rows = 1 + (math.ceil(n_gpu / cols) if table else math.ceil((n_sock + n_gpu) / cols))
        if table:
            grid_rows += 1  # the table's own row
        if n_inst:  # the engine and each row of the grid share the rows alike
            per_row = avail // max(1, grid_rows)
        else:  # the idle engine panel keeps its few rows, the grid takes the rest
            per_row = (avail - engine_min) // max(1, grid_rows - 1)
        engine_extra = per_row - engine_min
        spark_h = max(1, min(MAX_SPARK, 1 + engine_extra // 4))
        tail = max(0, min(12, engine_extra - 2 * (spark_h - 1) - 1))
        sock_extra = per_row - socket_base(nodes)
        node_detail = sock_extra >= nodes + 3  # 80x24 keeps its one-line-per-node panel
        if node_detail:
            sock_extra -= nodes
        sock_h = max(1, min(MAX_SOCKET_SPARK, 1 + sock_extra))  # the one traffic graph grows
        return spark_h, tail, sock_h, node_detail, table

    def refresh_data(self) -> None:
        rig = self.rig
        history = rig.history
        width = self.size.width
        note = part(self, "#source-note")
        set_text(note, f"[$warning]{escape(rig.source_note)}[/]" if rig.source_note else "")
        note.display = bool(rig.source_note)
        panel_width = width - 4  # the engine panel spans the width (wide or not)
        engine_note = None
        if rig.services.engine_factory is None and not rig.board.instances:
            engine_note = f"no live engine in {rig.services.mode} mode"
        spark_h, tail, sock_h, node_detail, table = self.layout_budget()
        parts(self, EnginePanel)[0].update_from(
            EngineView(
                instances=tuple(rig.board.instances.values()),
                selected=rig.board.selected,
                roofline=self.roofline(),
                machine_line=self.machine_line(),
                prepare=rig.prepare,
                note=engine_note,
                width=panel_width,
                spark_height=spark_h,
                tail_lines=tail,
                app_note=rig.app_note,
            )
        )
        running = rig.board.running()
        engine = None
        if any(i.stats.state is EngineState.GENERATING for i in running):
            engine = "generating"
        elif any(i.stats.state is EngineState.READY for i in running):
            engine = "running"
        for table_panel in parts(self, SocketTable):
            table_panel.display = table
            if table:
                table_panel.update_from(history)
        for panel in parts(self, SocketPanel):
            panel.display = not table
            if not table:
                panel.update_from(history, spark_height=sock_h, node_detail=node_detail,
                                  engine=engine)  # fmt: skip
        for gpanel in parts(self, GpuPanel):
            gpanel.update_from(history)
