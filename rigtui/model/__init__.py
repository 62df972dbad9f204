"""Frozen dataclasses shared by every layer. No I/O here.

One submodule per area (topology, engine, sample, profile, analysis); everything is re-exported
here so callers write `from rigtui.model import Topology`.
"""

from __future__ import annotations

from rigtui.model.common import Problem, to_jsonable
from rigtui.model.engine import (
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Loaded,
    LoadProgress,
    Log,
    Placement,
    PolicyApplied,
    PromptDone,
    Starting,
    Token,
    event_from_json,
    event_to_json,
)
from rigtui.model.sample import (
    CpuUsage,
    GpuSample,
    MemoryTraffic,
    ModelPlacement,
    NodeMemory,
    Sample,
    SourceStatus,
    SystemMemory,
)
from rigtui.model.topology import (
    CacheDomain,
    Core,
    CpuInfo,
    Dimm,
    Gpu,
    HostInfo,
    LogicalCpu,
    MemoryInfo,
    NumaNode,
    Sensor,
    Socket,
    Topology,
)

__all__ = [
    "CacheDomain", "Core", "CpuInfo", "CpuUsage", "Dimm", "Done", "EngineEvent", "EngineState",
    "EngineStats", "Error", "Exit", "Gpu", "GpuSample", "HostInfo", "Loaded", "LoadProgress",
    "Log", "LogicalCpu", "MemoryInfo", "MemoryTraffic", "ModelPlacement", "NodeMemory",
    "NumaNode", "Placement", "PolicyApplied", "Problem", "PromptDone", "Sample", "Sensor",
    "Socket", "SourceStatus", "Starting", "SystemMemory", "Token", "Topology", "event_from_json",
    "event_to_json", "to_jsonable",
]
