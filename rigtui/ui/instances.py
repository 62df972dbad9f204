"""The engines the UI shows: one `Instance` per launch, several may run at once (one model
isolated per NUMA node). Plain state, no Textual. The engine state itself comes from the
supervisor's frozen `InstanceView`s (`apply`, on the UI's thread); an Instance adds what only
the UI keeps: tok/s history for the sparklines and bytes per token for the roofline."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rigtui.engine.supervisor import ACTIVE_STATES, InstanceView
from rigtui.model.engine import Done, EngineStats

HISTORY = 120  # samples kept for sparklines (2 minutes at the default 1 s)


def printable(text: str) -> str:
    """Model output with control characters (a random-weight demo model emits any byte) shown
    as '�': they would move the cursor in a terminal and are invalid in an SVG screenshot."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd" for ch in text)


@dataclass
class Instance:
    """One launch as the UI shows it: copied from the supervisor's frozen view (the engine
    object stays with the supervisor), plus the tok/s history for the sparklines."""

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
    gen_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    prompt_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    bytes_per_token: float | None = None
    bytes_per_token_basis: str | None = None
    last_done: Done | None = None
    stopping: bool = False
    supervised: bool = False  # mirrors a supervisor instance (False: known from a recording)
    pid: int | None = None

    def apply(self, view: InstanceView) -> None:
        """Take the supervisor's view of this launch (UI thread only)."""
        self.profile, self.stats, self.note, self.issues = view.profile, view.stats, view.note, view.issues
        self.transcript, self.transcript_end = view.transcript, view.transcript_end
        self.event_lines, self.log_tail = view.event_lines, view.log_tail
        self.last_done, self.stopping, self.pid = view.last_done, view.stopping, view.pid
        self.started, self.threads, self.model_path = view.started, view.threads, view.model_path

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
