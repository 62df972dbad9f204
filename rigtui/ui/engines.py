"""The app's engine actions and views over `rigtui.engine.supervisor.EngineSupervisor`.

The supervisor owns every engine (launch, events, fold, stop) and publishes a frozen snapshot
per change; it reaches the app as an `EnginesChanged` message, and the handler (main thread)
copies each `InstanceView` into the UI's `Instance` (which adds only UI state: tok/s history for
the sparklines, bytes per token for the roofline). No engine thread writes into UI objects.
Each launch has a key "1", "2", …; the Run screen and `x` act on the selected one (`s` cycles).
Engines are built with `log_events=False` (see `rigtui.commands.tui`): llama.cpp's log stays in
the engine's bounded `log_tail`, read only when the error panel is drawn.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING, Any

from textual import work

from rigtui.engine.supervisor import EnginesSnapshot, EngineSupervisor, Streamed
from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Loaded,
    Progress,
    Text,
    Token,
)
from rigtui.ui.instances import Instance
from rigtui.ui.messages import EnginesChanged, PrepareProgress

if TYPE_CHECKING:
    from rigtui.ui.app import RigApp

QUIT_CAP_S = 6.0  # quit exits after this even when an engine has not confirmed its stop
# What streams (tokens, reply text, progress) reaches the app at most this often as one
# snapshot: the Run screen appends the new text; the other screens redraw at the sample rate.
STREAM_EVERY_S = 0.1


class EngineViews:
    """Engine actions and the selected instance's views, as `RigApp` methods."""

    # -- wiring ---------------------------------------------------------------------------------
    def _make_supervisor(self: RigApp) -> EngineSupervisor | None:
        services = self.services
        if services.engine_factory is None or services.profiles is None:
            return None
        return EngineSupervisor(
            services.engine_factory, services.profiles.load_profile, topology=self.topology,
            prepare=services.prepare_launch,
            publish=lambda snap, key, ev: self.post_message(EnginesChanged(snap, key, ev)),
            progress=lambda what, frac: self.post_message(PrepareProgress(what, frac)),
            stream_interval=STREAM_EVERY_S,
        )  # fmt: skip

    def engine_stats_for_sampling(self: RigApp) -> tuple[EngineStats, ...]:
        """Every started engine's stats (thread-safe: the poll thread calls it)."""
        sup = self.supervisor
        return sup.snapshot().stats if sup is not None else ()

    # -- the selected instance, as the screens read it ------------------------------------------
    @property
    def current(self: RigApp) -> Instance | None:
        return self.instances.get(self.selected) if self.selected else None

    @property
    def engine(self: RigApp) -> Any:
        """The selected engine's object, held by the supervisor (None when not started)."""
        inst, sup = self.current, self.supervisor
        return sup.engine(inst.key) if inst and inst.started and sup is not None else None

    @property
    def engine_stats(self: RigApp) -> EngineStats | None:
        inst = self.current
        return inst.stats if inst else None

    @property
    def engine_note(self: RigApp) -> str | None:
        inst = self.current
        return inst.note if inst else None

    @property
    def engine_issues(self: RigApp) -> tuple[Any, ...]:
        inst = self.current
        return inst.issues if inst else ()

    @property
    def gen_history(self: RigApp) -> deque[float]:
        inst = self.current
        return inst.gen_history if inst else deque()

    @property
    def prompt_history(self: RigApp) -> deque[float]:
        inst = self.current
        return inst.prompt_history if inst else deque()

    @property
    def engine_active(self: RigApp) -> bool:
        inst = self.current
        return inst is not None and inst.active

    def running(self: RigApp) -> list[Instance]:
        return [i for i in self.instances.values() if i.active]

    def _new_instance(self: RigApp, profile: str, stats: EngineStats | None = None) -> Instance:
        """An instance known only from a recording (replay mode: no engine behind it)."""
        key = f"r{len(self.instances) + 1}"
        stats = stats or EngineStats(instance=f"ui-{key}", profile=profile, state=EngineState.IDLE)
        inst = Instance(key=key, profile=profile, stats=stats)
        self.instances[key] = inst
        if self.selected is None:
            self.selected = key
        self._bindings_changed()
        return inst

    # -- launch ---------------------------------------------------------------------------------
    def launch_profile(self: RigApp, name_or_path: str) -> None:
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
        from pathlib import Path

        stem = Path(str(name_or_path)).stem  # "demo" and ".../examples/demo.toml" are one
        same = [i for i in self.running() if Path(i.profile).stem == stem]
        key = sup.launch(str(name_or_path))
        self.selected = key
        self._apply(sup.snapshot())
        if same:
            self.notify(
                f"{name_or_path} already runs as engine {same[0].key}: a second one shares its "
                "CPUs and memory bandwidth.",
                severity="warning",
            )

    def on_prepare_progress(self: RigApp, msg: PrepareProgress) -> None:
        self.prepare = (msg.what, msg.fraction) if msg.what else None
        self._refresh_active()

    def _apply(self: RigApp, snap: EnginesSnapshot) -> None:
        """Copy the supervisor's snapshot into the UI's instances (main thread only)."""
        if snap.version < self._engines_version:
            return  # an older snapshot overtaken by one already applied
        self._engines_version = snap.version
        keys = {v.key for v in snap.instances}
        for key in [k for k, i in self.instances.items() if i.supervised and k not in keys]:
            del self.instances[key]
        for view in snap.instances:
            inst = self.instances.get(view.key)
            if inst is None:
                inst = self.instances[view.key] = Instance(key=view.key, profile=view.profile,
                                                           stats=view.stats, supervised=True)  # fmt: skip
            was_started = inst.started
            inst.apply(view)
            newly = inst.started and not was_started
            if newly and view.key == self.selected and self.services.set_pid is not None:
                self.services.set_pid(view.pid)
        if self.selected not in self.instances:
            self.selected = next(iter(self.instances), None)
        self._bindings_changed()
        self._place_app()

    def _place_app(self: RigApp) -> None:
        """Move the app off the CPUs its running engines compute on, when those change."""
        place = self.services.place_app
        if place is None:
            return
        cpus = frozenset(c for i in self.instances.values() if i.active for c in i.stats.cpus)
        if cpus != self._engine_cpus:
            self._engine_cpus = cpus
            try:
                self.app_note = place(set(cpus))
            except Exception as exc:  # never a reason to stop showing the engine
                self.app_note = f"could not move the app off the engines' CPUs: {exc}"

    def _bindings_changed(self: RigApp) -> None:
        """Refresh the footer when what `check_action` decides changed (several engines or
        not): a refresh recomposes the footer, which must not happen per snapshot."""
        shape = len(self.instances) > 1
        if shape != self._bindings_shape:
            self._bindings_shape = shape
            self.refresh_bindings()

    def on_engines_changed(self: RigApp, msg: EnginesChanged) -> None:
        if not self.screen_stack:  # shutting down: an engine's last events arrive after the UI
            return
        before = self.instances.get(msg.key or "")
        failed_before = before is not None and before.note is not None
        self._apply(msg.snapshot)
        inst = self.instances.get(msg.key or "")
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
            stream = getattr(self.screen, "stream_update", None)
            if stream is not None and self.screen.is_attached:
                stream()
            elif self.services.source is None:  # no poll to carry the stats: redraw now and then
                self._schedule_render()
        else:
            self._refresh_active()

    def _engine_event(self: RigApp, inst: Instance, ev: EngineEvent) -> None:
        if isinstance(ev, Done):
            if self.services.source is None:  # no sampler to carry the stats over time
                if ev.gen_tok_s is not None:
                    inst.gen_history.append(ev.gen_tok_s)
                if ev.prompt_tok_s is not None:
                    inst.prompt_history.append(ev.prompt_tok_s)
            if self.supervisor is not None:  # the compute threads exist now: where do they run
                self.supervisor.request_placement(inst.key)
        elif isinstance(ev, Loaded):
            self._compute_bytes_per_token(inst.key, ev.model_path, ev.n_ctx, ev.model_bytes)
        if inst.key == self.selected:
            handler = getattr(self.screen, "engine_event", None)
            if handler is not None:
                handler(ev)

    @work(thread=True, group="plan", exit_on_error=False)
    def _compute_bytes_per_token(
        self: RigApp, key: str, model_path: str, n_ctx: int, model_bytes: int
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

    def _set_bytes_per_token(self: RigApp, key: str, value: float | None, basis: str) -> None:
        inst = self.instances.get(key)
        if inst is not None:
            inst.bytes_per_token, inst.bytes_per_token_basis = value, basis
        if key == self.selected and self.services.set_bytes_per_token is not None:
            self.services.set_bytes_per_token(value)
        self._refresh_active()

    def send_prompt(self: RigApp, text: str, max_tokens: int | None = None) -> bool:
        """Ask the selected engine (`max_tokens` None: its profile's sampling.max_tokens)."""
        if self.supervisor is None or self.current is None:
            self.notify("No engine running: launch a profile first (p, then l).", severity="warning")
            return False
        why = self.supervisor.prompt(self.selected, text, max_tokens)
        if why is not None:
            self.notify(why, severity="warning" if why.startswith("No engine") else "information")
            return False
        self._apply(self.supervisor.snapshot())
        return True

    def cancel_reply(self: RigApp) -> None:
        if self.supervisor is not None:
            self.supervisor.cancel(self.selected)

    # -- select, stop, quit ---------------------------------------------------------------------
    def select_instance(self: RigApp, key: str) -> None:
        inst = self.instances.get(key)
        if inst is None:
            return
        self.selected = key
        if self.services.set_pid is not None:
            self.services.set_pid(inst.pid if inst.started else None)
        if self.services.set_bytes_per_token is not None and inst.bytes_per_token is not None:
            self.services.set_bytes_per_token(inst.bytes_per_token)
        self._refresh_active()

    def action_next_engine(self: RigApp) -> None:
        keys = list(self.instances)
        if len(keys) < 2:
            self.notify("Only one engine: launch another profile to switch between them.")
            return
        i = keys.index(self.selected) if self.selected in keys else -1
        nxt = keys[(i + 1) % len(keys)]
        self.select_instance(nxt)
        inst = self.instances[nxt]
        self.notify(f"engine {nxt}: {inst.profile} ({inst.stats.state.value})", timeout=2)

    def action_stop_engine(self: RigApp) -> None:
        inst = self.current
        if inst is None or not inst.started or not inst.active or self.supervisor is None:
            self.notify(
                "No engine running." if inst is None else f"Engine {inst.key} is not running."
            )
            return
        self.supervisor.stop(inst.key, on_done=lambda key, error: self.call_from_thread(
            self._engine_stopped, key, error))  # fmt: skip

    def _engine_stopped(self: RigApp, key: str, error: str | None) -> None:
        if error:
            self.notify(error, severity="error")
            return
        inst = self.instances.get(key)
        if inst is None:
            return
        others = [i for i in self.running() if i.key != key]
        if key == self.selected and others:  # keep talking to something that runs
            if self.supervisor is not None:
                self.supervisor.forget(key)
            self.instances.pop(key, None)
            self.select_instance(others[0].key)
            self.refresh_bindings()
        elif key == self.selected and self.services.set_pid is not None:
            self.services.set_pid(None)
        self.notify(f"engine {key} ({inst.profile}) stopped")
        self._refresh_active()

    async def action_quit(self: RigApp) -> None:
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
    def _stop_all(self: RigApp) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all(QUIT_CAP_S - 0.2)
        with contextlib.suppress(RuntimeError):  # the app may have exited already
            self.call_from_thread(self._exit_now)

    def _exit_now(self: RigApp) -> None:
        if getattr(self, "_exiting", False):
            return
        self._exiting = True
        source = self.services.source
        if source is not None:
            with contextlib.suppress(Exception):  # closing counters must not block quitting
                source.close()
        self.exit(0)
