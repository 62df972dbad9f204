"""The rigtui Textual app: one sample poll, one engine, six screens (modes).

Data flow (DESIGN.md): a thread worker calls `Services.source.sample()` and posts `SampleReady`;
engine events arrive from the engine's reader thread as `EngineEventMsg` (post_message is
thread-safe); handlers store the snapshot and ask only the *active* screen to render it. The next
poll is scheduled when the last one has been handled, so polls never overlap.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Loaded,
    Log,
    Token,
)
from rigtui.model.sample import Sample
from rigtui.ui.messages import (
    EngineChanged,
    EngineEventMsg,
    PrepareProgress,
    SampleReady,
    SourceFailed,
)
from rigtui.ui.screens import SCREENS
from rigtui.ui.services import ReplayEnded, Services

HISTORY = 120  # samples kept for sparklines (2 minutes at the default 1 s)
LOG_LINES = 40  # engine log lines kept for the error panel
RENDER_EVERY_S = 0.25  # engine panels redraw at most this often while tokens stream

ACTIVE_STATES = {
    EngineState.STARTING,
    EngineState.LOADING,
    EngineState.READY,
    EngineState.GENERATING,
}


class RigApp(App[int]):
    """The dashboard and launcher. Give it a `Services`; it does no I/O of its own."""

    CSS_PATH = "rigtui.tcss"
    TITLE = "rigtui"
    ENABLE_COMMAND_PALETTE = True
    MODES: ClassVar = SCREENS
    DEFAULT_MODE = "dashboard"

    BINDINGS: ClassVar = [
        Binding("d", "screen('dashboard')", "Dash", tooltip="Dashboard"),
        Binding("t", "screen('topology')", "Topo", tooltip="Topology"),
        Binding("p", "screen('profiles')", "Profiles"),
        Binding("r", "screen('run')", "Run"),
        Binding("c", "screen('checks')", "Checks"),
        Binding("b", "screen('bench')", "Bench"),
        Binding("x", "stop_engine", "Stop", tooltip="Stop the running engine"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.topology = services.topology
        self.history: deque[Sample] = deque(maxlen=HISTORY)
        self.latest: Sample | None = None
        self.source_note: str | None = None
        self.engine: Any = None
        self.engine_stats: EngineStats | None = None
        self.engine_note: str | None = None  # why the last launch failed before the engine ran
        self.engine_issues: tuple[Any, ...] = ()  # ProfileIssue list of a profile that failed
        self.engine_log: deque[str] = deque(maxlen=LOG_LINES)
        self.prepare: tuple[str, float | None] | None = None  # demo model generation, etc.
        self.transcript: list[str] = []  # the chat so far: prompts and streamed replies
        self.gen_history: deque[float] = deque(maxlen=HISTORY)
        self.prompt_history: deque[float] = deque(maxlen=HISTORY)
        self.bytes_per_token: float | None = None
        self.bytes_per_token_basis: str | None = None
        self.membench: Any = None  # the cached `rigtui bench mem` result, for the roofline
        self._poll_started = 0.0
        self._render_pending = False
        self._stopped = False

    # -- modes ----------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.services.load_membench is not None:
            self._load_membench()
        if self.services.source is not None:
            self._start_poll()
        if self.services.launch:
            self.launch_profile(self.services.launch)

    @work(thread=True, group="membench", exit_on_error=False)
    def _load_membench(self) -> None:
        try:
            self.membench = self.services.load_membench()  # type: ignore[misc]
        except Exception:  # a broken cache only means no measured roofline
            self.membench = None

    def action_screen(self, name: str) -> None:
        if self.current_mode != name:
            self.switch_mode(name)

    def action_help(self) -> None:
        from rigtui.ui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        names = {
            "dashboard": "live view of sockets, GPUs and the engine",
            "topology": "sockets, NUMA nodes, caches, DIMMs, GPUs",
            "profiles": "list, validate, edit and launch profiles",
            "run": "prompt the running engine",
            "checks": "sanity checks of this machine",
            "bench": "memory bandwidth results",
        }
        for name, help_text in names.items():
            yield SystemCommand(
                f"Go to {name.title()}", help_text, lambda n=name: self.action_screen(n)
            )
        yield SystemCommand("Stop engine", "stop the running engine", self.action_stop_engine)
        yield SystemCommand("Help", "keys and screens", self.action_help)
        if hasattr(screen, "palette_commands"):
            yield from screen.palette_commands()

    # -- telemetry ------------------------------------------------------------------------------
    def _start_poll(self) -> None:
        if self._stopped:
            return
        self._poll_started = time.monotonic()
        self._collect()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _collect(self) -> None:
        source = self.services.source
        if source is None:
            return
        engines = (self.engine.stats,) if self.engine is not None else ()
        try:
            sample = source.sample(engines)
        except ReplayEnded as exc:
            self.post_message(SourceFailed(str(exc), ended=True))
            return
        except Exception as exc:  # a sampler bug must not kill the dashboard
            self.post_message(SourceFailed(f"sampling failed: {type(exc).__name__}: {exc}"))
            return
        self.post_message(SampleReady(sample))

    def _schedule_next(self) -> None:
        elapsed = time.monotonic() - self._poll_started
        self.set_timer(max(0.05, self.services.interval - elapsed), self._start_poll)

    def on_sample_ready(self, msg: SampleReady) -> None:
        self.ingest_sample(msg.sample)
        self._schedule_next()

    def on_source_failed(self, msg: SourceFailed) -> None:
        self.source_note = msg.reason
        self._refresh_active()
        if msg.ended:
            return
        # keep trying, slower: a transient read error should not freeze the dashboard
        self.set_timer(self.services.interval * 5, self._start_poll)

    def ingest_sample(self, sample: Sample) -> None:
        """Store one sample (from the poll, or a test) and redraw the active screen."""
        self.latest = sample
        self.history.append(sample)
        for eng in sample.engines:
            if eng.gen_tok_s is not None:
                self.gen_history.append(eng.gen_tok_s)
            if eng.prompt_tok_s is not None:
                self.prompt_history.append(eng.prompt_tok_s)
            if self.engine is None and self.services.mode == "replay":
                self.engine_stats = eng
        self._refresh_active()

    def _refresh_active(self) -> None:
        screen = self.screen
        refresh = getattr(screen, "refresh_data", None)
        if refresh is not None and screen.is_attached:
            refresh()

    # -- engine ---------------------------------------------------------------------------------
    @property
    def engine_active(self) -> bool:
        return self.engine_stats is not None and self.engine_stats.state in ACTIVE_STATES

    def launch_profile(self, name_or_path: str) -> None:
        """Prepare (demo model), load and start a profile in a thread; events follow."""
        if self.services.engine_factory is None or self.services.profiles is None:
            self.notify(
                f"No live engine in {self.services.mode} mode: run plain `rigtui` to launch.",
                severity="warning",
            )
            return
        if self.engine is not None and self.engine_active:
            self.notify("An engine is already running: stop it first (x).", severity="warning")
            return
        self.engine_note = None
        self.engine_issues = ()
        self.engine_log.clear()
        self.engine_stats = EngineStats(
            instance="ui", profile=str(name_or_path), state=EngineState.STARTING
        )
        self._refresh_active()
        self._launch(name_or_path)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _launch(self, name_or_path: str) -> None:
        services = self.services
        try:
            profile = services.profiles.load_profile(name_or_path, topology=self.topology)
        except Exception as exc:
            issues = tuple(getattr(exc, "issues", ()) or ())
            self.call_from_thread(self._launch_failed, f"profile {name_or_path}: {exc}", issues)
            return
        if services.prepare_launch is not None:
            try:
                services.prepare_launch(
                    profile,
                    lambda what, frac: self.post_message(PrepareProgress(what, frac)),
                )
            except Exception as exc:
                self.call_from_thread(self._launch_failed, f"preparing {profile.name}: {exc}", ())
                return
            self.post_message(PrepareProgress("", None))
        holder: list[Any] = []

        def on_event(ev: EngineEvent) -> None:
            stats = holder[0].stats if holder else None
            self.post_message(EngineEventMsg(ev, stats))

        try:
            engine = services.engine_factory(profile, on_event)
            holder.append(engine)
            engine.start()
        except Exception as exc:
            self.call_from_thread(self._launch_failed, f"starting {profile.name}: {exc}", ())
            return
        self.engine = engine
        if services.set_pid is not None:
            services.set_pid(engine.pid)
        self.post_message(EngineChanged(engine.stats))

    def _launch_failed(self, note: str, issues: tuple[Any, ...]) -> None:
        self.engine_note = note
        self.engine_issues = issues
        prev = self.engine_stats
        self.engine_stats = EngineStats(
            instance="ui",
            profile=prev.profile if prev else None,
            state=EngineState.FAILED,
            last_error=note,
        )
        self.prepare = None
        self.notify(note, title="Launch failed", severity="error", timeout=8)
        self._refresh_active()

    def on_prepare_progress(self, msg: PrepareProgress) -> None:
        self.prepare = (msg.what, msg.fraction) if msg.what else None
        self._refresh_active()

    def on_engine_changed(self, msg: EngineChanged) -> None:
        if msg.stats is not None:
            self.engine_stats = msg.stats
        if msg.note:
            self.notify(msg.note)
        self._refresh_active()

    def on_engine_event_msg(self, msg: EngineEventMsg) -> None:
        ev = msg.event
        if msg.stats is not None:
            self.engine_stats = msg.stats
        if isinstance(ev, Token):
            self.transcript.append(ev.text)
        elif isinstance(ev, Done):
            self.transcript.append("\n")
            if self.services.source is None:  # no sampler to carry the stats over time
                if ev.gen_tok_s is not None:
                    self.gen_history.append(ev.gen_tok_s)
                if ev.prompt_tok_s is not None:
                    self.prompt_history.append(ev.prompt_tok_s)
        elif isinstance(ev, Log):
            self.engine_log.append(ev.line)
        elif isinstance(ev, Error):
            self.engine_log.append(f"error ({ev.kind}): {ev.message}")
            if ev.hint:
                self.engine_log.append(f"hint: {ev.hint}")
        elif isinstance(ev, Exit):
            for line in ev.stderr_tail:
                if line not in self.engine_log:
                    self.engine_log.append(line)
            self.engine_log.append(f"engine exited: {ev.reason}")
        elif isinstance(ev, Loaded):
            self._compute_bytes_per_token(ev.model_path, ev.n_ctx, ev.model_bytes)
        handler = getattr(self.screen, "engine_event", None)
        if handler is not None:
            handler(ev)
        if isinstance(ev, Token):
            self._schedule_render()
        else:
            self._refresh_active()

    def _schedule_render(self) -> None:
        if not self._render_pending:
            self._render_pending = True
            self.set_timer(RENDER_EVERY_S, self._render_now)

    def _render_now(self) -> None:
        self._render_pending = False
        self._refresh_active()

    @work(thread=True, group="plan", exit_on_error=False)
    def _compute_bytes_per_token(self, model_path: str, n_ctx: int, model_bytes: int) -> None:
        value: float | None = None
        basis = "estimate: model file size (a dense model reads every weight per token)"
        if self.services.bytes_per_token is not None:
            try:
                value = self.services.bytes_per_token(model_path, n_ctx)
                basis = "plan: GGUF tensors read per token"
            except Exception as exc:  # a model the planner cannot read: fall back, say so
                basis = f"estimate: model file size (plan failed: {exc})"
        if value is None and model_bytes:
            value = float(model_bytes)
        self.bytes_per_token, self.bytes_per_token_basis = value, basis
        if self.services.set_bytes_per_token is not None:
            self.services.set_bytes_per_token(value)

    def send_prompt(self, text: str, max_tokens: int = 128) -> bool:
        if self.engine is None or self.engine_stats is None:
            self.notify(
                "No engine running: launch a profile first (p, then l).", severity="warning"
            )
            return False
        if self.engine_stats.state is not EngineState.READY:
            self.notify(f"Engine is {self.engine_stats.state.value}: wait for ready.")
            return False
        self.transcript.append(f"{chr(10) if self.transcript else ''}> {text}\n")
        self.engine.prompt(text, max_tokens=max_tokens)
        return True

    def action_stop_engine(self) -> None:
        if self.engine is None:
            self.notify("No engine running.")
            return
        self._stop_engine()

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _stop_engine(self) -> None:
        engine = self.engine
        if engine is None:
            return
        try:
            engine.stop()
        except Exception as exc:
            self.post_message(EngineChanged(None, note=f"stop failed: {exc}"))
            return
        self.engine = None
        if self.services.set_pid is not None:
            self.services.set_pid(None)
        self.post_message(EngineChanged(engine.stats, note="engine stopped"))

    async def action_quit(self) -> None:
        self._stopped = True
        engine, self.engine = self.engine, None
        # The engine child runs in its own session: stop it here or it would outlive the UI.
        # A failure to stop must not keep the user from quitting.
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.stop()
        source = self.services.source
        if source is not None:
            with contextlib.suppress(Exception):
                source.close()
        self.exit(0)
