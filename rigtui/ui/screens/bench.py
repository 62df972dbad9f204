"""Bench: memory bandwidth per node / socket / machine (read, triad and copy: read:write 1:0,
2:1, 1:1), the node x node read matrix, the idle-latency matrix, and the per-node figures as a
small bar plot against the theoretical ceiling."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from rigtui.ui.fmt import bar, escape, num
from rigtui.ui.messages import BenchReady
from rigtui.ui.screens.base import RigScreen


def bench_plot(result: Any, width: int) -> str:
    """One bar per run (node, socket, machine): read GB/s against the theoretical figure."""
    runs = result.runs()
    top = max([v for r in runs for v in (r.read_gbs, r.triad_gbs, r.theoretical_gbs) if v] or [1.0])
    label_w = max((len(r.label) for r in runs), default=6)
    bar_w = max(8, width - label_w - 32)
    lines = []
    for r in runs:
        ceil = f" of {r.theoretical_gbs:.0f}" if r.theoretical_gbs else ""
        pct = f" {r.read_pct:.0f}%" if r.read_pct is not None else ""
        lines.append(
            f"{escape(r.label):<{label_w}} {bar((r.read_gbs or 0) / top, bar_w)} "
            f"{num(r.read_gbs)}{ceil} GB/s{pct}"
        )
    return "\n".join(lines)


class BenchScreen(RigScreen):
    BINDINGS = [Binding("m", "measure", "Measure", tooltip="Measure memory bandwidth now")]

    def __init__(self) -> None:
        super().__init__()
        self.bench_result: Any = None
        self.measuring = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="bench-body"):
            yield Static("", id="bench-summary")
            yield Static("", id="bench-plot")
            yield DataTable(id="bench-runs", cursor_type="row")
            yield Static(
                "[b]read matrix [/b]GB/s: rows = CPU node, columns = memory node", id="matrix-title"
            )
            yield DataTable(id="bench-matrix", cursor_type="cell")
            yield Static("", id="latency-title")
            yield DataTable(id="bench-latency", cursor_type="cell")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._load_cached()

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def _load_cached(self) -> None:
        load = self.rig.services.load_membench
        if load is None:
            self.post_message(BenchReady(None, error="no bandwidth results in this mode"))
            return
        try:
            self.post_message(BenchReady(load()))
        except Exception as exc:
            self.post_message(BenchReady(None, error=f"could not read the cache: {exc}"))

    def action_measure(self) -> None:
        run = self.rig.services.run_membench
        if run is None:
            self.notify("Measuring needs the live machine (plain `rigtui`).", severity="warning")
            return
        if self.measuring:
            return
        self.measuring = True
        self.query_one("#bench-summary", Static).update("measuring… (this loads memory hard)")
        self._measure()

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def _measure(self) -> None:
        def progress(text: str) -> None:
            self.app.call_from_thread(
                self.query_one("#bench-summary", Static).update, f"measuring… {escape(text)}"
            )

        try:
            result = self.rig.services.run_membench(progress)  # type: ignore[misc]
        except Exception as exc:
            self.post_message(BenchReady(None, error=f"bench failed: {exc}"))
            return
        self.post_message(BenchReady(result))

    def on_bench_ready(self, msg: BenchReady) -> None:
        self.measuring = False
        summary = self.query_one("#bench-summary", Static)
        if msg.error:
            summary.update(f"[$warning]{escape(msg.error)}[/]")
        if msg.result is None:
            if not msg.error:
                summary.update(
                    "no measurement for this machine yet: m measures (or `rigtui bench mem`)"
                )
            self.query_one("#bench-plot", Static).update("")
            for hidden in ("#matrix-title", "#bench-matrix", "#bench-runs", "#latency-title",
                           "#bench-latency"):  # fmt: skip
                self.query_one(hidden).display = False
            return
        self.bench_result = msg.result
        self._show_result()

    def refresh_data(self) -> None:
        if self.bench_result is not None:
            self._show_result()

    def _show_result(self) -> None:
        r = self.bench_result
        secs = f" in {r.seconds:.1f} s" if r.seconds else ""
        notes = "".join(f"\n[$text-muted]{escape(n)}[/]" for n in r.notes)
        self.query_one("#bench-summary", Static).update(
            f"[b]memory bandwidth [/b]· kernel {escape(r.kernel)}{secs} · m re-measures{notes}"
        )
        self.query_one("#bench-plot", Static).update(bench_plot(r, self.size.width or 80))
        runs = self.query_one("#bench-runs", DataTable)
        runs.display = True
        runs.clear(columns=True)
        runs.add_columns("run", "threads", "read GB/s", "triad GB/s", "copy GB/s", "theory GB/s",
                         "read %")  # fmt: skip
        for b in r.runs():
            runs.add_row(
                escape(b.label) + (" [$warning](pages not where asked)[/]"
                                   if b.placement_ok is False else ""),  # fmt: skip
                str(b.threads),
                num(b.read_gbs),
                num(b.triad_gbs),
                num(b.copy_gbs),
                num(b.theoretical_gbs, ".0f"),
                num(b.read_pct, ".0f"),
            )
        matrix = self.query_one("#bench-matrix", DataTable)
        matrix.clear(columns=True)
        title = self.query_one("#matrix-title", Static)
        title.display = matrix.display = bool(r.matrix)
        if r.matrix:
            cpu_nodes = sorted({b.cpu_nodes[0] for b in r.matrix if b.cpu_nodes})
            mem_nodes = sorted({b.mem_nodes[0] for b in r.matrix if b.mem_nodes})
            matrix.add_columns("cpu\\mem", *(f"n{m}" for m in mem_nodes))
            for c in cpu_nodes:
                cells = [r.read_cell(c, m) for m in mem_nodes]
                matrix.add_row(f"n{c}", *(num(cell.read_gbs) if cell else "–" for cell in cells))
        lat = self.query_one("#bench-latency", DataTable)
        lat.clear(columns=True)
        lat_title = self.query_one("#latency-title", Static)
        lat.display = bool(r.latency)
        lat_title.display = bool(r.latency or r.latency_note)
        lat_title.update("[b]idle latency [/b]ns: rows = CPU node, columns = memory node"
                         if r.latency else f"[$text-muted]{escape(r.latency_note or '')}[/]")  # fmt: skip
        if r.latency:
            cpu_nodes = sorted({c.cpu_node for c in r.latency})
            mem_nodes = sorted({c.mem_node for c in r.latency})
            lat.add_columns("cpu\\mem", *(f"n{m}" for m in mem_nodes))
            for c in cpu_nodes:
                lat.add_row(f"n{c}", *(num(r.latency_ns(c, m), ".0f") for m in mem_nodes))
