"""EngineSupervisor: owns every running engine instance of any backend, folds their events with
the one `fold`, and publishes a frozen snapshot per change (DESIGN.md). The TUI and the CLI only
read snapshots; nothing else holds engine state, and no caller's object is written from an
engine's reader thread.

    sup = EngineSupervisor(factory, load_profile, publish=on_change)
    key = sup.launch("demo")          # load + prepare + start in a thread; events follow
    sup.prompt(key, "hello")          # the engine's endpoint when it serves, else its stdin
    snap = sup.snapshot()             # EnginesSnapshot(instances=(InstanceView, ...), version)
    sup.stop(key); sup.stop_all(5.0)

`factory(profile, on_event)` builds an engine (`EngineProcess`, or a stand-in with the same
methods); `publish(snapshot, key, event)` is called after each change, from whichever thread
made it (the TUI posts it as a message; a CLI may print it).

With `stream_interval` > 0 (the TUI's), what streams (tokens, reply text, generation progress)
is folded at once but published at most once per interval, from one flusher thread, with
`event` a `Streamed`: a reply of 1,000 tokens costs its watcher a bounded number of snapshots, not
1,000, and a burst renders the same text as slow streaming. Every other event (loaded, done,
error, exit...) is published at once, with it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rigtui.engine.stats import fold
from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Log,
    Progress,
    Text,
    Token,
)

ACTIVE_STATES = frozenset(
    {EngineState.STARTING, EngineState.LOADING, EngineState.READY, EngineState.GENERATING}
)
EVENT_LINES = 40  # error/exit lines kept per instance (llama.cpp's own log is the engine's tail)
TRANSCRIPT_CHARS = 256 * 1024  # the chat's last characters kept per instance
STREAMING = (Token, Text, Progress)  # the events a `stream_interval` coalesces

Factory = Callable[[Any, Callable[[EngineEvent], None]], Any]
Publish = Callable[["EnginesSnapshot", "str | None", "EngineEvent | Streamed | None"], None]


@dataclass(frozen=True)
class InstanceView:
    """One launch as the UI sees it: frozen, safe to hand to any thread."""

    key: str  # "1", "2", …: the number the UI shows
    profile: str  # the profile's name (its path until it loaded)
    stats: EngineStats
    pid: int | None = None
    note: str | None = None  # why the launch failed before the engine ran
    issues: tuple[Any, ...] = ()  # ProfileIssue list of a profile that failed to load
    event_lines: tuple[str, ...] = ()  # errors and exit lines, oldest first
    # the chat (prompts and replies as they came): its last TRANSCRIPT_CHARS characters, and
    # how many were ever appended, so a watcher appends only what it has not shown
    transcript: str = ""
    transcript_end: int = 0
    log_tail: tuple[str, ...] = ()  # llama.cpp's last log lines, copied when the engine fails
    threads: int | None = None  # the generation threads it was started with
    model_path: str | None = None  # the model file it was started on (before it loaded)
    last_done: Done | None = None
    stopping: bool = False
    started: bool = False  # an engine process exists (False: launching, or failed before)

    @property
    def active(self) -> bool:
        return self.stats.state in ACTIVE_STATES

    @property
    def name(self) -> str:
        """The engine's instance name (matches `Sample.engines[i].instance`)."""
        return self.stats.instance


