"""Watch a running llama-server through its own endpoints and turn what it reports into the
same engine events the embedded worker emits (so one `fold` serves both).

- `GET /health`: 503 while loading, 200 once the model answers -> `loaded` + `serving`.
- `GET /slots` (llama-server `--slots`): per slot `is_processing`, the task id and
  `next_token[0].n_decoded` -> `requests`, live `progress`, and KV use as `slots`.
- `GET /metrics` (`--metrics`, Prometheus text): counters `prompt_tokens_total`,
  `prompt_seconds_total`, `tokens_predicted_total`, `tokens_predicted_seconds_total`. llama.cpp
  adds to the prompt counters when a prompt's last batch is computed and to the generation ones
  when a slot is released, so their deltas at those moments are that request's own figures, timed
  by the server itself -> `prompt_done` and `done`.

`SlotTracker` is the pure state machine (tested with recorded answers); `ServerMonitor` is the
thread that polls: /slots 4 times a second while a slot works, once a second when idle, /metrics
only at a request's transitions. Each poll is one small task in llama-server's queue, run
between two decode steps.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rigtui.model.engine import (
    Done,
    EngineEvent,
    Progress,
    PromptDone,
    Requests,
    Slots,
)

BUSY_POLL_S = 0.25
IDLE_POLL_S = 1.0
_COUNTERS = ("prompt_tokens_total", "prompt_seconds_total", "tokens_predicted_total",
             "tokens_predicted_seconds_total")  # fmt: skip


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {name without the "llamacpp:" prefix: value} (unlabelled
    samples only)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        try:
            out[name.removeprefix("llamacpp:")] = float(value.split()[0])
        except (ValueError, IndexError):
            continue
    return out


@dataclass
class _Busy:
    task: int | None
    first_t: float | None = None  # first poll that saw a generated token
    first_n: int = 0
    prompt_reported: bool = False


@dataclass(frozen=True)
class _SlotNow:
    sid: int
    task: int | None
    busy: bool
    finished: bool  # the request the tracker followed on this slot is over
    came_went: bool  # a request began and ended between two polls
    prompt_done: bool  # the slot's (new) request has decoded its first token


Emit = tuple[type[EngineEvent], dict[str, Any]]


class SlotTracker:
    """Folds successive /slots (and, when `wants_metrics` says so, /metrics) answers into
    events. Pure: the caller passes the time of each poll."""

    def __init__(self) -> None:
        self.busy: dict[int, _Busy] = {}
        self.last_task: dict[int, int | None] = {}
        self.total = 0
        self.in_flight = 0
        self.base_prompt: dict[str, float] | None = None  # counters at the last prompt_done
        self.base_done: dict[str, float] | None = None  # counters at the last done
        self.last_slots: tuple[int, int, int, int] | None = None

    @staticmethod
    def _task(slot: Mapping[str, Any]) -> int | None:
        task = slot.get("id_task")
        return int(task) if isinstance(task, int) else None

    @staticmethod
    def _decoded(slot: Mapping[str, Any]) -> int:
        nxt = slot.get("next_token")
        if isinstance(nxt, list) and nxt and isinstance(nxt[0], Mapping):
            return int(nxt[0].get("n_decoded") or 0)
        return 0

    def _read(self, slot: Mapping[str, Any]) -> _SlotNow:
        """What one slot's answer means against what the tracker saw before (no change made)."""
        sid = int(slot.get("id", 0))
        task, busy = self._task(slot), bool(slot.get("is_processing"))
        rec = self.busy.get(sid)
        finished = rec is not None and (not busy or task != rec.task)
        # a request that began and ended between two polls: only its task id moved on
        came_went = (not busy and rec is None and task is not None
                     and task != self.last_task.get(sid, task))  # fmt: skip
        ongoing = rec if not finished else None
        prompt_done = busy and self._decoded(slot) > 0 and (ongoing is None or not ongoing.prompt_reported)
        return _SlotNow(sid, task, busy, finished, came_went, prompt_done)

    def wants_metrics(self, slots: list[Mapping[str, Any]]) -> bool:
        """True when this answer holds a transition whose figures come from /metrics."""
        return any(n.finished or n.came_went or n.prompt_done for n in map(self._read, slots))

    def step(self, slots: list[Mapping[str, Any]], metrics: Mapping[str, float] | None,
             t: float) -> list[Emit]:  # fmt: skip
        out: list[Emit] = []
        if metrics is not None and self.base_done is None:
            self.base_done = dict(metrics)
            self.base_prompt = dict(metrics)
        finished = 0
        seen: set[int] = set()
        for slot in slots:
            now = self._read(slot)
            seen.add(now.sid)
            if now.finished:
                finished += 1
                del self.busy[now.sid]
            elif now.came_went:
                self.total += 1
                finished += 1
            rec = self.busy.get(now.sid)
            if now.busy and rec is None:
                self.total += 1
                rec = self.busy[now.sid] = _Busy(now.task)
            self.last_task[now.sid] = now.task
            if rec is None:
                continue
            if now.prompt_done:
                rec.prompt_reported = True
                out += self._prompt_done(slot, metrics)
            n = self._decoded(slot)
            if n > 0 and rec.first_t is None:
                rec.first_t, rec.first_n = t, n
        for sid in [s for s in self.busy if s not in seen]:
            del self.busy[sid]
            finished += 1
        in_flight = len(self.busy)
        if metrics is not None and "requests_total" in metrics:  # rigtui's own server counts them
            self.total = max(self.total, int(metrics["requests_total"]))
        if finished:
            out += self._done(metrics)
        if in_flight != self.in_flight or finished:
            self.in_flight = in_flight
            out.append((Requests, {"in_flight": in_flight, "total": self.total}))
        live = [r for r in self.busy.values() if r.first_t is not None]
        if live and not finished:
            out += self._progress(slots, t)
        kv = self._kv(slots)
        if kv != self.last_slots:
            self.last_slots = kv
            out.append((Slots, dict(zip(("n_slots", "busy", "kv_used_tokens", "kv_ctx_tokens"),
                                        kv, strict=True))))  # fmt: skip
        return out

    def _progress(self, slots: list[Mapping[str, Any]], t: float) -> list[Emit]:
        # Rate from the polls themselves: tokens decoded since the first poll that saw one,
        # over the time between those polls. `seconds` is chosen so n_gen / seconds is that
        # rate (fold divides them), not the time since the first token, which no poll saw.
        n_now = n_first = 0
        t_first = t
        for slot in slots:
            rec = self.busy.get(int(slot.get("id", 0)))
            if rec is None or rec.first_t is None:
                continue
            n_now += self._decoded(slot)
            n_first += rec.first_n
            t_first = min(t_first, rec.first_t)
        if n_now <= n_first or t <= t_first:
            return []
        rate = (n_now - n_first) / (t - t_first)
        return [(Progress, {"n_gen": n_now, "seconds": round(n_now / rate, 6)})]

    def _delta(self, metrics: Mapping[str, float] | None, base: dict[str, float] | None
               ) -> dict[str, float] | None:  # fmt: skip
        if metrics is None or base is None:
            return None
        return {k: max(0.0, metrics.get(k, 0.0) - base.get(k, 0.0)) for k in _COUNTERS}

    def _prompt_done(self, slot: Mapping[str, Any], metrics: Mapping[str, float] | None) -> list[Emit]:
        d = self._delta(metrics, self.base_prompt)
        if metrics is not None:
            self.base_prompt = dict(metrics)
        n = int(d["prompt_tokens_total"]) if d else int(slot.get("n_prompt_tokens_processed") or 0)
        seconds = d["prompt_seconds_total"] if d else 0.0
        return [(PromptDone, {"n_tokens": n, "seconds": round(seconds, 6)})]

    def _done(self, metrics: Mapping[str, float] | None) -> list[Emit]:
        d = self._delta(metrics, self.base_done)
        if metrics is not None:
            self.base_done = dict(metrics)
            self.base_prompt = dict(metrics)
        if d is None:
            return []
        n_prompt, prompt_s = int(d["prompt_tokens_total"]), d["prompt_seconds_total"]
        n_gen, gen_s = int(d["tokens_predicted_total"]), d["tokens_predicted_seconds_total"]
        return [(Done, {"n_prompt": n_prompt, "n_gen": n_gen, "prompt_s": round(prompt_s, 6),
                        "gen_s": round(gen_s, 6),
                        "prompt_tok_s": n_prompt / prompt_s if n_prompt and prompt_s > 0 else None,
                        "gen_tok_s": n_gen / gen_s if n_gen and gen_s > 0 else None,
                        # the server's own clock: its prompt time (queueing and HTTP excluded)
                        "ttft_s": round(prompt_s, 6) if n_prompt else None,
                        "stop_reason": "served"})]  # fmt: skip

    def _kv(self, slots: list[Mapping[str, Any]]) -> tuple[int, int, int, int]:
        used = 0
        for slot in slots:
            if slot.get("is_processing"):
                used += int(slot.get("n_prompt_tokens") or 0) + self._decoded(slot)
        ctx = max((int(s.get("n_ctx") or 0) for s in slots), default=0)
        return len(slots), len(self.busy), used, ctx


