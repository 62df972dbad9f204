"""Messages between workers and handlers. Each carries an immutable snapshot (frozen model
objects, tuples), never a live object a worker might still change."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from rigtui.model.engine import EngineEvent
from rigtui.model.sample import Sample


class SampleReady(Message):
    """A new telemetry sample (from the sampler thread or a replay)."""

    def __init__(self, sample: Sample) -> None:
        super().__init__()
        self.sample = sample


class SourceFailed(Message):
    """The sample source raised (end of a replay, a sampler bug): polling stops, the reason shows."""

    def __init__(self, reason: str, *, ended: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.ended = ended


class EnginesChanged(Message):
    """The supervisor's snapshot after a change: an engine's event (`event`), a launch, a
    stop, a failure. `key` is the instance it concerns ("1", "2", …), if one."""

    def __init__(self, snapshot: Any, key: str | None = None, event: EngineEvent | Any = None) -> None:
        super().__init__()
        self.snapshot = snapshot  # rigtui.engine.supervisor.EnginesSnapshot (frozen)
        self.key = key
        self.event = event


class PrepareProgress(Message):
    """Progress of work before launch (generating the demo model on first use)."""

    def __init__(self, what: str, fraction: float | None) -> None:
        super().__init__()
        self.what = what
        self.fraction = fraction


class ChecksReady(Message):
    def __init__(self, checks: tuple[Any, ...], error: str | None = None) -> None:
        super().__init__()
        self.checks = checks
        self.error = error


class BenchReady(Message):
    def __init__(self, result: Any, error: str | None = None) -> None:
        super().__init__()
        self.result = result
        self.error = error
