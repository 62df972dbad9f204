"""`?`: the keys and what each screen shows, derived from the screen registry and the app's
bindings, wrapped to the terminal's width with the descriptions indented under their title."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from rigtui.ui.fmt import escape
from rigtui.ui.screens import help_rows

DIALOG_WIDTH = 90  # .dialog.help's width in rigtui.tcss
CHROME = 6  # its border and padding, and a scrollbar's room
KEY_COL = 2  # "d "
TITLE_COL = 12  # "Dashboard   "


def help_text(width: int, others: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> str:
    """The help at `width` columns: a line (or more, each starting under the first) per screen,
    then the other keys (`others`: key, what it does), then the live `notes`."""
    indent = " " * (KEY_COL + TITLE_COL)
    body = max(20, width - len(indent))
    lines = ["[b]rigtui keys[/b]", "(in the footer too, and in the command palette: ctrl+p)", ""]
    for key, title, shows in help_rows():
        wrapped = textwrap.wrap(shows, body) or [""]
        lines.append(f"[b]{escape(key):<{KEY_COL - 1}} [/b]{title:<{TITLE_COL}}{escape(wrapped[0])}")
        lines.extend(indent + escape(rest) for rest in wrapped[1:])
    lines.append("")
    for key, what in others:
        wrapped = textwrap.wrap(what, max(20, width - 6)) or [""]
        lines.append(f"[b]{escape(key):<5} [/b]{escape(wrapped[0])}")
        lines.extend(" " * 6 + escape(rest) for rest in wrapped[1:])
    lines.append("")
    about = ("The app does not read the machine itself: a background sampler does, once per "
             "--interval (default 1 s); a hidden screen does not redraw.")  # fmt: skip
    lines.extend(escape(line) for line in textwrap.wrap(about, width))
    if notes:
        lines += ["", "[b]Now[/b]"]
        for note in notes:
            lines.extend(escape(line) for line in textwrap.wrap(note, width, subsequent_indent="  "))
    return "\n".join(lines)


def other_keys(bindings: Sequence[object]) -> list[tuple[str, str]]:
    """(key, what it does) of the app's bindings that are not a screen's."""
    out = []
    for b in bindings:
        if not isinstance(b, Binding) or b.action.startswith("screen("):
            continue
        key = b.key_display or b.key.split(",")[0]
        out.append((key, b.tooltip or b.description))
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, notes: list[str] | None = None, others: list[tuple[str, str]] | None = None) -> None:
        super().__init__(classes="modal")
        self.notes = notes or []  # live details the panels shorten (memory-traffic reasons)
        self.others = others or []

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(self._text(self.app.size.width), id="help-text")

    def _text(self, width: int) -> str:
        return help_text(min(DIALOG_WIDTH, width) - CHROME, self.others, self.notes)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#help-text", Static).update(self._text(event.size.width))

    def action_close(self) -> None:
        self.dismiss()
