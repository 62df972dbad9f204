"""The app's engines: launch (several at once), fold their events, select one, stop, quit.

Each launch is an `Instance` keyed "1", "2", …; the Run screen and `x` act on the selected one
(`s` cycles). Engines are built with `log_events=False` (see `rigtui.commands.tui`): llama.cpp's
300-700 log lines per load stay in the engine's bounded `log_tail`, read only when the error
panel is drawn, instead of arriving as hundreds of events that each redraw the UI.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work

from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Loaded,
    Log,
    Text,
    Token,
)
from rigtui.ui.instances import Instance
from rigtui.ui.messages import EngineChanged, EngineEventMsg, PrepareProgress

if TYPE_CHECKING:
    from rigtui.ui.app import RigApp

QUIT_CAP_S = 6.0  # quit exits after this even when an engine has not confirmed its stop
STOP_TIMEOUT_S = 4.0  # each engine's own stop: ask, then SIGTERM/SIGKILL its process group


def _stop_quietly(engine: Any) -> None:
    """Stop an engine; a failure to stop must not keep the user from quitting."""
    try:
        engine.stop(timeout=STOP_TIMEOUT_S)
    except TypeError:  # an engine whose stop() takes no timeout
        engine.stop()
    except Exception:
        pass


class EngineMixin:
    """Engine state and actions of `RigApp` (kept apart so each module stays small)."""

    # -- the selected instance, as the screens read it ------------------------------------------
    @property
    def current(self: RigApp) -> Instance | None:
        return self.instances.get(self.selected) if self.selected else None

    @property
    def engine(self: RigApp) -> Any:
        inst = self.current
        return inst.engine if inst else None

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
    def transcript(self: RigApp) -> list[str]:
        inst = self.current
        return inst.transcript if inst else []

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

    # -- launch ---------------------------------------------------------------------------------
    def _new_instance(self: RigApp, profile: str, stats: EngineStats | None = None) -> Instance:
        key = str(self._next_key)
        self._next_key += 1
        stats = stats or EngineStats(
            instance=f"ui-{key}", profile=profile, state=EngineState.STARTING
        )
        inst = Instance(key=key, profile=profile, stats=stats)
        self.instances[key] = inst
        if self.selected is None or not self.engine_active:
            self.selected = key
        self.refresh_bindings()
        return inst

    def launch_profile(self: RigApp, name_or_path: str) -> None:
        """Prepare (demo model), load and start a profile in a thread; events follow. A profile
        launched while others run starts one more engine (one model per NUMA node)."""
        if self.services.engine_factory is None or self.services.profiles is None:
            self.notify(
                f"No live engine in {self.services.mode} mode: run plain `rigtui` to launch.",
                severity="warning",
            )
            return
        if self.quitting:
            return
        # finished launches make room: the panel lists what runs, plus the newest failure
        for key in [k for k, i in self.instances.items() if not i.active]:
            del self.instances[key]
        if self.selected not in self.instances:
            self.selected = None
        stem = Path(str(name_or_path)).stem  # "demo" and ".../examples/demo.toml" are one
        same = [i for i in self.running() if Path(i.profile).stem == stem]
        inst = self._new_instance(str(name_or_path))
        self.selected = inst.key
        if same:
            self.notify(
                f"{name_or_path} already runs as engine {same[0].key}: a second one shares its "
                "CPUs and memory bandwidth.",
                severity="warning",
            )
        self._refresh_active()
        self._launch(inst.key, str(name_or_path))

    @work(thread=True, group="engine", exit_on_error=False)
    def _launch(self: RigApp, key: str, name_or_path: str) -> None:
        services = self.services
        try:
            profile = services.profiles.load_profile(name_or_path, topology=self.topology)
        except Exception as exc:
            issues = tuple(getattr(exc, "issues", ()) or ())
            self.call_from_thread(
                self._launch_failed, key, f"profile {name_or_path}: {exc}", issues
            )
            return
        if services.prepare_launch is not None:
            try:
                services.prepare_launch(
                    profile,
                    lambda what, frac: self.post_message(PrepareProgress(what, frac)),
                )
            except Exception as exc:
                self.call_from_thread(
                    self._launch_failed, key, f"preparing {profile.name}: {exc}", ()
                )
                return
            self.post_message(PrepareProgress("", None))
        holder: list[Any] = []

        def on_event(ev: EngineEvent) -> None:
            stats = holder[0].stats if holder else None
            self.post_message(EngineEventMsg(ev, stats, key=key))

        try:
            engine = services.engine_factory(profile, on_event)
            holder.append(engine)
            engine.start()
        except Exception as exc:
            self.call_from_thread(self._launch_failed, key, f"starting {profile.name}: {exc}", ())
            return
        # q pressed while it spawned: the app may be gone (call_from_thread then raises) and the
        # child, in its own session, would outlive the UI; stop it here rather than hand it over.
        if self.quitting or not self.is_running:
            _stop_quietly(engine)
            return
        try:
            self.call_from_thread(self._engine_started, key, engine)
        except RuntimeError:  # the app exited between the check and the call
            _stop_quietly(engine)

    def _engine_started(self: RigApp, key: str, engine: Any) -> None:
        inst = self.instances.get(key)
        if inst is None:  # pruned meanwhile: should not happen, but never leak a process
            engine.stop()
            return
        inst.engine = engine
        inst.stats = engine.stats
        inst.profile = inst.stats.profile or inst.profile  # the name, not the path launched
        if key == self.selected and self.services.set_pid is not None:
            self.services.set_pid(engine.pid)
        if self.quitting:  # q pressed while it was starting
            self._stop_engine(key)
        self._refresh_active()

    def _launch_failed(self: RigApp, key: str, note: str, issues: tuple[Any, ...]) -> None:
        inst = self.instances.get(key)
        if inst is None:
            return
        inst.note, inst.issues = note, issues
        inst.stats = EngineStats(
            instance=inst.name, profile=inst.profile, state=EngineState.FAILED, last_error=note
        )
        self.prepare = None
        self.notify(note, title="Launch failed", severity="error", timeout=8)
        self._refresh_active()

    def on_prepare_progress(self: RigApp, msg: PrepareProgress) -> None:
        self.prepare = (msg.what, msg.fraction) if msg.what else None
        self._refresh_active()

    def on_engine_changed(self: RigApp, msg: EngineChanged) -> None:
        inst = self.instances.get(msg.key or "")
        if inst is not None and msg.stats is not None:
            inst.stats = msg.stats
        if msg.note:
            self.notify(msg.note)
        self._refresh_active()

    def on_engine_event_msg(self: RigApp, msg: EngineEventMsg) -> None:
        inst = self.instances.get(msg.key or "")
        if inst is None:
            return
        ev = msg.event
        if msg.stats is not None:
            inst.stats = msg.stats
        if isinstance(ev, Token):
            inst.transcript.append(ev.text)
        elif isinstance(ev, Text):  # the chat's own request, streamed from the endpoint
            inst.transcript.append(ev.text + ("\n" if ev.final else ""))
        elif isinstance(ev, Done):
            if inst.awaiting_reply:  # a stdin prompt's reply ends here (an API client's does not)
                inst.transcript.append("\n")
                inst.awaiting_reply = False
            inst.last_done = ev
            if self.services.source is None:  # no sampler to carry the stats over time
                if ev.gen_tok_s is not None:
                    inst.gen_history.append(ev.gen_tok_s)
                if ev.prompt_tok_s is not None:
                    inst.prompt_history.append(ev.prompt_tok_s)
            ask = getattr(inst.engine, "request_placement", None)
            if ask is not None:  # the compute threads exist now: see where they really run
                ask()
        elif isinstance(ev, Log):  # engines built with log_events=True (tests, fakes)
            inst.event_lines.append(ev.line)
        elif isinstance(ev, Error):
            inst.event_lines.append(f"error ({ev.kind}): {ev.message}")
            if ev.hint:
                inst.event_lines.append(f"hint: {ev.hint}")
        elif isinstance(ev, Exit):
            for line in ev.stderr_tail:
                if line not in inst.event_lines:
                    inst.event_lines.append(line)
            inst.event_lines.append(f"engine exited: {ev.reason}")
        elif isinstance(ev, Loaded):
            self._compute_bytes_per_token(inst.key, ev.model_path, ev.n_ctx, ev.model_bytes)
        if inst.key == self.selected:
            handler = getattr(self.screen, "engine_event", None)
            if handler is not None:
                handler(ev)
        if isinstance(ev, (Token, Text)):
            self._schedule_render()
        else:
            self._refresh_active()

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
        inst = self.instances.get(key)
        if inst is not None:
            inst.bytes_per_token, inst.bytes_per_token_basis = value, basis
        if key == self.selected and self.services.set_bytes_per_token is not None:
            self.services.set_bytes_per_token(value)

    def send_prompt(self: RigApp, text: str, max_tokens: int = 128) -> bool:
        inst = self.current
        if inst is None or inst.engine is None:
            self.notify(
                "No engine running: launch a profile first (p, then l).", severity="warning"
            )
            return False
        if inst.stats.state is not EngineState.READY:
            self.notify(f"Engine {inst.key} is {inst.stats.state.value}: wait for ready.")
            return False
        inst.transcript.append(f"{chr(10) if inst.transcript else ''}> {text}\n")
        ask = getattr(inst.engine, "ask", None)
        if inst.stats.url is not None and ask is not None:
            # a client of the engine's endpoint like any other (stats come from the engine)
            ask(text, max_tokens=max_tokens)
        else:
            inst.awaiting_reply = True
            inst.engine.prompt(text, max_tokens=max_tokens)
        return True

    # -- select, stop, quit ---------------------------------------------------------------------
    def select_instance(self: RigApp, key: str) -> None:
        inst = self.instances.get(key)
        if inst is None:
            return
        self.selected = key
        if self.services.set_pid is not None:
            self.services.set_pid(inst.engine.pid if inst.engine is not None else None)
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
        if inst is None or inst.engine is None or not inst.active:
            self.notify(
                "No engine running." if inst is None else f"Engine {inst.key} is not running."
            )
            return
        inst.stopping = True
        self._stop_engine(inst.key)

    @work(thread=True, group="engine", exit_on_error=False)
    def _stop_engine(self: RigApp, key: str) -> None:
        inst = self.instances.get(key)
        engine = inst.engine if inst else None
        if engine is None:
            return
        try:
            engine.stop()
        except Exception as exc:
            self.post_message(EngineChanged(None, note=f"stop failed: {exc}", key=key))
            return
        self.call_from_thread(self._engine_stopped, key)

    def _engine_stopped(self: RigApp, key: str) -> None:
        inst = self.instances.get(key)
        if inst is None:
            return
        inst.stats = inst.engine.stats if inst.engine is not None else inst.stats
        inst.engine, inst.stopping = None, False
        others = [i for i in self.running() if i.key != key]
        if key == self.selected and others:  # keep talking to something that runs
            del self.instances[key]
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
        engines = [i.engine for i in self.instances.values() if i.engine is not None and i.active]
        if not engines:
            self._exit_now()
            return
        self.sub_title = "stopping…"
        self.notify(
            f"stopping {len(engines)} engine{'s' if len(engines) > 1 else ''}… (q again quits now)",
            timeout=QUIT_CAP_S,
        )
        self._refresh_active()
        self.set_timer(QUIT_CAP_S, self._exit_now)
        self._stop_all(engines)

    @work(thread=True, group="quit", exit_on_error=False)
    def _stop_all(self: RigApp, engines: list[Any]) -> None:
        threads = [threading.Thread(target=_stop_quietly, args=(e,), daemon=True) for e in engines]
        for t in threads:
            t.start()
        deadline = time.monotonic() + QUIT_CAP_S - 0.2
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
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
