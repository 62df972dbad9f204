"""`?`: the keys and what each screen shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from rigtui.ui.fmt import escape

HELP = """[b]rigtui keys  [/b](also in the footer, and in the command palette: ctrl+p)

[b]d [/b]Dashboard   sockets (per-core load by node/L3, memory traffic vs ceiling,
              memory per node, temps), GPUs, and the engine (tok/s, TTFT, roofline)
[b]t [/b]Topology    sockets → NUMA nodes → L3 → cores/threads, DIMMs, GPUs
[b]p [/b]Profiles    l launch · v validate · e edit · n new · y duplicate · Del delete
[b]r [/b]Run         type a prompt, Enter sends · Esc leaves the prompt · ctrl+k cancels
[b]c [/b]Checks      sanity checks · g re-runs
[b]b [/b]Bench       memory bandwidth per node and the node matrix · m measures
[b]f [/b]Fleet       several rigs (their exporters, or a Prometheus) from fleet.toml · g re-reads
[b]s [/b]select the next engine (several may run, one per NUMA node)
[b]x [/b]stop the selected engine      [b]q [/b]quit (stops the engines)      [b]? [/b]this help (Esc closes)

The app does not read the machine itself: a background sampler does, once per --interval
(default 1 s); a hidden screen does not redraw."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, notes: list[str] | None = None) -> None:
        super().__init__(classes="modal")
        self.notes = notes or []  # live details the panels shorten (memory-traffic reasons)

    def compose(self) -> ComposeResult:
        text = HELP
        if self.notes:
            text += "\n\n[b]Now[/b]\n" + "\n".join(escape(n) for n in self.notes)
        with VerticalScroll(classes="dialog help"):
            yield Static(text)

    def action_close(self) -> None:
        self.dismiss()
