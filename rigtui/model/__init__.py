"""Frozen dataclasses shared by every layer. No I/O here.

One submodule per area (topology, engine, sample, profile, analysis); everything is re-exported
here so callers write `from rigtui.model import Topology`. The profile, analysis and cpulist
names are resolved on first use (PEP 562): creating ~40 frozen dataclasses costs tens of
milliseconds, which `rigtui probe` (target < 0.3 s in all) should not pay for types it never uses.
"""

from __future__ import annotations

from rigtui.model.common import Problem, to_jsonable
from rigtui.model.engine import (
    BenchResult,
    Done,
    EngineEvent,
    EngineState,
    EngineStats,
    EngineSystemInfo,
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
    "BenchResult",
    "CacheDomain",
    "Check",
    "CheckContext",
    "Core",
    "CpuInfo",
    "CpuUsage",
    "Dimm",
    "Done",
    "EngineEvent",
    "EngineState",
    "EngineStats",
    "EngineSystemInfo",
    "Error",
    "Evidence",
    "Exit",
    "Figure",
    "GgufFacts",
    "Gpu",
    "GpuSample",
    "HostInfo",
    "LaunchPlan",
    "LoadProgress",
    "Loaded",
    "Log",
    "LogicalCpu",
    "MemBenchResult",
    "MemoryInfo",
    "MemoryTraffic",
    "ModelPlacement",
    "NodeMemory",
    "NumaNode",
    "Placement",
    "Plan",
    "PolicyApplied",
    "Problem",
    "Profile",
    "ProfileIssue",
    "ProfileRef",
    "PromptDone",
    "Sample",
    "Sampling",
    "Sensor",
    "Socket",
    "SourceStatus",
    "Starting",
    "SystemMemory",
    "Token",
    "Topology",
    "event_from_json",
    "event_to_json",
    "format_cpulist",
    "parse_cpulist",
    "to_jsonable",
]

_LAZY = {
    **dict.fromkeys(
        ("Check", "CheckContext", "Evidence", "Figure", "GgufFacts", "MemBenchResult", "Plan"),
        "rigtui.model.analysis",
    ),
    **dict.fromkeys(
        ("LaunchPlan", "Profile", "ProfileIssue", "ProfileRef", "Sampling"), "rigtui.model.profile"
    ),
    **dict.fromkeys(("format_cpulist", "parse_cpulist"), "rigtui.model.cpulist"),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rigtui.model' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
