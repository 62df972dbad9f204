"""Checks: the sanity checks of this machine as a table; the selected one explained below."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from rigtui.ui.fmt import escape
from rigtui.ui.messages import ChecksReady
from rigtui.ui.screens.base import RigScreen

STATUS_STYLE = {"pass": "$success", "warn": "$warning", "fail": "$error", "unknown": "$text-muted"}
STATUS_ORDER = {"fail": 0, "warn": 1, "unknown": 2, "pass": 3}


class ChecksScreen(RigScreen):
    BINDINGS = [Binding("g", "rerun", "Re-run", tooltip="Re-run the sanity checks")]

    def __init__(self) -> None:
        super().__init__()
        self.checks: tuple[Any, ...] = ()
        self._model_kw: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static("running checks…", id="checks-summary")
        table: DataTable = DataTable(id="checks-table", cursor_type="row")
        table.add_columns("status", "check", "found")
        yield table
        yield Static("", id="check-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_rerun()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.is_mounted and self.model_context() != self._model_kw:
            self.action_rerun()  # an engine started or stopped since: judge the model in use

    def action_rerun(self) -> None:
        run = self.rig.services.run_checks
        if run is None:
            self.query_one("#checks-summary", Static).update(
                "[$text-muted]checks are not available in this mode[/]"
            )
            return
        self._model_kw = self.model_context()  # read here: workers must not walk app state
        about = f" for {self._model_kw['model_path']}" if self._model_kw else ""
        self.query_one("#checks-summary", Static).update(f"running checks{escape(about)}…")
        self._run()

    def model_context(self) -> dict[str, Any]:
        """The selected running engine's model, threads and profile, so `free_memory`,
        `model_page_cache` and `numa_mode` judge what runs instead of saying "no model given"."""
        inst = self.rig.current
        if inst is None or not inst.started or not inst.active:
            inst = next((i for i in self.rig.board.running() if i.started), None)
        if inst is None:
            return {}
        path = inst.stats.model_path or inst.model_path
        if not path:
            return {}
        threads = inst.threads
        kw: dict[str, Any] = {"model_path": path}
        if isinstance(threads, int):
            kw["profile_threads"] = threads
        if inst.profile:
            kw["profile"] = inst.profile  # what it runs: the NUMA-mode verdict judges it
        return kw

    @work(thread=True, exclusive=True, group="checks", exit_on_error=False)
    def _run(self) -> None:
        kw = self._model_kw
        try:
            checks = tuple(self.rig.services.run_checks(self.rig.topology, **kw))  # type: ignore[misc]
        except Exception as exc:
            self.post_message(ChecksReady((), error=f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ChecksReady(checks))

    def on_checks_ready(self, msg: ChecksReady) -> None:
        if not msg.error and self.model_context() != self._model_kw:
            self.action_rerun()  # the engine loaded (or stopped) while they ran: judge that
            return
        summary = self.query_one("#checks-summary", Static)
        if msg.error:
            summary.update(f"[$error]checks failed: {escape(msg.error)}[/]")
            return
        self.checks = tuple(sorted(msg.checks, key=lambda c: STATUS_ORDER.get(c.status, 9)))
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in STATUS_ORDER}
        summary.update(
            "  ".join(f"[{STATUS_STYLE[s]}]{n} {s}[/]" for s, n in counts.items())
            + (
                f"  [$text-muted]model: {escape(self._model_kw['model_path'])}[/]"
                if self._model_kw
                else "  [$text-muted]no engine running: model checks need one[/]"
            )
            + "  [$text-muted]↑↓ select · g re-run[/]"
        )
        table = self.query_one("#checks-table", DataTable)
        table.clear()
        for c in self.checks:
            table.add_row(
                Text(c.status.upper(), style=self._color(c.status)),
                Text(c.title),
                Text(c.summary),
                key=c.id,
            )
        self._detail(0)

    def _color(self, status: str) -> str:
        """The theme's colour for a status (DataTable cells take Rich styles, not $vars)."""
        var = STATUS_STYLE.get(status, "$text").lstrip("$")
        return self.app.theme_variables.get(var, "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, row: int) -> None:
        detail = self.query_one("#check-detail", Static)
        if not (0 <= row < len(self.checks)):
            detail.update("")
            return
        c = self.checks[row]
        lines = [f"[b]{escape(c.title)} [/b][$text-muted]({escape(c.id)})[/]", escape(c.summary)]
        lines.append(f"[$text-muted]why: [/]{escape(c.why)}")
        if c.fix:
            lines.append(f"[$text-muted]fix: [/]{escape(c.fix)}")
        for ev in c.evidence[:4]:
            lines.append(f"[$text-muted]{escape(ev.source)}: [/]{escape(ev.value)}")
        detail.update("\n".join(lines))
