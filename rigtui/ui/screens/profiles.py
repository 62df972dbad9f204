"""Profiles: list, show with inline line-numbered validation, create from the machine, edit the
common fields (comments kept), duplicate, delete (confirmed), launch, stop.

File reads and validation run in a thread worker (profiles live on disk); the handlers only
render the text and issues they are handed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer
from textual.widgets import DataTable, Footer, Static

from rigtui.model.profile import ProfileIssue
from rigtui.ui.fmt import escape
from rigtui.ui.modals import ConfirmModal, Field, FormModal
from rigtui.ui.plan_view import render_plan
from rigtui.ui.screens.base import RigScreen

MEMORY_POLICIES = ("default", "interleave", "bind", "preferred")
NUMA_STRATEGIES = ("disabled", "distribute", "isolate", "numactl", "mirror")

# The common fields the form edits: (TOML key, label, kind)
FORM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("description", "description", "str"),
    ("model", "model (path or demo:SIZE)", "str"),
    ("threads", "threads (empty: auto)", "int"),
    ("ctx", "context length", "int"),
    ("nodes", "NUMA nodes (e.g. 0,1)", "ints"),
    ("memory_policy", "memory policy", "policy"),
    ("numa", "llama.cpp NUMA strategy", "numa"),
    ("gpu_layers", "GPU layers (-1 all)", "int"),
    ("sampling.max_tokens", "max tokens per reply", "int"),
)


def form_value_to_toml(kind: str, text: str) -> Any:
    """Form text -> TOML value; "" removes the key (None). Raises ValueError with a message."""
    text = text.strip()
    if text == "":
        return None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "ints":
        try:
            return [int(p) for p in text.replace(" ", ",").split(",") if p]
        except ValueError:
            raise ValueError(f"{text!r}: write node ids separated by commas, e.g. 0,1") from None
    return text


def file_value_text(values: dict[str, Any] | None, key: str) -> str:
    """The value of dotted `key` as written in the file (not the resolved default), as text."""
    obj: Any = values
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return ""
        obj = obj[part]
    if isinstance(obj, (tuple, list)):
        return ",".join(str(v) for v in obj)
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return str(obj)


def parse_toml(text: str) -> dict[str, Any] | None:
    """The file's own keys (None when it is not valid TOML: the issues say where)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def render_profile(text: str, issues: list[Any]) -> str:
    """Line-numbered TOML with each issue shown right under its line (markup)."""
    by_line: dict[int | None, list[Any]] = {}
    for issue in issues:
        by_line.setdefault(getattr(issue, "line", None), []).append(issue)
    out: list[str] = []
    lines = text.splitlines()
    width = len(str(len(lines)))
    for i, line in enumerate(lines, start=1):
        mark = "[$error]▌[/]" if i in by_line else " "
        out.append(f"[$text-muted]{i:>{width}} [/]{mark}{escape(line)}")
        for issue in by_line.get(i, []):
            out.append(_issue_markup(issue, width))
    for issue in by_line.get(None, []) + [
        iss for ln, group in by_line.items() if ln is not None and ln > len(lines) for iss in group
    ]:
        out.append(_issue_markup(issue, width))
    return "\n".join(out)


def _issue_markup(issue: Any, width: int) -> str:
    style = "$warning" if getattr(issue, "severity", "error") == "warning" else "$error"
    key = f"{issue.key}: " if getattr(issue, "key", None) else ""
    text = f"{' ' * (width + 1)}[{style}]↳ {escape(key + issue.message)}[/]"
    if getattr(issue, "hint", None):
        text += f"\n{' ' * width}   [$text-muted]hint: {escape(issue.hint)}[/]"
    return text