@dataclass(frozen=True)
class Streamed:
    """The `event` of a snapshot published by the flusher: what streamed into instances `keys`
    (tokens, reply text, progress) since the last one. Not an engine event."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class EnginesSnapshot:
    instances: tuple[InstanceView, ...] = ()
    version: int = 0

    def get(self, key: str | None) -> InstanceView | None:
        return next((i for i in self.instances if i.key == key), None)

    @property
    def running(self) -> tuple[InstanceView, ...]:
        return tuple(i for i in self.instances if i.active)

    @property
    def stats(self) -> tuple[EngineStats, ...]:
        """The stats of every started engine (what the telemetry sampler takes)."""
        return tuple(i.stats for i in self.instances if i.started)


@dataclass
class _Entry:  # the supervisor's own mutable record, touched only under its lock
    view: InstanceView
    engine: Any = None
    event_lines: deque[str] = field(default_factory=lambda: deque(maxlen=EVENT_LINES))
    transcript: str = ""  # committed into the view; `pending` is what came since
    pending: list[str] = field(default_factory=list)
    transcript_end: int = 0
    awaiting_reply: bool = False  # a stdin prompt's reply is under way (its Done ends the line)
    max_tokens: int = 128  # a chat prompt's default: the profile's sampling.max_tokens


class EngineSupervisor:
    def __init__(self, factory: Factory, load_profile: Callable[..., Any], *,
                 topology: Any = None, prepare: Callable[..., None] | None = None,
                 publish: Publish | None = None,
                 progress: Callable[[str, float | None], None] | None = None,
                 stream_interval: float = 0.0) -> None:  # fmt: skip
        self.factory = factory
        self.load_profile = load_profile
        self.topology = topology
        self.prepare = prepare
        self.publish = publish
        self.progress = progress
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._keys = itertools.count(1)
        self._version = 0
        self._snapshot = EnginesSnapshot()
        self.closing = False
        self.stream_interval = stream_interval
        self._streamed: set[str] = set()  # instances with streamed changes not yet published
        self._wake = threading.Condition(self._lock)
        self._flusher: threading.Thread | None = None

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot(self) -> EnginesSnapshot:
        with self._lock:
            return self._snapshot

    def _changed(self, key: str | None, ev: EngineEvent | None = None) -> None:
        """Publish a snapshot after a change to instance `key` (None: only the list changed).
        Every change concerns one instance, so only its lines are copied into its view."""
        with self._lock:
            snap = self._build((key,) if key else ())
        if self.publish is not None:
            with contextlib.suppress(Exception):  # a consumer's bug must not kill a reader thread
                self.publish(snap, key, ev)

    def _build(self, keys: tuple[str, ...]) -> EnginesSnapshot:
        """A new snapshot with the lines of instances `keys` copied in (lock held)."""
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                continue
            self._streamed.discard(key)
            if entry.pending:
                text = entry.transcript + "".join(entry.pending)
                entry.pending.clear()
                entry.transcript = text[-TRANSCRIPT_CHARS:]
            entry.view = replace(entry.view, event_lines=tuple(entry.event_lines),
                                 transcript=entry.transcript,
                                 transcript_end=entry.transcript_end)  # fmt: skip
        self._version += 1
        self._snapshot = EnginesSnapshot(tuple(e.view for e in self._entries.values()), self._version)
        return self._snapshot

    def _stream_changed(self, key: str) -> None:
        """A streamed change to `key` (lock held): published by the flusher within one interval."""
        self._streamed.add(key)
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, daemon=True, name="flush")
            self._flusher.start()
        self._wake.notify()

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._streamed:
                    self._wake.wait()
            time.sleep(self.stream_interval)  # what streams in meanwhile joins this snapshot
            with self._lock:
                if not self._streamed:  # an immediate event published it already
                    continue
                keys = tuple(self._streamed)
                snap = self._build(keys)
            if self.publish is not None:
                with contextlib.suppress(Exception):
                    self.publish(snap, keys[0] if len(keys) == 1 else None, Streamed(keys))

    # -- launch --------------------------------------------------------------------------------
    def launch(self, name_or_path: str, *, prune: bool = True) -> str:
        """Start launching a profile; returns its key at once (state STARTING). Finished
        launches are dropped first (`prune`): the list shows what runs plus new failures."""
        with self._lock:
            if prune:
                for k in [k for k, e in self._entries.items() if not e.view.active]:
                    del self._entries[k]
            key = str(next(self._keys))
            stats = EngineStats(instance=f"ui-{key}", profile=str(name_or_path),
                                state=EngineState.STARTING)  # fmt: skip
            self._entries[key] = _Entry(InstanceView(key, str(name_or_path), stats))
        self._changed(key)
        threading.Thread(target=self._launch, args=(key, name_or_path), daemon=True,
                         name=f"launch-{key}").start()  # fmt: skip
        return key

    def _launch(self, key: str, name_or_path: str) -> None:
        try:
            profile = self.load_profile(name_or_path, topology=self.topology)
        except Exception as exc:
            self._failed(key, f"profile {name_or_path}: {exc}", tuple(getattr(exc, "issues", ()) or ()))
            return
        if self.prepare is not None:
            try:
                self.prepare(profile, self.progress or (lambda what, frac: None))
            except Exception as exc:
                self._failed(key, f"preparing {profile.name}: {exc}", ())
                return
            if self.progress is not None:
                self.progress("", None)
        try:
            engine = self.factory(profile, lambda ev: self._on_event(key, ev))
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.engine = engine
            engine.start()
        except Exception as exc:
            self._failed(key, f"starting {getattr(profile, 'name', name_or_path)}: {exc}", ())
            return
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self.closing:  # dropped, or quit pressed while it spawned
                orphan = True
            else:
                orphan = False
                sampling = getattr(profile, "sampling", None)
                entry.max_tokens = int(getattr(sampling, "max_tokens", None) or entry.max_tokens)
                threads = getattr(getattr(engine, "plan", None), "threads", None)
                if not isinstance(threads, int):
                    threads = getattr(profile, "threads", None)
                entry.view = replace(entry.view, profile=profile.name, started=True, pid=engine.pid,
                                     threads=threads if isinstance(threads, int) else None,
                                     model_path=_str_or_none(getattr(engine, "model_path", None)),
                                     stats=entry.view.stats if entry.view.stats.pid else
                                     replace(entry.view.stats, profile=profile.name))  # fmt: skip
        if orphan:  # never leave a child (own session) behind the UI
            _stop_quietly(engine)
            return
        self._changed(key)

    def _failed(self, key: str, note: str, issues: tuple[Any, ...]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            v = entry.view
            entry.view = replace(v, note=note, issues=issues,
                                 stats=EngineStats(instance=v.stats.instance, profile=v.profile,
                                                   state=EngineState.FAILED, last_error=note))  # fmt: skip
        if self.progress is not None:
            self.progress("", None)
        self._changed(key)

    # -- events (from each engine's reader threads) ---------------------------------------------
    def _on_event(self, key: str, ev: EngineEvent) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            v = entry.view
            stats = fold(v.stats, ev)
            last_done = v.last_done
            if isinstance(ev, Token):
                _append(entry, ev.text)
            elif isinstance(ev, Text):  # the chat's own request, streamed from the endpoint
                _append(entry, ev.text + ("\n" if ev.final else ""))
            elif isinstance(ev, Done):
                if entry.awaiting_reply:  # a stdin prompt's reply ends here (an API client's not)
                    _append(entry, "\n")
                    entry.awaiting_reply = False
                last_done = ev
            elif isinstance(ev, Log):  # engines built with log_events=True (tests, fakes)
                entry.event_lines.append(ev.line)
            elif isinstance(ev, Error):
                entry.event_lines.append(f"error ({ev.kind}): {ev.message}")
                if ev.hint:
                    entry.event_lines.append(f"hint: {ev.hint}")
            elif isinstance(ev, Exit):
                for line in ev.stderr_tail:
                    if line not in entry.event_lines:
                        entry.event_lines.append(line)
                entry.event_lines.append(f"engine exited: {ev.reason}")
            log_tail = v.log_tail
            if isinstance(ev, (Error, Exit)) and entry.engine is not None:
                # what the error panel shows under the reason: read now, not streamed as events
                with contextlib.suppress(Exception):
                    log_tail = tuple(getattr(entry.engine, "log_tail", ()) or ())
            entry.view = replace(v, stats=stats, last_done=last_done, log_tail=log_tail,
                                 pid=stats.pid if stats.pid is not None else v.pid)  # fmt: skip
            if self.stream_interval > 0 and isinstance(ev, STREAMING):
                self._stream_changed(key)
                return
        self._changed(key, ev)

    # -- requests ------------------------------------------------------------------------------
    def engine(self, key: str | None) -> Any:
        """The engine object of `key` (for its log tail; None before it started)."""
        with self._lock:
            entry = self._entries.get(key or "")
            return entry.engine if entry else None

    def prompt(self, key: str | None, text: str, max_tokens: int | None = None) -> str | None:
        """Send a chat prompt (`max_tokens` None: the profile's sampling.max_tokens); None when
        sent, else why not. A served engine is asked through its endpoint like any client; one
        that does not serve, through its stdin."""
        with self._lock:
            entry = self._entries.get(key or "")
            if entry is None or entry.engine is None:
                return "No engine running: launch a profile first (p, then l)."
            max_tokens = max_tokens or entry.max_tokens
            if entry.view.stats.state is not EngineState.READY:
                return f"Engine {entry.view.key} is {entry.view.stats.state.value}: wait for ready."
            _append(entry, f"{chr(10) if entry.transcript_end else ''}> {text}\n")
            engine, served = entry.engine, entry.view.stats.url is not None
            ask = getattr(engine, "ask", None)
            if not (served and ask is not None):
                entry.awaiting_reply = True
        self._changed(key)
        if served and ask is not None:
            ask(text, max_tokens=max_tokens)
        else:
            engine.prompt(text, max_tokens=max_tokens)
        return None

    def cancel(self, key: str | None) -> None:
        engine = self.engine(key)
        if engine is not None:
            engine.cancel()

    def request_placement(self, key: str | None) -> None:
        """Have the engine report where it runs now. In a thread: for llama-server that means
        reading /proc/PID here, which must not hold up the caller (the TUI's event handler)."""
        ask = getattr(self.engine(key), "request_placement", None)
        if ask is not None:
            threading.Thread(target=ask, daemon=True, name=f"placement-{key}").start()

    # -- stop ----------------------------------------------------------------------------------
    def stop(self, key: str, on_done: Callable[[str, str | None], None] | None = None) -> None:
        """Stop one engine in a thread; `on_done(key, error)` after."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.engine is None:
                return
            entry.view = replace(entry.view, stopping=True)
            engine = entry.engine
        self._changed(key)

        def run() -> None:
            error = None
            try:
                engine.stop()
            except Exception as exc:
                error = f"stop failed: {exc}"
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    stats = getattr(engine, "stats", entry.view.stats)
                    entry.view = replace(entry.view, stopping=False, started=False,
                                         stats=stats if isinstance(stats, EngineStats) else entry.view.stats)  # fmt: skip
            self._changed(key)
            if on_done is not None:
                on_done(key, error)

        threading.Thread(target=run, daemon=True, name=f"stop-{key}").start()

    def forget(self, key: str) -> None:
        """Drop a finished instance from the list."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.view.active:
                return
            del self._entries[key]
        self._changed(None)

    def stop_all(self, timeout: float) -> bool:
        """Stop every engine at once (each child is in its own session and would outlive the
        caller); True when all confirmed within `timeout`."""
        self.closing = True
        with self._lock:
            engines = [e.engine for e in self._entries.values() if e.engine is not None and e.view.active]
        threads = [threading.Thread(target=_stop_quietly, args=(e,), daemon=True) for e in engines]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    @property
    def active_engines(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.engine is not None and e.view.active)


STOP_TIMEOUT_S = 4.0


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _append(entry: _Entry, text: str) -> None:
    entry.pending.append(text)
    entry.transcript_end += len(text)


def _stop_quietly(engine: Any) -> None:
    """Stop an engine; a failure to stop must not keep anyone from quitting."""
    try:
        engine.stop(timeout=STOP_TIMEOUT_S)
    except TypeError:  # an engine whose stop() takes no timeout
        with contextlib.suppress(Exception):
            engine.stop()
    except Exception:
        pass
