"""Live telemetry: one `Sample` per tick of `rigtui.telemetry.Sampler`.

Every reading says where it came from (`source`: "perf:uncore_imc", "perf:amd_umc", "resctrl",
"estimate", "nvml", "procfs", ...) and, when it could not be had, `available=False` plus why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rigtui.model.engine import EngineStats
from rigtui.model.topology import Sensor


def _ro() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class SourceStatus:
    name: str  # "memory_traffic", "gpu", "placement", ...
    source: str | None  # the backend in use
    available: bool
    reason: str | None = None


@dataclass(frozen=True)
class CpuUsage:
    cpu_ids: tuple[int, ...]  # online CPUs, same order as per_cpu
    per_cpu: tuple[float, ...]  # utilisation % over the last interval
    freq_mhz: tuple[float | None, ...]
    total: float  # % of all online CPUs
    per_node: Mapping[int, float] = field(default_factory=_ro)
    per_socket: Mapping[int, float] = field(default_factory=_ro)
    engine_threads: tuple[tuple[int, float], ...] = ()  # (tid, % of one CPU) of the engine


@dataclass(frozen=True)
class MemoryTraffic:
    socket: int
    read_gbs: float | None
    write_gbs: float | None
    source: str | None
    available: bool
    reason: str | None = None
    ceiling_gbs: float | None = None  # theoretical bandwidth of this socket
    # read + write; the only figure for sources that cannot split them (amd_df, resctrl MBM)
    total_gbs: float | None = None


@dataclass(frozen=True)
class NodeMemory:
    node: int
    total_bytes: int | None
    free_bytes: int | None
    file_bytes: int | None
    anon_bytes: int | None
    hugepages_total: int | None = None
    hugepages_free: int | None = None


@dataclass(frozen=True)
class ModelPlacement:
    pid: int
    available: bool
    model_file_bytes_per_node: Mapping[int, int] = field(default_factory=_ro)
    anon_bytes_per_node: Mapping[int, int] = field(default_factory=_ro)
    model_path: str | None = None
    t: float | None = None  # when numa_maps was last read (it is polled slowly)
    reason: str | None = None
    model_file_bytes: int | None = None  # the model file's size: pages / size = share resident


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str | None
    available: bool
    reason: str | None = None
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_bytes: int | None = None
    mem_total_bytes: int | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    pcie_gen: int | None = None
    pcie_gen_max: int | None = None
    pcie_width: int | None = None
    pcie_width_max: int | None = None
    pcie_tx_bytes_s: float | None = None
    pcie_rx_bytes_s: float | None = None
    processes: tuple[tuple[int, int | None], ...] = ()  # (pid, used GPU memory bytes)


@dataclass(frozen=True)
class SystemMemory:
    swap_total_bytes: int | None
    swap_used_bytes: int | None
    psi_some_avg10: float | None  # /proc/pressure/memory
    psi_full_avg10: float | None


@dataclass(frozen=True)
class Sample:
    t: float  # unix time
    interval_s: float | None  # since the previous sample (None for the first)
    cpu: CpuUsage
    memory_traffic: tuple[MemoryTraffic, ...]
    nodes: tuple[NodeMemory, ...]
    memory: SystemMemory
    temperatures: tuple[Sensor, ...]
    gpus: tuple[GpuSample, ...]
    placement: ModelPlacement | None
    engines: tuple[EngineStats, ...] = ()
    sources: tuple[SourceStatus, ...] = ()
    sample_cost_ms: float | None = None  # CPU time (process) the sample took