class ProfilesScreen(RigScreen):
    BINDINGS = [
        Binding("l", "launch", "Launch", tooltip="Launch the selected profile"),
        Binding("v", "validate", "Check", tooltip="Validate the selected profile"),
        Binding("e", "edit", "Edit", tooltip="Edit the selected profile"),
        Binding("n", "new", "New", tooltip="New profile from this machine"),
        Binding("y", "duplicate", "Dup", tooltip="Duplicate the selected profile"),
        Binding(
            "delete,D", "delete", "Delete", key_display="Del", tooltip="Delete the selected profile"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[Any] = []
        self.current: Any = None  # the ProfileRef shown
        self.loaded: Any = None  # its Profile, when it loads
        self.file_values: dict[str, Any] | None = None  # the keys the file itself sets

    def compose(self) -> ComposeResult:
        with Horizontal(id="profiles-body"):
            table: DataTable = DataTable(id="profile-list", cursor_type="row", zebra_stripes=False)
            table.add_column("profile")
            yield table
            with ScrollableContainer(id="profile-view"):
                yield Static("", id="profile-plan")
                yield Static("", id="profile-text")
        yield Static("", id="profile-status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()

    # -- list -----------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        api = self.rig.services.profiles
        table = self.query_one("#profile-list", DataTable)
        table.clear()
        if api is None:
            self.query_one("#profile-text", Static).update("[$text-muted]profiles unavailable[/]")
            return
        try:
            self.refs = list(api.list_profiles())
        except Exception as exc:
            self._status(f"[$error]could not list profiles: {escape(str(exc))}[/]")
            return
        for ref in self.refs:
            table.add_row(ref.name if ref.origin == "user" else f"{ref.name} ·", key=ref.path)
        if not self.refs:
            self.query_one("#profile-text", Static).update(
                "no profiles yet: n creates one from this machine"
            )
            return
        row = next((i for i, r in enumerate(self.refs) if r.name == select), 0)
        table.move_cursor(row=row)
        self.show(self.refs[row])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.refs):
            ref = self.refs[event.cursor_row]
            if ref is not self.current:
                self.show(ref)

    def show(self, ref: Any) -> None:
        self.current = ref
        self.loaded = None
        self.file_values = None
        self._load(ref)

    @work(thread=True, exclusive=True, group="profile-show", exit_on_error=False)
    def _load(self, ref: Any) -> None:
        api = self.rig.services.profiles
        try:
            text = api.read_profile_file(ref.path, "replace")
        except (OSError, UnicodeDecodeError) as exc:
            text = f"# could not read {ref.path}: {getattr(exc, 'strerror', None) or exc}"
        try:
            issues = list(api.check_profile(ref.path, self.rig.topology))
        except Exception as exc:
            issues = [ProfileIssue(ref.path, None, None, f"validation failed: {exc}")]
        profile = None
        if not any(getattr(i, "severity", "error") == "error" for i in issues):
            try:
                profile = api.load_profile(ref.path, topology=self.rig.topology)
            except Exception:  # issues already say why
                profile = None
        self.app.call_from_thread(self._shown, ref, text, issues, profile)
        plan_text = ""
        planner = self.rig.services.plan_profile
        if profile is not None and planner is not None:
            try:
                plan, why = planner(profile)
                plan_text = (render_plan(plan, profile.name) if plan is not None
                             else f"[$text-muted]plan: {escape(why or 'unavailable')}[/]")  # fmt: skip
            except Exception as exc:  # a plan that fails must not take the screen with it
                plan_text = f"[$error]plan failed: {escape(str(exc))}[/]"
        self.app.call_from_thread(self._planned, ref, plan_text)

    def _planned(self, ref: Any, markup: str) -> None:
        if ref is self.current:
            plan = self.query_one("#profile-plan", Static)
            plan.update(markup)
            plan.set_class(bool(markup), "-shown")

    def _shown(self, ref: Any, text: str, issues: list[Any], profile: Any) -> None:
        if ref is not self.current:
            return
        self.loaded = profile
        self.file_values = parse_toml(text)
        self.query_one("#profile-text", Static).update(render_profile(text, issues))
        self.query_one("#profile-plan", Static).update("")
        self.query_one("#profile-plan", Static).set_class(False, "-shown")
        errors = sum(1 for i in issues if getattr(i, "severity", "error") == "error")
        warnings = len(issues) - errors
        verdict = (
            "[$success]valid[/]"
            if not issues
            else f"[$error]{errors} error(s) [/]{warnings} warning(s)"
            if errors
            else f"[$warning]{warnings} warning(s)[/]"
        )
        origin = "your profile" if ref.origin == "user" else "shipped example (· in the list)"
        self._status(f"{verdict} · {origin} · {escape(ref.path)}")

    def _status(self, markup: str) -> None:
        self.query_one("#profile-status", Static).update(markup)

    # -- actions --------------------------------------------------------------------------------
    def _need_current(self) -> Any:
        if self.current is None:
            self.notify("No profile selected.", severity="warning")
        return self.current

    def action_launch(self) -> None:
        if self._need_current():
            self.rig.launch_profile(self.current.path)
            self.notify(f"launching {self.current.name}…")

    def action_validate(self) -> None:
        if self._need_current():
            self.show(self.current)

    def action_edit(self, values: dict[str, str] | None = None) -> None:
        ref = self._need_current()
        if ref is None:
            return
        if ref.origin != "user":
            self.notify(
                f"{ref.name} is a shipped example: duplicate it (y) to edit your own copy.",
                severity="warning",
            )
            return
        if self.file_values is None:
            self.notify(
                f"{ref.name} is not valid TOML (or still loading): fix the line shown first.",
                severity="warning",
            )
            return
        fields = []
        for key, label, kind in FORM_FIELDS:
            current = values[key] if values else file_value_text(self.file_values, key)
            options = (
                MEMORY_POLICIES if kind == "policy" else NUMA_STRATEGIES if kind == "numa" else ()
            )
            fields.append(Field(key, label, current, options))
        original = {key: file_value_text(self.file_values, key) for key, _, _ in FORM_FIELDS}

        def done(result: dict[str, str] | None) -> None:
            if result is not None:
                self._save_form(ref, result, original)

        self.app.push_screen(
            FormModal(f"Edit {ref.name}", fields, note="Empty fields are removed from the file."),
            done,
        )

    def _save_form(self, ref: Any, result: dict[str, str], original: dict[str, str]) -> None:
        kinds = {key: kind for key, _, kind in FORM_FIELDS}
        changes: dict[str, Any] = {}
        try:
            for key, text in result.items():
                if text.strip() == original.get(key, "").strip():
                    continue  # untouched: leave the file's own spelling alone
                changes[key] = form_value_to_toml(kinds[key], text)
        except ValueError as exc:
            self.notify(f"Not saved: {exc}", severity="error")
            self.action_edit(result)
            return
        if not changes:
            self.notify("Nothing changed.")
            return
        try:
            self.rig.services.profiles.update_profile(ref.path, changes)
        except Exception as exc:
            self.notify(f"Could not save {ref.path}: {exc}", severity="error")
            return
        self.notify(f"Saved {', '.join(changes)} to {Path(ref.path).name}")
        self.show(ref)

    def action_new(self) -> None:
        fields = [
            Field("name", "name", "", placeholder="my-model"),
            Field("model", "model (GGUF path or demo:SIZE)", "demo:8M"),
        ]

        def done(result: dict[str, str] | None) -> None:
            if result is None:
                return
            name, model = result["name"].strip(), result["model"].strip()
            if not name or "/" in name:
                self.notify("A profile needs a name (letters, digits, - and _).", severity="error")
                return
            api = self.rig.services.profiles
            path = Path(api.user_profile_dir()) / f"{name}.toml"
            if path.exists():
                self.notify(f"{path} already exists.", severity="error")
                return
            try:
                text = api.new_profile_text(self.rig.topology, name, model or "demo:8M")
                api.save_profile_text(path, text)
            except Exception as exc:
                self.notify(f"Could not create {name}: {exc}", severity="error")
                return
            self.notify(f"Created {path}")
            self.reload(select=name)

        self.app.push_screen(
            FormModal(
                "New profile from this machine",
                fields,
                note="Threads = physical cores of the used nodes; memory interleaved across "
                "sockets. Edit it afterwards (e).",
            ),
            done,
        )

    def action_duplicate(self) -> None:
        ref = self._need_current()
        if ref is None:
            return

        def done(result: dict[str, str] | None) -> None:
            if result is None:
                return
            name = result["name"].strip()
            try:
                self.rig.services.profiles.duplicate_profile(ref.path, name)
            except Exception as exc:
                self.notify(f"Could not duplicate: {exc}", severity="error")
                return
            self.notify(f"Duplicated {ref.name} as {name}")
            self.reload(select=name)

        self.app.push_screen(
            FormModal(f"Duplicate {ref.name}", [Field("name", "new name", f"{ref.name}-copy")]),
            done,
        )

    def action_delete(self) -> None:
        ref = self._need_current()
        if ref is None:
            return
        if ref.origin != "user":
            self.notify(
                f"{ref.name} is a shipped example and cannot be deleted.", severity="warning"
            )
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.rig.services.profiles.delete_profile(ref.path)
            except Exception as exc:
                self.notify(f"Could not delete: {exc}", severity="error")
                return
            self.notify(f"Deleted {ref.path}")
            self.current = None
            self.reload()

        self.app.push_screen(ConfirmModal(f"Delete profile {ref.name}?\n{ref.path}"), done)