class ServerMonitor:
    """Polls one llama-server until `stop()` or until `alive()` says it is gone."""

    def __init__(self, base_url: str, emit: Callable[[type[EngineEvent], dict[str, Any]], None],
                 alive: Callable[[], bool], api_key: str | None = None) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self.emit = emit
        self.alive = alive
        self.api_key = api_key
        self.tracker = SlotTracker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + path)
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our URL
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read() or b""
        except (OSError, ValueError):
            return 0, b""

    def wait_ready(self, poll_s: float = 0.1) -> bool:
        """Until /health answers 200 (True) or the process is gone / stop() (False)."""
        while not self._stop.is_set() and self.alive():
            code, _ = self.get("/health", timeout=1.0)
            if code == 200:
                return True
            self._stop.wait(poll_s)
            poll_s = min(0.5, poll_s * 1.5)
        return False

    def props(self) -> dict[str, Any]:
        code, body = self.get("/props")
        try:
            return json.loads(body) if code == 200 else {}
        except ValueError:
            return {}

    def poll_once(self) -> bool:
        """One /slots (and maybe /metrics) poll; True while a slot works."""
        code, body = self.get("/slots")
        if code != 200:
            return False
        try:
            slots = json.loads(body)
        except ValueError:
            return False
        if not isinstance(slots, list):
            return False
        metrics = None
        if self.tracker.wants_metrics(slots) or self.tracker.base_done is None:
            mcode, mbody = self.get("/metrics")
            if mcode == 200:
                metrics = parse_metrics(mbody.decode(errors="replace"))
        for cls, fields in self.tracker.step(slots, metrics, time.time()):
            self.emit(cls, fields)
        return bool(self.tracker.busy)

    def baseline(self) -> None:
        """The counters before any client can know the URL: every request after is counted."""
        code, body = self.get("/metrics")
        if code == 200:
            metrics = parse_metrics(body.decode(errors="replace"))
            self.tracker.base_done = dict(metrics)
            self.tracker.base_prompt = dict(metrics)

    def run(self, on_ready: Callable[[], None]) -> None:
        if not self.wait_ready():
            return
        self.baseline()
        on_ready()
        while not self._stop.is_set() and self.alive():
            busy = self.poll_once()
            self._stop.wait(BUSY_POLL_S if busy else IDLE_POLL_S)

    def start(self, on_ready: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self.run, args=(on_ready,), daemon=True,
                                        name=f"monitor-{os.path.basename(self.base_url)}")  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


