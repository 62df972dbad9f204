"""Fleet: several rigs, one row each, from their exporters or a Prometheus (`rigtui fleet`'s
reader, given to the UI as `services.read_fleet`; the UI does no I/O of its own)."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from rigtui.telemetry.fleet import COLUMNS, row_cells
from rigtui.ui.fmt import escape
from rigtui.ui.screens.base import RigScreen

REFRESH_S = 5.0


class FleetRead(Message):
    def __init__(self, rows: tuple[Any, ...], note: str | None) -> None:
        super().__init__()
        self.rows = rows
        self.note = note


class FleetScreen(RigScreen):
    BINDINGS = [Binding("g", "reread", "Re-read", tooltip="Read every rig again now")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: tuple[Any, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("reading the fleet…", id="fleet-summary")
        table: DataTable = DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reread()
        self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:  # a hidden screen does nothing
            self.action_reread()

    def action_reread(self) -> None:
        if self.rig.services.read_fleet is None:
            self.query_one("#fleet-summary", Static).update(
                "[$text-muted]the fleet view needs prometheus-client: pip install 'rigtui[prometheus]'[/]")
            return
        self._read()

    @work(thread=True, exclusive=True, group="fleet", exit_on_error=False)
    def _read(self) -> None:
        read = self.rig.services.read_fleet
        assert read is not None
        try:
            rows, note = read()
        except Exception as exc:  # a Prometheus that cannot be asked, a bad fleet.toml
            rows, note = [], str(exc)
        self.post_message(FleetRead(tuple(rows), note))

    def on_fleet_read(self, msg: FleetRead) -> None:
        self.rows = msg.rows
        table = self.query_one("#fleet-table", DataTable)
        table.clear()
        for r in msg.rows:
            table.add_row(*row_cells(r), key=r.name)
        up = sum(1 for r in msg.rows if r.up)
        summary = msg.note or (f"{len(msg.rows)} rigs, {up} up" + (
            f", [$error]{len(msg.rows) - up} down[/]" if up < len(msg.rows) else ""))  # fmt: skip
        self.query_one("#fleet-summary", Static).update(
            summary if not msg.note else f"[$warning]{escape(msg.note)}[/]")
