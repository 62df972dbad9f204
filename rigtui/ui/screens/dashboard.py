"""Dashboard (home): host line, engine panel, a panel per socket and per GPU."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.widgets import Footer, Static

from rigtui.ui.panels import EnginePanel, GpuPanel, SocketPanel, host_line
from rigtui.ui.screens.base import RigScreen

WIDE = 120  # columns from which panels sit in two columns


class DashboardScreen(RigScreen):
    def compose(self) -> ComposeResult:
        topo = self.rig.topology
        services = self.rig.services
        yield Static(host_line(topo, services.mode, services.mode_detail), id="host-line")
        yield Static("", id="source-note")
        with VerticalScroll(id="dash-body"):
            yield EnginePanel()
            for sock in topo.sockets:
                yield SocketPanel(topo, sock.id)
            for gpu in topo.gpus:
                yield GpuPanel(topo, gpu.index)
        yield Footer(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#dash-body").set_class(event.size.width >= WIDE, "wide")
        self.refresh_data()

    def roofline(self) -> tuple[float | None, str]:
        """(limit tok/s, basis): theoretical bandwidth / bytes read per token."""
        rig = self.rig
        mem = rig.topology.memory
        bw = mem.theoretical_bandwidth_gbs
        bw_basis = f"theoretical, {mem.source}"
        measured = getattr(rig.membench, "machine", None)
        if bw is None and measured is not None and measured.read_gbs:
            bw, bw_basis = measured.read_gbs, "measured by rigtui bench mem"
        stats = rig.engine_stats
        bpt, basis = rig.bytes_per_token, rig.bytes_per_token_basis
        if bpt is None and stats is not None and stats.model_bytes:
            bpt = float(stats.model_bytes)
            basis = "estimate: model file size per token"
        if bw is None:
            why = mem.unknown.get("theoretical_bandwidth_gbs") or "memory bandwidth unknown"
            hint = " (b, then m measures it)" if rig.services.run_membench is not None else ""
            return None, f"no roofline: {why}{hint}"
        if bpt is None:
            return None, f"{bw:.0f} GB/s ÷ bytes per token (known once a model is loaded)"
        return (
            bw * 1e9 / bpt,
            f"{bw:.0f} GB/s ({bw_basis}) ÷ {bpt / 1e6:.1f} MB/token ({basis})",
        )

    def refresh_data(self) -> None:
        rig = self.rig
        history = list(rig.history)
        width = self.size.width
        note = self.query_one("#source-note", Static)
        note.update(f"[$warning]{escape(rig.source_note)}[/]" if rig.source_note else "")
        note.display = bool(rig.source_note)
        panel_width = width // 2 - 4 if width >= WIDE else width - 4
        engine_note = rig.engine_note
        if rig.services.engine_factory is None and rig.engine_stats is None:
            engine_note = f"no live engine in {rig.services.mode} mode"
        self.query_one(EnginePanel).update_from(
            rig.engine_stats,
            gen_history=list(rig.gen_history),
            prompt_history=list(rig.prompt_history),
            roofline=self.roofline(),
            prepare=rig.prepare,
            note=engine_note,
            width=panel_width,
        )
        for panel in self.query(SocketPanel):
            panel.update_from(history)
        for gpanel in self.query(GpuPanel):
            gpanel.update_from(history)
