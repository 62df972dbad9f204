"""Small modal dialogs: confirm, and a form of labelled fields (text inputs and selects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from rigtui.ui.fmt import escape


class ConfirmModal(ModalScreen[bool]):
    """y / Enter confirms, n / Esc cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__(classes="modal")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(escape(self.question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes", compact=True)
                yield Button("No (n)", variant="primary", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


@dataclass(frozen=True)
class Field:
    key: str  # the TOML key it edits ("threads", "sampling.max_tokens")
    label: str
    value: str  # current value as text ("" = not set)
    options: tuple[str, ...] = ()  # a Select when given
    placeholder: str = ""


class FormModal(ModalScreen[dict[str, str] | None]):
    """Edits `fields`; dismisses with {key: text} of every field, or None when cancelled.
    Ctrl+S saves, Esc cancels, Tab moves between fields."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, fields: Sequence[Field], *, note: str = "") -> None:
        super().__init__(classes="modal")
        self.form_title = title
        self.fields = list(fields)
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Static(f"[b]{escape(self.form_title)}[/b]", classes="question")
            with VerticalScroll(), Grid(classes="form-grid"):
                for f in self.fields:
                    yield Label(f.label)
                    if f.options:
                        yield Select(
                            [(o, o) for o in f.options],
                            value=f.value if f.value in f.options else Select.NULL,
                            id=f"field-{_id(f.key)}",
                            allow_blank=f.value not in f.options,
                            prompt="(not set)",
                            compact=True,
                        )
                    else:
                        yield Input(f.value, placeholder=f.placeholder, id=f"field-{_id(f.key)}")
            if self.note:
                yield Static(escape(self.note), classes="form-note")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#field-{_id(self.fields[0].key)}").focus()

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{_id(f.key)}")
            if isinstance(widget, Select):
                v = widget.value
                out[f.key] = "" if v is Select.NULL or v is None else str(v)
            else:
                out[f.key] = widget.value  # type: ignore[attr-defined]
        return out

    def show_error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(f"[$error]{escape(text)}[/]")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        self.dismiss(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)


def _id(key: str) -> str:
    return key.replace(".", "-").replace("_", "-")
