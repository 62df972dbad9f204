"""The engines the UI shows: one frozen `Instance` per launch (several may run at once, one model
isolated per NUMA node), held by an `EngineBoard`. Plain state, no Textual.

The engine state itself comes from the supervisor's frozen `InstanceView`s; an Instance adds
what only the UI keeps: the tok/s history for the sparklines and bytes per token for the
roofline. Every change makes a new Instance (`dataclasses.replace`): a widget handed one holds
a value that nothing changes under it. The board is changed on the UI's thread only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rigtui.engine.supervisor import ACTIVE_STATES, EnginesSnapshot, InstanceView
from rigtui.model.engine import Done, EngineState, EngineStats

HISTORY = 120  # samples kept for sparklines (2 minutes at the default 1 s)


def printable(text: str) -> str:
    """Model output with control characters (a random-weight demo model emits any byte) shown
    as '�': they would move the cursor in a terminal and are invalid in an SVG screenshot."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd" for ch in text)


def _pushed(history: tuple[float, ...], value: float | None) -> tuple[float, ...]:
    return history if value is None else (*history[-(HISTORY - 1) :], value)


@dataclass(frozen=True)
class Instance:
    """One launch as the UI shows it: the supervisor's frozen view (the engine object stays
    with the supervisor), plus the tok/s history for the sparklines."""

    key: str  # "1", "2", …: the number the UI shows
    profile: str
    stats: EngineStats
    started: bool = False  # an engine process exists (the supervisor holds it, not the UI)
    threads: int | None = None
    model_path: str | None = None  # before it loaded (then stats.model_path)
    note: str | None = None  # why the launch failed before the engine ran
    issues: tuple[Any, ...] = ()  # ProfileIssue list of a profile that failed to load
    event_lines: tuple[str, ...] = ()
    log_tail: tuple[str, ...] = ()
    transcript: str = ""  # the chat's last characters (see InstanceView.transcript_end)
    transcript_end: int = 0
    gen_history: tuple[float, ...] = ()  # the last HISTORY generation tok/s, oldest first
    prompt_history: tuple[float, ...] = ()
    bytes_per_token: float | None = None
    bytes_per_token_basis: str | None = None
    last_done: Done | None = None
    stopping: bool = False
    supervised: bool = False  # mirrors a supervisor instance (False: known from a recording)
    pid: int | None = None

    @classmethod
    def of_view(cls, view: InstanceView, before: Instance | None = None) -> Instance:
        """The supervisor's view of this launch, keeping what the UI added to `before`."""
        kept = before or cls(key=view.key, profile=view.profile, stats=view.stats)
        return replace(kept, profile=view.profile, stats=view.stats, note=view.note,
                       issues=view.issues, transcript=view.transcript,
                       transcript_end=view.transcript_end, event_lines=view.event_lines,
                       log_tail=view.log_tail, last_done=view.last_done, stopping=view.stopping,
                       pid=view.pid, started=view.started, threads=view.threads,
                       model_path=view.model_path, supervised=True)  # fmt: skip

    def with_rates(self, gen_tok_s: float | None, prompt_tok_s: float | None) -> Instance:
        """One more point on each sparkline (None: no new figure for that one)."""
        if gen_tok_s is None and prompt_tok_s is None:
            return self
        return replace(self, gen_history=_pushed(self.gen_history, gen_tok_s),
                       prompt_history=_pushed(self.prompt_history, prompt_tok_s))  # fmt: skip

    @property
    def active(self) -> bool:
        return self.stats.state in ACTIVE_STATES

    @property
    def name(self) -> str:
        """The engine's own instance name (matches `Sample.engines[i].instance`)."""
        return self.stats.instance

    def log_lines(self, n: int) -> list[str]:
        """The last `n` lines for the error panel: llama.cpp's log (the engine's bounded
        `log_tail`, copied by the supervisor when it failed) then error/exit lines."""
        tail = self.log_tail
        lines = list(tail)
        lines += [line for line in self.event_lines if line not in tail]
        # The log repeats strings from the GGUF file (model name, token texts): no control
        # characters may reach the terminal (an ESC would clear the screen or retitle it).
        return [printable(line) for line in lines[-n:]]

    def output_tail(self, n: int, width: int) -> list[str]:
        """The last `n` lines of the chat (prompts and replies), cut to `width`."""
        text = printable(self.transcript[-8000:])
        lines = [line for line in text.splitlines() if line.strip()]
        return [line if len(line) <= width else line[: width - 1] + "…" for line in lines[-n:]]