class EndpointWatch:
    """Follow a served engine that runs elsewhere (another `rigtui serve`, a llama-server
    started by hand) by its URL alone, for `rigtui sample --engine URL`: its stats folded from
    what /slots and /metrics say, as `stats`. Both servers rigtui runs answer both."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        from rigtui.model.engine import EngineState, EngineStats

        base = url.rstrip("/")
        base = base[: -len("/v1")] if base.endswith("/v1") else base
        self.url = base + "/v1"
        name = base.split("://", 1)[-1]
        self._lock = threading.Lock()
        self._stats = EngineStats(instance=name, profile=None, state=EngineState.STARTING)
        self.monitor = ServerMonitor(base, self._emit, alive=lambda: True, api_key=api_key)
        self.instance = name

    @property
    def stats(self) -> Any:
        with self._lock:
            return self._stats

    def _emit(self, cls: type[EngineEvent], fields: dict[str, Any]) -> None:
        from rigtui.engine.stats import fold

        ev = cls(instance=self.instance, t=time.time(), **fields)
        with self._lock:
            self._stats = fold(self._stats, ev)

    def _on_ready(self) -> None:
        import dataclasses

        from rigtui.model.engine import EngineState, Serving

        code, body = self.monitor.get("/v1/models")
        if code == 401:
            from rigtui.model.engine import Error

            self._emit(Error, {"message": f"{self.url} wants an API key, and the one sent was "
                               f"{'refused' if self.monitor.api_key else 'none'}", "kind": "serve",
                               "hint": "export RIGTUI_API_KEY=KEY (a `rigtui serve` of yours: "
                               "the key in ~/.config/rigtui/api-key is sent by itself)"})  # fmt: skip
            return
        try:
            model = json.loads(body)["data"][0]["id"] if code == 200 else None
        except (ValueError, KeyError, IndexError, TypeError):
            model = None
        props = self.monitor.props()
        server = "llama-server" if props.get("build_info") or props.get("total_slots") else "llama_cpp.server"
        self._emit(Serving, {"url": self.url, "host": "", "port": 0, "model": model or "",
                             "server": server})  # fmt: skip
        with self._lock:
            self._stats = dataclasses.replace(self._stats, profile=model, state=EngineState.READY)

    def start(self) -> None:
        self.monitor.start(self._on_ready)

    def stop(self) -> None:
        self.monitor.stop()
