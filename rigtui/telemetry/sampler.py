"""`Sampler(fs, topology).sample(engines) -> Sample`: one immutable snapshot per call.

Counters become rates between two calls (the first Sample has `interval_s=None` and no rates).
Each source says whether it is available and why not (`Sample.sources`); a source that fails
(PMU gone, EIO, engine exited, GPU lost) is marked so and the sample carries on.
`sample_cost_ms` is the CPU time of this thread for the call (numa_maps reads included on the
calls that poll it, every `placement_interval_s`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from rigtui.hostfs import HostFS
from rigtui.model.engine import EngineState, EngineStats
from rigtui.model.sample import MemoryTraffic, ModelPlacement, Sample, SourceStatus
from rigtui.model.topology import Sensor, Topology
from rigtui.telemetry.cpu import CpuSource
from rigtui.telemetry.gpu import GpuSource
from rigtui.telemetry.memory import MemorySource
from rigtui.telemetry.placement import read_placement
from rigtui.telemetry.temps import TemperatureSource
from rigtui.telemetry.threads import ThreadLoad
from rigtui.telemetry.traffic import (
    Opener,
    PerfTraffic,
    Rates,
    ResctrlTraffic,
    estimate_rates,
)

_LIVE_STATES = {
    EngineState.STARTING,
    EngineState.LOADING,
    EngineState.READY,
    EngineState.GENERATING,
    EngineState.STOPPING,
}


def _gbs(v: float | None) -> float | None:
    return None if v is None else round(v / 1e9, 3)


class Sampler:
    """Live telemetry of one machine (see the module doc).

    `pid`: the engine process to follow (else the first live engine's pid from `engines`).
    `bytes_per_token`: bytes read per generated token, for the labelled traffic estimate.
    `nvml`: None = use NVML when reading the live machine, False = never, True = try always.
    `perf`: None = open memory-controller counters on the live machine only, False = never.
    `perf_opener`/`nvml_module`: test seams (fake counters, a fake pynvml module).
    """

    def __init__(
        self,
        fs: HostFS,
        topology: Topology,
        *,
        pid: int | None = None,
        bytes_per_token: float | None = None,
        placement_interval_s: float = 5.0,
        nvml: bool | None = None,
        perf: bool | None = None,
        perf_opener: Opener | None = None,
        nvml_module: Any | None = None,
    ) -> None:
        self.fs = fs
        self.topology = topology
        self._pid = pid
        self._bytes_per_token = bytes_per_token
        self.placement_interval_s = placement_interval_s
        self._last_mono: float | None = None
        self._placement: ModelPlacement | None = None
        self._placement_mono = 0.0
        self._sockets = tuple(sorted(s.id for s in topology.sockets)) or (0,)
        self._cpu = CpuSource(fs, topology)
        self._threads = ThreadLoad(fs)
        self._memory = MemorySource(fs, topology)
        self._temps = TemperatureSource(fs, topology)
        use_perf = fs.is_live if perf is None else perf
        if use_perf or perf_opener is not None:
            self._perf: PerfTraffic | None = (
                PerfTraffic(fs, topology, opener=perf_opener)
                if perf_opener
                else PerfTraffic(fs, topology)
            )
        else:
            self._perf = None
        self._resctrl = ResctrlTraffic(fs, topology)
        use_nvml = fs.is_live if nvml is None else nvml
        self._gpu: GpuSource | None = (
            GpuSource(nvml_module) if (use_nvml or nvml_module is not None) else None
        )

    # -- settings the caller changes while running ---------------------------------------------
    def set_pid(self, pid: int | None) -> None:
        if pid != self._pid:
            self._pid = pid
            self._placement = None

    def set_bytes_per_token(self, b: float | None) -> None:
        self._bytes_per_token = b

    # -- one sample ------------------------------------------------------------------------------
    def _engine_pid(self, engines: tuple[EngineStats, ...]) -> tuple[int | None, str | None]:
        for e in engines:
            if (
                e.pid is not None
                and e.state in _LIVE_STATES
                and (self._pid is None or e.pid == self._pid)
            ):
                return e.pid, e.model_path
        return self._pid, None

    def _read_placement(
        self, pid: int | None, model_path: str | None, mono: float
    ) -> ModelPlacement | None:
        if pid is None:
            self._placement = None
            return None
        due = (
            self._placement is None
            or self._placement.pid != pid
            or mono - self._placement_mono >= self.placement_interval_s
        )
        if due:
            self._placement = read_placement(self.fs, pid, model_path)
            self._placement_mono = mono
        return self._placement

    def _traffic(
        self,
        interval: float | None,
        engines: tuple[EngineStats, ...],
        placement: ModelPlacement | None,
    ) -> tuple[tuple[MemoryTraffic, ...], list[SourceStatus]]:
        statuses: list[SourceStatus] = []
        why_not: list[str] = []
        rates: Rates | None = None
        source: str | None = None
        warming = False
        for backend in (self._perf, self._resctrl):
            if backend is None:
                continue
            if backend.available:
                got = backend.read(interval)
                if backend.available:  # still: reading may have found the PMU gone
                    rates, source, warming = got, backend.status.source, got is None
                    statuses.append(backend.status)
                    break
            statuses.append(backend.status)
            why_not.append(f"{backend.status.name.split(':')[1]}: {backend.status.reason}")
        if self._perf is None:
            why_not.insert(0, "perf: off for a captured tree")
        if source is None:
            gen = sum(
                e.gen_tok_s or 0.0
                for e in engines
                if e.state == EngineState.GENERATING and e.gen_tok_s
            )
            per_socket: dict[int, int] = {}
            if placement is not None:
                for node, b in placement.model_file_bytes_per_node.items():
                    s = self.topology.socket_of_node(node)
                    per_socket[0 if s is None else s] = per_socket.get(0 if s is None else s, 0) + b
            rates, est_reason = estimate_rates(
                self._bytes_per_token, gen, self._sockets, per_socket
            )
            statuses.append(
                SourceStatus("memory_traffic:estimate", "estimate", rates is not None, est_reason)
            )
            if rates is not None:
                source = "estimate"
            else:
                why_not.append(f"estimate: {est_reason}")
        ceilings = self.topology.memory.bandwidth_per_socket_gbs
        out: list[MemoryTraffic] = []
        for s in self._sockets:
            r = (rates or {}).get(s)
            if source is None:
                reason = "; ".join(why_not)
            elif source == "estimate":
                reason = (
                    "estimate: bytes per token x generated tok/s, not measured ("
                    + "; ".join(why_not)
                    + ")"
                )
            elif warming:
                reason = "no rate yet: rates need two complete readings"
            elif r is None:
                reason = f"{source} gave no counter for socket {s}"
            else:
                reason = None
            out.append(
                MemoryTraffic(
                    socket=s,
                    read_gbs=_gbs(r[0]) if r else None,
                    write_gbs=_gbs(r[1]) if r else None,
                    source=source,
                    available=source is not None,
                    reason=reason,
                    ceiling_gbs=ceilings.get(s),
                    total_gbs=_gbs(r[2]) if r else None,
                )
            )
        return tuple(out), statuses

    def sample(self, engines: tuple[EngineStats, ...] = ()) -> Sample:
        cpu_t0 = time.thread_time()
        now = time.time()
        mono = time.monotonic()
        interval = None if self._last_mono is None else mono - self._last_mono
        self._last_mono = mono
        pid, model_path = self._engine_pid(engines)

        cpu = self._cpu.read()
        threads = self._threads.read(pid, interval)
        if threads:
            cpu = dataclasses.replace(cpu, engine_threads=threads)
        nodes = self._memory.read_nodes()
        memory = self._memory.read_system()
        temps: tuple[Sensor, ...] = self._temps.read()
        gpus = self._gpu.read() if self._gpu is not None else ()
        temps += tuple(
            Sensor(
                chip="nvml",
                label=f"GPU{g.index}",
                kind="gpu",
                temp_c=g.temp_c,
                socket=None,
                device=str(g.index),
            )
            for g in gpus
            if g.available and g.temp_c is not None
        )
        placement = self._read_placement(pid, model_path, mono)
        traffic, traffic_status = self._traffic(interval, engines, placement)

        sources = [
            self._cpu.status,
            self._cpu.freq_status,
            self._threads.status,
            self._memory.status,
            self._memory.psi_status,
            self._temps.status,
            *traffic_status,
        ]
        if self._gpu is not None:
            sources.append(self._gpu.status)
        else:
            sources.append(
                SourceStatus("gpu", None, False, "NVML off (captured tree or --no-nvml)")
            )
        if placement is not None:
            sources.append(
                SourceStatus("placement", "numa_maps", placement.available, placement.reason)
            )
        cost_ms = (time.thread_time() - cpu_t0) * 1000.0
        return Sample(
            t=now,
            interval_s=interval,
            cpu=cpu,
            memory_traffic=traffic,
            nodes=nodes,
            memory=memory,
            temperatures=temps,
            gpus=gpus,
            placement=placement,
            engines=tuple(engines),
            sources=tuple(sources),
            sample_cost_ms=round(cost_ms, 3),
        )

    def close(self) -> None:
        for part in (
            self._cpu,
            self._threads,
            self._memory,
            self._temps,
            self._perf,
            self._resctrl,
            self._gpu,
        ):
            if part is not None:
                part.close()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
