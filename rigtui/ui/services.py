"""What the App is handed: the machine, a sample source, profiles and an engine factory.

`rigtui.commands.tui.run_app` builds a `Services` from the real parts (HostFS, `detect`,
`Sampler`, `rigtui.profiles`, `EngineProcess`, `run_checks`); tests build one from fixtures and
fakes. The App only calls what is here, so it never touches /proc or /sys itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rigtui.model.engine import EngineEvent, EngineStats
from rigtui.model.sample import Sample
from rigtui.model.topology import Topology


class SampleSource(Protocol):
    """`rigtui.telemetry.Sampler` (live) or a replay of a recording."""

    def sample(self, engines: tuple[EngineStats, ...] = ()) -> Sample: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """`rigtui.engine.client.EngineProcess`: one launched engine."""

    def start(self) -> None: ...

    def prompt(self, text: str, *, max_tokens: int = 128) -> None: ...

    def cancel(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def stats(self) -> EngineStats: ...

    @property
    def pid(self) -> int | None: ...


EngineFactory = Callable[[Any, Callable[[EngineEvent], None]], Engine]


class ReplayEnded(Exception):
    """Raised by a replay source when the recording has no more samples."""


class ReplaySource:
    """Plays recorded samples back one per poll (`rigtui --replay FILE`)."""

    def __init__(self, samples: Sequence[Sample], *, loop: bool = False) -> None:
        self._samples = list(samples)
        self._i = 0
        self._loop = loop

    @property
    def position(self) -> tuple[int, int]:
        return self._i, len(self._samples)

    def sample(self, engines: tuple[EngineStats, ...] = ()) -> Sample:
        if not self._samples:
            raise ReplayEnded("the recording holds no samples")
        if self._i >= len(self._samples):
            if not self._loop:
                raise ReplayEnded(f"end of recording ({len(self._samples)} samples)")
            self._i = 0
        s = self._samples[self._i]
        self._i += 1
        return s

    def close(self) -> None:
        pass


@dataclass
class Services:
    """Everything the UI may call. Optional parts are None when the mode has none
    (a captured `--root` tree or a replay has no live engine)."""

    topology: Topology
    source: SampleSource | None
    mode: str = "live"  # "live" | "replay" | "captured"
    mode_detail: str = ""  # the replay file or captured root, shown in the header
    interval: float = 1.0
    # profiles API (rigtui.profiles module or a stand-in with the same functions)
    profiles: Any = None
    # build an engine for a loaded Profile: factory(profile, on_event) -> Engine
    engine_factory: EngineFactory | None = None
    # prepare before launching (the demo model on first use): prepare(profile, progress_cb)
    prepare_launch: Callable[[Any, Callable[[str, float | None], None]], None] | None = None
    # analysis: run_checks(topology) -> list[Check]; membench cache; bytes per token for a model
    # run_checks(topology, *, model_path=None, profile_threads=None) -> list[Check]
    run_checks: Callable[..., list[Any]] | None = None
    load_membench: Callable[[], Any] | None = None
    run_membench: Callable[[Callable[[str], None]], Any] | None = None
    bytes_per_token: Callable[[str, int], float | None] | None = None
    # plan_profile(profile) -> (Plan, None) | (None, why not): `rigtui plan --profile` for the
    # Profiles screen (reads the GGUF header: call it in a thread)
    plan_profile: Callable[[Any], tuple[Any, str | None]] | None = None
    # set on the live sampler so it can compute roofline/placement (no-ops for replays)
    set_pid: Callable[[int | None], None] | None = None
    set_bytes_per_token: Callable[[float | None], None] | None = None
    # keep the app off the engines' CPUs: place_app(cpus the engines use) -> a line, or None
    place_app: Callable[[set[int]], str | None] | None = None
    # several rigs: read_fleet() -> (rows of rigtui.telemetry.fleet.RigRow, a note or None)
    read_fleet: Callable[[], tuple[list[Any], str | None]] | None = None
    launch: str | None = None  # profile to start on open (--launch)
    notes: list[str] = field(default_factory=list)  # things the wiring could not set up
