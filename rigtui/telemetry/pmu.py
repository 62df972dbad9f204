"""Find the memory-controller PMUs of this machine and the events that count DRAM bytes.

Reads `sys/bus/event_source/devices/*/{type,cpumask,format/*,events/*}` (what `perf list` shows):
- Intel servers: `uncore_imc_N` with `cas_count_read` / `cas_count_write` (64 B per count; the
  `.scale`/`.unit` files say so). Granite Rapids / Sierra Forest have two schedulers per channel
  and name the events `cas_count_read_sch0` + `_sch1`: both are counted and summed (one alone
  reads half the traffic). Intel clients: `uncore_imc` `data_reads` / `data_writes`.
- AMD Zen 4/5: `amd_umc_N`, one PMU per memory channel, no named events: the raw UMC CAS
  command event `event=0x0a` with `rdwrmask=1` (reads) / `rdwrmask=2` (writes), 64 B each
  (AMD PPR for family 19h model 10h, "UMC performance counters"; perf's amdzen4 JSON
  `umc_cas_cmd.rd/.wr`).
- AMD Zen 2/3 (family 17h/19h before PerfMonV2): `amd_df`, the data-fabric DRAM-channel events
  `dram_channel_data_controller_0..7` (event 0x07 + 0x40*n, umask 0x38; 64 B per count, reads
  and writes together; perf's amdzen2/amdzen3 data-fabric JSON). Recognised by its `event`
  format "config:0-7,32-35,59-60" (PerfMonV2 DF has another layout and other events).
Every `type`, bit position and scale comes from sysfs; only the AMD event numbers, which the
kernel does not publish, come from the tables above. Shell: `ls /sys/bus/event_source/devices`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rigtui.hostfs import HostFS
from rigtui.probes.parse import parse_cpulist
from rigtui.telemetry.perf import (
    PMU_DIR,
    FormatError,
    encode_config,
    parse_event_terms,
    unit_scale,
)

_INTEL_IMC = re.compile(r"^uncore_imc(_\d+)?$")
_AMD_UMC = re.compile(r"^amd_umc_\d+$")
# (event name, direction) in order of preference; the first pair that exists is used.
_INTEL_EVENT_SETS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("cas_count_read", "read"), ("cas_count_write", "write")),
    (
        ("cas_count_read_sch0", "read"),
        ("cas_count_read_sch1", "read"),
        ("cas_count_write_sch0", "write"),
        ("cas_count_write_sch1", "write"),
    ),
    (("data_reads", "read"), ("data_writes", "write")),
)
_AMD_UMC_EVENTS = (
    ("umc_cas_cmd.rd", "read", "event=0x0a,rdwrmask=0x1"),
    ("umc_cas_cmd.wr", "write", "event=0x0a,rdwrmask=0x2"),
)
_AMD_DF_EVENTS = tuple(
    (f"dram_channel_data_controller_{n}", "total", f"event={0x07 + 0x40 * n:#x},umask=0x38")
    for n in range(8)
)
_AMD_DF_PRE_V2_EVENT_FORMAT = "config:0-7,32-35,59-60"
CACHE_LINE = 64.0


@dataclass(frozen=True)
class MemEvent:
    """One event to open: on `cpu`, counting bytes of `direction` for `socket`."""

    pmu: str  # "uncore_imc_3"
    pmu_type: int
    event: str  # "cas_count_read"
    direction: str  # "read" | "write" | "total" (read+write together)
    config: tuple[int, int, int]  # config, config1, config2
    bytes_per_count: float
    cpu: int
    socket: int | None


@dataclass(frozen=True)
class PmuPlan:
    """What to open for memory traffic, or why nothing can be."""

    source: str | None  # "perf:uncore_imc", "perf:amd_umc", "perf:amd_df"
    events: tuple[MemEvent, ...]
    reason: str | None = None  # when events is empty
    notes: tuple[str, ...] = ()


def _read_formats(fs: HostFS, pmu: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in fs.listdir(f"{PMU_DIR}/{pmu}/format"):
        spec = fs.read_str(f"{PMU_DIR}/{pmu}/format/{name}")
        if spec:
            out[name] = spec
    return out


def _pmu_cpus(fs: HostFS, pmu: str) -> tuple[int, ...]:
    text = fs.read_str(f"{PMU_DIR}/{pmu}/cpumask")
    if not text:
        return ()
    try:
        return parse_cpulist(text)
    except ValueError:
        return ()


def _events_for(
    fs: HostFS,
    pmu: str,
    socket_of_cpu,
    wanted: tuple[tuple[str, str, str | None], ...],
    notes: list[str],
) -> list[MemEvent]:
    """Encode `wanted` (name, direction, raw terms or None = read events/NAME) for one PMU,
    one event per CPU of its cpumask (one CPU per package/die the PMU covers)."""
    base = f"{PMU_DIR}/{pmu}"
    pmu_type = fs.read_int(f"{base}/type")
    cpus = _pmu_cpus(fs, pmu)
    if pmu_type is None or not cpus:
        notes.append(f"{pmu}: no type or cpumask in {base}")
        return []
    formats = _read_formats(fs, pmu)
    out: list[MemEvent] = []
    for name, direction, raw in wanted:
        if raw is None:
            terms_text = fs.read_str(f"{base}/events/{name}")
            per_count = unit_scale(
                fs.read_str(f"{base}/events/{name}.scale"),
                fs.read_str(f"{base}/events/{name}.unit"),
            )
        else:
            terms_text, per_count = raw, CACHE_LINE
        if terms_text is None or per_count is None:
            notes.append(f"{pmu}/{name}: missing event or unknown unit")
            return []
        try:
            cfg = encode_config(parse_event_terms(terms_text), formats)
        except FormatError as exc:
            notes.append(f"{pmu}/{name}: {exc}")
            return []
        for cpu in cpus:
            out.append(
                MemEvent(
                    pmu,
                    pmu_type,
                    name,
                    direction,
                    (cfg["config"], cfg["config1"], cfg["config2"]),
                    per_count,
                    cpu,
                    socket_of_cpu(cpu),
                )
            )
    return out


def plan_memory_events(fs: HostFS, socket_of_cpu) -> PmuPlan:
    """The best memory-controller source this machine's sysfs offers (see module doc).

    `socket_of_cpu(cpu) -> int | None` maps the CPU an event is opened on to its socket
    (`Topology.socket_of_cpu`), which is how SNC/NPS nodes and dies land on the right socket.
    """
    pmus = fs.listdir(PMU_DIR)
    notes: list[str] = []
    intel = [p for p in pmus if _INTEL_IMC.match(p)]
    if intel:
        events: list[MemEvent] = []
        for pmu in intel:
            have = set(fs.listdir(f"{PMU_DIR}/{pmu}/events"))
            for event_set in _INTEL_EVENT_SETS:
                if all(name in have for name, _ in event_set):
                    wanted = tuple((n, d, None) for n, d in event_set)
                    events += _events_for(fs, pmu, socket_of_cpu, wanted, notes)
                    break
            else:
                notes.append(f"{pmu}: no cas_count_read/write events")
        if events:
            return PmuPlan("perf:uncore_imc", tuple(events), notes=tuple(notes))
    umc = [p for p in pmus if _AMD_UMC.match(p)]
    if umc:
        events = []
        for pmu in umc:
            events += _events_for(fs, pmu, socket_of_cpu, _AMD_UMC_EVENTS, notes)
        if events:
            return PmuPlan("perf:amd_umc", tuple(events), notes=tuple(notes))
    if "amd_df" in pmus:
        fmt = fs.read_str(f"{PMU_DIR}/amd_df/format/event")
        if fmt == _AMD_DF_PRE_V2_EVENT_FORMAT:
            events = _events_for(fs, "amd_df", socket_of_cpu, _AMD_DF_EVENTS, notes)
            if events:
                return PmuPlan("perf:amd_df", tuple(events), notes=tuple(notes))
        else:
            notes.append(
                f"amd_df: event format {fmt!r} is not the Zen 2/3 layout; "
                "its DRAM-channel events are unknown"
            )
    if notes:
        return PmuPlan(
            None, (), "memory-controller PMU found but unusable: " + "; ".join(notes), tuple(notes)
        )
    return PmuPlan(
        None,
        (),
        "no memory-controller PMU (uncore_imc, amd_umc, amd_df) in "
        f"/{PMU_DIR} (a VM, or a CPU/kernel without uncore support)",
    )
