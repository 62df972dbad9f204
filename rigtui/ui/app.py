"""The rigtui Textual app: one sample poll, any number of engines, the screens of the registry
(`rigtui.ui.screens.REGISTRY`, one Textual mode each).

Data flow (DESIGN.md): a thread worker calls `Services.source.sample()` and posts `SampleReady`;
the engines are owned by `rigtui.engine.supervisor.EngineSupervisor`, whose frozen snapshots
arrive as `EnginesChanged` (post_message is thread-safe); handlers store the snapshot and ask
only the *active* screen to render it. The next poll is scheduled when the last one has been
handled, so polls never overlap. The engine actions and views are `rigtui.ui.engines.EngineViews`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from rigtui.model.sample import Sample
from rigtui.ui.engines import EngineViews
from rigtui.ui.instances import HISTORY, Instance
from rigtui.ui.messages import SampleReady, SourceFailed
from rigtui.ui.screens import REGISTRY, SCREENS
from rigtui.ui.screens import bindings as screen_bindings
from rigtui.ui.services import ReplayEnded, Services

RENDER_EVERY_S = 0.5  # panels redraw at most this often while an engine streams


class RigApp(EngineViews, App[int]):
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
        self.history: deque[Sample] = deque(maxlen=HISTORY)
        self.latest: Sample | None = None
        self.source_note: str | None = None
        self.instances: dict[str, Instance] = {}
        self.selected: str | None = None
        self.prepare: tuple[str, float | None] | None = None  # demo model generation, etc.
        self.membench: Any = None  # the cached `rigtui bench mem` result, for the roofline
        self.app_note: str | None = None  # where the app runs beside its engines (place_app)
        self._engine_cpus: frozenset[int] = frozenset()  # the CPUs the app was last placed off
        self._bindings_shape: bool | None = None  # several engines or not, as the footer shows
        self.quitting = False
        self._engines_version = 0
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
            return len(self.instances) > 1  # False hides it (None would only dim it)
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
        self.history.append(sample)
        by_name = {inst.name: inst for inst in self.instances.values()}
        for eng in sample.engines:
            inst = by_name.get(eng.instance)
            if inst is None and self.services.mode == "replay":
                inst = self._new_instance(eng.profile or eng.instance, eng)
                by_name[eng.instance] = inst
            if inst is None:
                continue
            if not inst.supervised:  # a replay: the recording is the only source of stats
                inst.stats = eng
            if eng.gen_tok_s is not None:
                inst.gen_history.append(eng.gen_tok_s)
            if eng.prompt_tok_s is not None:
                inst.prompt_history.append(eng.prompt_tok_s)
        self._refresh_active()

    def _refresh_active(self) -> None:
        if not self.screen_stack:  # the app is shutting down
            return
        screen = self.screen
        refresh = getattr(screen, "refresh_data", None)
        if refresh is not None and screen.is_attached:
            refresh()

    def _schedule_render(self) -> None:
        if not self._render_pending:
            self._render_pending = True
            self.set_timer(RENDER_EVERY_S, self._render_now)

    def _render_now(self) -> None:
        self._render_pending = False
        self._refresh_active()
