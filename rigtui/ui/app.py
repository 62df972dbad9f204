"""The rigtui Textual app: one sample poll, any number of engines, the screens of the registry
(`rigtui.ui.screens.REGISTRY`, one Textual mode each).

Data flow (DESIGN.md): a thread worker calls `Services.source.sample()` and posts `SampleReady`;
the engines are owned by `rigtui.engine.supervisor.EngineSupervisor` (launch, events, fold,
stop), whose frozen snapshots arrive as `EnginesChanged` (post_message is thread-safe); the
handler (main thread) hands them to the `EngineBoard` (rigtui.ui.instances), which makes a new
frozen `Instance` per launch, and asks only the *active* screen to render. No engine thread
writes into UI objects, and the UI holds no engine object. The next poll is scheduled when the
last one has been handled, so polls never overlap. Each launch has a key "1", "2", …; the Run
screen and `x` act on the selected one (`s` cycles). Engines are built with `log_events=False`
(see `rigtui.commands.tui`): llama.cpp's log stays in the engine's bounded `log_tail`, copied
into the view when it failed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from rigtui.engine.supervisor import EnginesSnapshot, EngineSupervisor, Streamed
from rigtui.model.engine import Done, EngineEvent, EngineStats, Loaded, Progress, Text, Token
from rigtui.model.sample import Sample
from rigtui.ui.instances import HISTORY, EngineBoard, Instance
from rigtui.ui.messages import EnginesChanged, PrepareProgress, SampleReady, SourceFailed
from rigtui.ui.screens import REGISTRY, SCREENS
from rigtui.ui.screens import bindings as screen_bindings
from rigtui.ui.screens.base import RigScreen
from rigtui.ui.services import ReplayEnded, Services

RENDER_EVERY_S = 0.5  # panels redraw at most this often while an engine streams
QUIT_CAP_S = 6.0  # quit exits after this even when an engine has not confirmed its stop
# What streams (tokens, reply text, progress) reaches the app at most this often as one
# snapshot: the Run screen appends the new text; the other screens redraw at the sample rate.
STREAM_EVERY_S = 0.1  # what streams, coalesced, while a screen shows it (Run)
STREAM_AWAY_S = 1.0  # ... while no screen does: the stats follow at the sample rate anyway


class RigApp(App[int]):
    """The dashboard and launcher. Give it a `Services`; it does no I/O of its own."""

    CSS_PATH = "rigtui.tcss"
    TITLE = "rigtui"
    ENABLE_COMMAND_PALETTE = True
    MODES: ClassVar = SCREENS
    DEFAULT_MODE = "dashboard"

    BINDINGS: ClassVar = [
        *screen_bindings(),  # d t p r c b f: one per screen in the registry
        Binding("s", "next_engine", "Engine", tooltip="Select the next running engine"),
        Binding("x", "stop_engine", "Stop", tooltip="Stop the selected engine"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="This help (Esc closes)"),
        Binding("q", "quit", "Quit", tooltip="Quit (stops the engines)"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._signal_loop: Any = None  # the app's loop, for what other threads ask of it
        self.topology = services.topology
        self.history: tuple[Sample, ...] = ()  # the last HISTORY samples, oldest first
        self.latest: Sample | None = None
        self.source_note: str | None = None
        self.board = EngineBoard()  # the launches as the UI shows them (frozen Instances)
        self.prepare: tuple[str, float | None] | None = None  # demo model generation, etc.
        self.membench: Any = None  # the cached `rigtui bench mem` result, for the roofline
        self.app_note: str | None = None  # where the app runs beside its engines (place_app)
        self._engine_cpus: frozenset[int] = frozenset()  # the CPUs the app was last placed off
        self._bindings_shape: tuple[bool, bool] | None = None  # what the footer shows depends on
        self.quitting = False
        self._exiting = False
        self.supervisor = self._make_supervisor()
        self._poll_started = 0.0
        self._render_pending = False
        self._stopped = False

    # -- modes ----------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._quit_on_signals()
        if self.services.load_membench is not None:
            self._load_membench()
        if self.services.source is not None:
            self._start_poll()
        if self.services.launch:
            self.launch_profile(self.services.launch)

    def get_driver_class(self) -> Any:
        """Textual's driver for this terminal, made safe against the terminal closing under
        the app (ui/driver.py). The web driver (textual-serve) is left as it is."""
        from textual.drivers.linux_driver import LinuxDriver

        from rigtui.ui.driver import hangup_safe

        base = super().get_driver_class()
        return hangup_safe(base, self._terminal_gone) if issubclass(base, LinuxDriver) else base

    def _terminal_gone(self) -> None:
        """From the writer thread, once: quit as `q` does (the engines stopped)."""
        loop = self._signal_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.call_next, self.action_quit)

    def _quit_on_signals(self) -> None:
        """SIGTERM and SIGHUP quit as `q` does: engines stopped, and the terminal given back
        out of the alternate screen and mouse mode (the default action killed the process
        with both still on, and the engines running). A second one quits at once."""
        import asyncio
        import signal

        try:
            loop = self._signal_loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, lambda: self.call_next(self.action_quit))
        except (RuntimeError, NotImplementedError, ValueError):  # not the main thread's loop
            pass

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
        from rigtui.ui.screens.help import HelpScreen, other_keys

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen(self.help_notes(), other_keys(self.BINDINGS)))

    def help_notes(self) -> list[str]:
        """Live details the panels shorten: each socket's full memory-traffic reason."""
        notes = []
        if self.latest is not None:
            for t in self.latest.memory_traffic:
                if t.reason:
                    notes.append(f"socket {t.socket} memory traffic: {t.reason}")
        return notes

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_engine":  # only worth a footer slot with two engines or more
            return len(self.board.instances) > 1  # False hides it (None would only dim it)
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in REGISTRY:
            yield SystemCommand(f"Go to {entry.title}", f"{entry.summary} (key {entry.key})",
                                lambda n=entry.name: self.action_screen(n))  # fmt: skip
        yield SystemCommand("Stop engine", "stop the selected engine", self.action_stop_engine)
        yield SystemCommand("Next engine", "select the next engine", self.action_next_engine)
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
        # every running engine: the estimate sums their generation, each has its own stats
        engines = self.engine_stats_for_sampling()
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
        self.history = (*self.history[-(HISTORY - 1) :], sample)
        if self.board.record_sample(sample.engines, replay=self.services.mode == "replay"):
            self._bindings_changed()
        self._refresh_active()

    def _refresh_active(self) -> None:
        if not self.screen_stack:  # the app is shutting down
            return
        screen = self.screen
        if isinstance(screen, RigScreen) and screen.is_attached:
            screen.refresh_data()

    def _schedule_render(self) -> None:
        if not self._render_pending:
            self._render_pending = True
            self.set_timer(RENDER_EVERY_S, self._render_now)

    def _render_now(self) -> None:
        self._render_pending = False
        self._refresh_active()

    # -- wiring ---------------------------------------------------------------------------------
    def _make_supervisor(self) -> EngineSupervisor | None:
        services = self.services
        if services.engine_factory is None or services.profiles is None:
            return None
        return EngineSupervisor(
            services.engine_factory, services.profiles.load_profile, topology=self.topology,
            prepare=services.prepare_launch,
            publish=lambda snap, key, ev: self.post_message(EnginesChanged(snap, key, ev)),
            progress=lambda what, frac: self.post_message(PrepareProgress(what, frac)),
            stream_interval=STREAM_AWAY_S,  # the Run screen asks for STREAM_EVERY_S (follow_stream)
        )  # fmt: skip

    def follow_stream(self, on: bool) -> None:
        """The rate streamed snapshots come at: STREAM_EVERY_S while the screen shows the text
        as it streams, STREAM_AWAY_S while it shows the stats only (each snapshot is a message
        and a new board on the UI thread, beside an engine that meets at barriers)."""
        if self.supervisor is not None:
            self.supervisor.stream_interval = STREAM_EVERY_S if on else STREAM_AWAY_S

    def engine_stats_for_sampling(self) -> tuple[EngineStats, ...]:
        """Every started engine's stats (thread-safe: the poll thread calls it)."""
        sup = self.supervisor
        return sup.snapshot().stats if sup is not None else ()

    # -- the selected instance, as the screens read it ------------------------------------------
    @property
    def current(self) -> Instance | None:
        """The selected launch (the Run screen and `x` act on it)."""
        return self.board.current

    # -- launch ---------------------------------------------------------------------------------
    def launch_profile(self, name_or_path: str) -> None:
        """Load, prepare (demo model) and start a profile; its events follow. A profile launched
        while others run starts one more engine (one model per NUMA node)."""
        sup = self.supervisor
        if sup is None:
            self.notify(
                f"No live engine in {self.services.mode} mode: run plain `rigtui` to launch.",
                severity="warning",
            )
            return
        if self.quitting:
            return
        stem = Path(str(name_or_path)).stem  # "demo" and ".../examples/demo.toml" are one
        same = [i for i in self.board.running() if Path(i.profile).stem == stem]
        key = sup.launch(str(name_or_path))
        self.board.selected = key
        self._apply(sup.snapshot())  # may be newer than the messages still queued: draw it now
        self._refresh_active()
        if same:
            self.notify(
                f"{name_or_path} already runs as engine {same[0].key}: a second one shares its "
                "CPUs and memory bandwidth.",
                severity="warning",
            )

    def on_prepare_progress(self, msg: PrepareProgress) -> None:
        self.prepare = (msg.what, msg.fraction) if msg.what else None
        self._refresh_active()

    def _apply(self, snap: EnginesSnapshot) -> None:
        """Hand the supervisor's snapshot to the board (main thread only)."""
        board = self.board
        for key in board.apply(snap):
            inst = board.instances[key]
            if key == board.selected and self.services.set_pid is not None:
                self.services.set_pid(inst.pid)
        self._bindings_changed()
        self._place_app()

    def _place_app(self) -> None:
        """Move the app off the CPUs its running engines compute on, when those change."""
        place = self.services.place_app
        if place is None:
            return
        cpus = self.board.engine_cpus()
        if cpus != self._engine_cpus:
            self._engine_cpus = cpus
            try:
                self.app_note = place(set(cpus))
            except Exception as exc:  # never a reason to stop showing the engine
                self.app_note = f"could not move the app off the engines' CPUs: {exc}"

    def _bindings_changed(self) -> None:
        """Refresh the footer when what `check_action` decides changed (several engines, any
        engine): a refresh recomposes the footer, which must not happen per snapshot."""
        n = len(self.board.instances)
        shape = (n > 1, n > 0)  # `s` wants two engines; the dashboard's `l`, none
        if shape != self._bindings_shape:
            self._bindings_shape = shape
            self.refresh_bindings()

    def on_engines_changed(self, msg: EnginesChanged) -> None:
        if not self.screen_stack:  # shutting down: an engine's last events arrive after the UI
            return
        before = self.board.instances.get(msg.key or "")
        failed_before = before is not None and before.note is not None
        self._apply(msg.snapshot)
        inst = self.board.instances.get(msg.key or "")
        ev = msg.event
        if inst is not None and inst.note and not failed_before:
            self.prepare = None
            self.notify(inst.note, title="Launch failed", severity="error", timeout=8)
        if inst is not None and ev is not None and not isinstance(ev, Streamed):
            self._engine_event(inst, ev)
        if isinstance(ev, (Streamed, Token, Text, Progress)):  # what streams
            # The Run screen appends the new text; every other screen shows the stats at the
            # sample rate (the next poll redraws them), not per snapshot: a repaint of the
            # panels costs the engine a share of a core it meets at every layer's barrier.
            screen = self.screen
            if isinstance(screen, RigScreen) and screen.is_attached and screen.stream_update():
                pass
            elif self.services.source is None:  # no poll to carry the stats: redraw now and then
                self._schedule_render()
        else:
            self._refresh_active()

    def _engine_event(self, inst: Instance, ev: EngineEvent) -> None:
        if isinstance(ev, Done):
            if self.services.source is None:  # no sampler to carry the stats over time
                self.board.record_rates(inst.key, ev.gen_tok_s, ev.prompt_tok_s)
            if self.supervisor is not None:  # the compute threads exist now: where do they run
                self.supervisor.request_placement(inst.key)
        elif isinstance(ev, Loaded):
            self._compute_bytes_per_token(inst.key, ev.model_path, ev.n_ctx, ev.model_bytes)

    @work(thread=True, group="plan", exit_on_error=False)
    def _compute_bytes_per_token(
        self, key: str, model_path: str, n_ctx: int, model_bytes: int
    ) -> None:
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
        self.call_from_thread(self._set_bytes_per_token, key, value, basis)

    def _set_bytes_per_token(self, key: str, value: float | None, basis: str) -> None:
        self.board.set_bytes_per_token(key, value, basis)
        if key == self.board.selected and self.services.set_bytes_per_token is not None:
            self.services.set_bytes_per_token(value)
        self._refresh_active()

    def send_prompt(self, text: str, max_tokens: int | None = None) -> bool:
        """Ask the selected engine (`max_tokens` None: its profile's sampling.max_tokens)."""
        if self.supervisor is None or self.current is None:
            self.notify("No engine running: launch a profile first (p, then l).", severity="warning")
            return False
        why = self.supervisor.prompt(self.board.selected, text, max_tokens)
        if why is not None:
            self.notify(why, severity="warning" if why.startswith("No engine") else "information")
            return False
        self._apply(self.supervisor.snapshot())
        return True

    def cancel_reply(self) -> None:
        if self.supervisor is not None:
            self.supervisor.cancel(self.board.selected)

    # -- select, stop, quit ---------------------------------------------------------------------
    def select_instance(self, key: str) -> None:
        inst = self.board.instances.get(key)
        if inst is None:
            return
        self.board.selected = key
        if self.services.set_pid is not None:
            self.services.set_pid(inst.pid if inst.started else None)
        if self.services.set_bytes_per_token is not None and inst.bytes_per_token is not None:
            self.services.set_bytes_per_token(inst.bytes_per_token)
        self._refresh_active()

    def action_next_engine(self) -> None:
        keys = list(self.board.instances)
        if len(keys) < 2:
            self.notify("Only one engine: launch another profile to switch between them.")
            return
        i = keys.index(self.board.selected) if self.board.selected in keys else -1
        nxt = keys[(i + 1) % len(keys)]
        self.select_instance(nxt)
        inst = self.board.instances[nxt]
        self.notify(f"engine {nxt}: {inst.profile} ({inst.stats.state.value})", timeout=2)

    def action_stop_engine(self) -> None:
        inst = self.current
        if inst is None or not inst.started or not inst.active or self.supervisor is None:
            self.notify(
                "No engine running." if inst is None else f"Engine {inst.key} is not running."
            )
            return
        self.supervisor.stop(inst.key, on_done=lambda key, error: self.call_from_thread(
            self._engine_stopped, key, error))  # fmt: skip

    def _engine_stopped(self, key: str, error: str | None) -> None:
        if error:
            self.notify(error, severity="error")
            return
        inst = self.board.instances.get(key)
        if inst is None:
            return
        others = [i for i in self.board.running() if i.key != key]
        if key == self.board.selected and others:  # keep talking to something that runs
            if self.supervisor is not None:
                self.supervisor.forget(key)
            self.board.forget(key)
            self.select_instance(others[0].key)
            self._bindings_changed()
        elif key == self.board.selected and self.services.set_pid is not None:
            self.services.set_pid(None)
        self.notify(f"engine {key} ({inst.profile}) stopped")
        self._refresh_active()

    async def action_quit(self) -> None:
        """Stop every engine in a worker (each child runs in its own session and would outlive
        the UI), show `stopping…`, and exit when they are gone or after QUIT_CAP_S."""
        if self.quitting:  # a second q: the user does not want to wait
            self._exit_now()
            return
        self.quitting = True
        self._stopped = True
        sup = self.supervisor
        if sup is not None:
            sup.closing = True  # a launch still spawning stops its engine itself
        n = sup.active_engines if sup is not None else 0
        if not n:
            self._exit_now()
            return
        self.sub_title = "stopping…"
        self.notify(f"stopping {n} engine{'s' if n > 1 else ''}… (q again quits now)",
                    timeout=QUIT_CAP_S)  # fmt: skip
        self._refresh_active()
        self.set_timer(QUIT_CAP_S, self._exit_now)
        self._stop_all()

    @work(thread=True, group="quit", exit_on_error=False)
    def _stop_all(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all(QUIT_CAP_S - 0.2)
        with contextlib.suppress(RuntimeError):  # the app may have exited already
            self.call_from_thread(self._exit_now)

    def _exit_now(self) -> None:
        if self._exiting:
            return
        self._exiting = True
        source = self.services.source
        if source is not None:
            with contextlib.suppress(Exception):  # closing counters must not block quitting
                source.close()
        self.exit(0)
