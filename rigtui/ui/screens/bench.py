"""Bench: memory bandwidth per node / socket / machine, the node x node read matrix, and the
per-node figures as a small bar plot against the theoretical ceiling."""

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
    runs = [*result.nodes, *result.sockets]
    if result.machine is not None:
        runs.append(result.machine)
    runs += [b for b in (result.interleaved, result.cross_socket) if b is not None]
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
            for hidden in ("#matrix-title", "#bench-matrix", "#bench-runs"):
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
        runs.add_columns("run", "threads", "read GB/s", "triad GB/s", "theory GB/s", "read %")
        for b in [*r.nodes, *r.sockets, *([r.machine] if r.machine else [])]:
            runs.add_row(
                escape(b.label),
                str(b.threads),
                num(b.read_gbs),
                num(b.triad_gbs),
                num(b.theoretical_gbs, ".0f"),
                num(b.read_pct, ".0f"),
            )
        matrix = self.query_one("#bench-matrix", DataTable)
        matrix.clear(columns=True)
        cpu_nodes = sorted({b.cpu_nodes[0] for b in r.matrix if b.cpu_nodes})
        mem_nodes = sorted({b.mem_nodes[0] for b in r.matrix if b.mem_nodes})
        title = self.query_one("#matrix-title", Static)
        title.display = matrix.display = bool(r.matrix)
        if not r.matrix:
            return
        matrix.add_columns("cpu\\mem", *(f"n{m}" for m in mem_nodes))
        for c in cpu_nodes:
            row = []
            for m in mem_nodes:
                cell = r.cell(c, m)
                row.append(num(cell.read_gbs) if cell else "–")
            matrix.add_row(f"n{c}", *row)