class EngineBoard:
    """Every launch the UI knows, by key, and which one is selected (the Run screen and `x`
    act on it). Fed the supervisor's snapshots and the sampler's figures; UI thread only."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.selected: str | None = None
        self._version = 0  # of the last supervisor snapshot applied

    @property
    def current(self) -> Instance | None:
        return self.instances.get(self.selected) if self.selected else None

    def running(self) -> list[Instance]:
        return [i for i in self.instances.values() if i.active]

    def apply(self, snap: EnginesSnapshot) -> list[str]:
        """Take a supervisor snapshot; returns the keys whose engine process is new in it.
        A snapshot older than one already applied is ignored (threads post out of order)."""
        if snap.version < self._version:
            return []
        self._version = snap.version
        keys = {v.key for v in snap.instances}
        for key in [k for k, i in self.instances.items() if i.supervised and k not in keys]:
            del self.instances[key]
        newly = []
        for view in snap.instances:
            before = self.instances.get(view.key)
            inst = self.instances[view.key] = Instance.of_view(view, before)
            if inst.started and not (before is not None and before.started):
                newly.append(view.key)
        if self.selected not in self.instances:
            self.selected = next(iter(self.instances), None)
        return newly

    def add_recorded(self, profile: str, stats: EngineStats | None = None) -> Instance:
        """An instance known only from a recording (replay mode: no engine behind it)."""
        key = f"r{len(self.instances) + 1}"
        stats = stats or EngineStats(instance=f"ui-{key}", profile=profile, state=EngineState.IDLE)
        inst = self.instances[key] = Instance(key=key, profile=profile, stats=stats)
        if self.selected is None:
            self.selected = key
        return inst

    def record_rates(self, key: str, gen_tok_s: float | None, prompt_tok_s: float | None) -> None:
        inst = self.instances.get(key)
        if inst is not None:
            self.instances[key] = inst.with_rates(gen_tok_s, prompt_tok_s)

    def record_sample(self, engines: tuple[EngineStats, ...], replay: bool) -> bool:
        """The sampler's stats per engine (by instance name) onto the sparklines; a replay
        also takes its stats from them (the recording is its only source) and adds the
        instances it names. True when the set of instances changed."""
        by_name = {inst.name: inst.key for inst in self.instances.values()}
        added = False
        for eng in engines:
            key = by_name.get(eng.instance)
            if key is None and replay:
                key = by_name[eng.instance] = self.add_recorded(eng.profile or eng.instance, eng).key
                added = True
            if key is None:
                continue
            inst = self.instances[key]
            if not inst.supervised:
                inst = replace(inst, stats=eng)
            self.instances[key] = inst.with_rates(eng.gen_tok_s, eng.prompt_tok_s)
        return added

    def set_bytes_per_token(self, key: str, value: float | None, basis: str) -> None:
        inst = self.instances.get(key)
        if inst is not None:
            self.instances[key] = replace(inst, bytes_per_token=value, bytes_per_token_basis=basis)

    def forget(self, key: str) -> None:
        self.instances.pop(key, None)

    def engine_cpus(self) -> frozenset[int]:
        """The CPUs the running engines compute on."""
        return frozenset(c for i in self.instances.values() if i.active for c in i.stats.cpus)
