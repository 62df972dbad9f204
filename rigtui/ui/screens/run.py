"""Run / chat: prompt the engine, watch the reply stream, live stats, load progress, errors."""

from __future__ import annotations

import time

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, ProgressBar, Static

from rigtui.model.engine import EngineState
from rigtui.ui.fmt import StreamWrap, escape, num, tok_s
from rigtui.ui.instances import printable
from rigtui.ui.panels import STATE_STYLE, set_text
from rigtui.ui.screens.base import RigScreen
from rigtui.ui.transcript import Transcript

STATUS_EVERY_S = 0.5  # the status line's tok/s while a reply streams


class RunScreen(RigScreen):
    FOLLOWS_STREAM = True
    BINDINGS = [
        Binding(
            "escape", "leave_input", "Keys", tooltip="Leave the prompt (screen keys work again)"
        ),
        Binding("i", "focus_input", "Prompt", tooltip="Type a prompt"),
        Binding("ctrl+k", "cancel", "Cancel", priority=True, tooltip="Cancel the reply"),
        Binding("l", "launch", "Launch", tooltip="Launch the --launch profile or demo"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", id="run-status")
        yield ProgressBar(total=1.0, show_eta=False, id="load-progress")
        yield Transcript(id="transcript", highlight=False)
        yield Static("", id="error-panel")
        prompt = Input(placeholder="prompt — Enter sends, Esc leaves", id="prompt", compact=True)
        prompt.cursor_blink = False  # a blink is a repaint twice a second, beside the engine
        yield prompt
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._shown = 0  # transcript characters already written to the Log (its transcript_end)
        self._shown_key: str | None = None  # the engine whose transcript the Log holds
        self._status_t = 0.0  # when the status line was last drawn
        self._wrap = StreamWrap(80)  # replaced at the Log's width when it is first filled

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.query_one("#prompt", Input).focus()

    def action_leave_input(self) -> None:
        self.query_one("#transcript", Transcript).focus()

    def action_focus_input(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_cancel(self) -> None:
        self.rig.cancel_reply()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.rig.send_prompt(text):
            event.input.value = ""
        self._sync_transcript()

    def stream_update(self) -> bool:
        """What streamed since the last snapshot (called at the supervisor's bounded rate):
        the new text is appended; the status line follows at most every STATUS_EVERY_S."""
        self._sync_transcript()
        now = time.monotonic()
        if now - self._status_t >= STATUS_EVERY_S:
            self.refresh_data()
        return True

    def on_resize(self, event: events.Resize) -> None:
        self._shown_key = None  # wrap it all again at the new width
        self._sync_transcript()

    def _sync_transcript(self) -> None:
        inst = self.rig.current
        text, end = (inst.transcript, inst.transcript_end) if inst else ("", 0)
        log = self.query_one("#transcript", Transcript)
        new = end - self._shown
        if self._shown_key != self.rig.board.selected or new < 0 or new > len(text):
            # another engine, a new width, or more came than the transcript keeps: all again
            self._shown_key = self.rig.board.selected
            log.clear()
            self._wrap = StreamWrap(log.scrollable_content_region.width - 1)
            new = len(text)
        if new:
            log.write(self._wrap.feed(printable(text[len(text) - new :])))
        self._shown = end

    def refresh_data(self) -> None:
        self._status_t = time.monotonic()
        rig = self.rig
        inst = rig.current
        stats = inst.stats if inst is not None else None
        self._sync_transcript()
        status = self.query_one("#run-status", Static)
        progress = self.query_one("#load-progress", ProgressBar)
        errors = self.query_one("#error-panel", Static)
        if stats is None:
            hint = (
                "Esc, then l launches the demo profile or p opens profiles"
                if rig.services.engine_factory is not None
                else f"no live engine in {rig.services.mode} mode"
            )
            set_text(status, f"[$text-muted]no engine running — {hint}[/]")
            progress.display = False
            errors.display = False
            return
        style = STATE_STYLE.get(stats.state, "$text")
        ttft = f"{stats.ttft_s * 1000:.0f} ms" if stats.ttft_s is not None else "–"
        which = ""
        if len(rig.board.instances) > 1 and inst is not None:
            which = f"engine {inst.key}/{len(rig.board.instances)} (s switches) · "
        set_text(
            status,
            f"{which}[{style}][b]{stats.state.value.upper()} [/b][/]{escape(stats.profile or '')} · "
            f"gen {tok_s(stats.gen_tok_s)} · prompt {tok_s(stats.prompt_tok_s)} · TTFT {ttft} · "
            f"tokens {stats.n_gen} (total {stats.total_gen})"
        )
        if rig.prepare is not None:
            progress.display = True
            progress.update(total=1.0, progress=rig.prepare[1] or 0.0)
        elif stats.state in (EngineState.STARTING, EngineState.LOADING):
            progress.display = True
            progress.update(total=1.0, progress=stats.load_progress or 0.0)
        else:
            progress.display = False
        if stats.state is EngineState.FAILED:
            why = stats.last_error or (stats.exit.reason if stats.exit else None) or inst.note
            lines = [
                f"[$error][b]Engine failed: [/b]{escape(printable(why or 'unknown reason'))}[/]"
            ]
            for issue in inst.issues:
                lines.append(escape(str(issue)))
            log_lines = inst.log_lines(10)
            if log_lines:
                lines.append("[$text-muted]last engine log lines:[/]")
                lines.extend(escape(line) for line in log_lines)
            set_text(errors, "\n".join(lines))
            errors.display = True
        else:
            errors.display = False
        status.tooltip = f"load {num((stats.load_progress or 0) * 100, '.0f')}%"
