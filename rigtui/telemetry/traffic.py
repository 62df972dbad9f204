"""Memory traffic per socket, best source first: perf memory-controller PMUs, resctrl MBM, and
an estimate from the engine's token rate.

Each source's `read(interval_s)` returns {socket: (read B/s, write B/s, total B/s)} (a part is
None when the source cannot split it), or None while it has no rate yet; `status` says whether
it is available and why not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from rigtui.hostfs import HostFS
from rigtui.model.sample import SourceStatus
from rigtui.model.topology import Topology
from rigtui.telemetry.perf import Counter, counter_delta, open_counter, refusal_reason
from rigtui.telemetry.pmu import MemEvent, PmuPlan, plan_memory_events

Rates = dict[int, tuple[float | None, float | None, float | None]]
Opener = Callable[[MemEvent], Counter]


def _open_event(ev: MemEvent) -> Counter:
    cfg = {"config": ev.config[0], "config1": ev.config[1], "config2": ev.config[2]}
    return open_counter(ev.pmu_type, cfg, cpu=ev.cpu)


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None and b is None else (a or 0.0) + (b or 0.0)


class PerfTraffic:
    """Uncore memory-controller counters through perf_event_open (see `pmu.py`)."""

    def __init__(
        self,
        fs: HostFS,
        topology: Topology,
        *,
        plan: PmuPlan | None = None,
        opener: Opener = _open_event,
    ) -> None:
        self.plan = plan or plan_memory_events(fs, topology.socket_of_cpu)
        self.source = self.plan.source or "perf"
        self._counters: list[tuple[MemEvent, Counter]] = []
        self._prev: list[tuple[int, int, int] | None] = []
        if not self.plan.events:
            self.status = SourceStatus("memory_traffic:perf", None, False, self.plan.reason)
            return
        paranoid = fs.read_int("proc/sys/kernel/perf_event_paranoid")
        try:
            for ev in self.plan.events:
                self._counters.append((ev, opener(ev)))
        except OSError as exc:
            self.close()
            self.status = SourceStatus(
                "memory_traffic:perf", self.source, False, refusal_reason(exc, paranoid)
            )
            return
        self._prev = [None] * len(self._counters)
        self.status = SourceStatus("memory_traffic:perf", self.source, True)

    @property
    def available(self) -> bool:
        return self.status.available

    def read(self, interval_s: float | None) -> Rates | None:
        if not self.status.available:
            return None
        sums: dict[int, dict[str, float]] = {}
        complete = interval_s is not None and interval_s > 0
        for i, (ev, counter) in enumerate(self._counters):
            try:
                value, enabled, running = counter.read()
            except OSError as exc:
                # The PMU or the CPU it counted on went away: stop, say so, let the next source in.
                self.close()
                self.status = SourceStatus(
                    "memory_traffic:perf",
                    self.source,
                    False,
                    f"{ev.pmu}/{ev.event} on CPU {ev.cpu} stopped counting "
                    f"({exc.strerror or exc}): the PMU went away",
                )
                return None
            prev, self._prev[i] = self._prev[i], (value, enabled, running)
            if prev is None:
                complete = False
                continue
            d_value = counter_delta(prev[0], value)
            d_enabled, d_running = enabled - prev[1], running - prev[2]
            if d_value is None or d_running <= 0:
                complete = False  # reset, or never scheduled in this interval
                continue
            count = d_value * (d_enabled / d_running) if d_enabled > d_running else d_value
            socket = -1 if ev.socket is None else ev.socket
            per = sums.setdefault(socket, {})
            per[ev.direction] = per.get(ev.direction, 0.0) + count * ev.bytes_per_count
        if not complete or interval_s is None:
            return None
        out: Rates = {}
        for socket, per in sums.items():
            rd, wr, tot = per.get("read"), per.get("write"), per.get("total")
            r = None if rd is None else rd / interval_s
            w = None if wr is None else wr / interval_s
            t = tot / interval_s if tot is not None else _sum(r, w)
            out[socket] = (r, w, t)
        return out

    def close(self) -> None:
        for _, counter in self._counters:
            with contextlib.suppress(OSError):
                counter.close()
        self._counters = []


def l3_socket_map(fs: HostFS, topology: Topology) -> dict[int, int]:
    """L3 cache id (`cpuN/cache/indexK/id` where level == 3) -> socket, for resctrl's
    mon_L3_<id> domains. Shell: `grep . /sys/devices/system/cpu/cpu*/cache/index3/id`."""
    out: dict[int, int] = {}
    for c in topology.cpus:
        if c.socket is None:
            continue
        base = f"sys/devices/system/cpu/cpu{c.id}/cache"
        for idx in fs.listdir(base):
            if fs.read_str(f"{base}/{idx}/level") == "3":
                cid = fs.read_int(f"{base}/{idx}/id")
                if cid is not None:
                    out.setdefault(cid, c.socket)
                break
    return out


class ResctrlTraffic:
    """Intel RDT / AMD PQoS memory-bandwidth monitoring: `sys/fs/resctrl/mon_data/mon_L3_*/
    mbm_total_bytes` (bytes since the group was created, read + write), summed per socket.
    Counts the tasks of the root group (every task not moved into another group).
    See the kernel's Documentation/arch/x86/resctrl.rst. Shell: `cat .../mbm_total_bytes`."""

    BASE = "sys/fs/resctrl/mon_data"

    def __init__(self, fs: HostFS, topology: Topology) -> None:
        self._fs = fs
        self._domains: list[tuple[int, str]] = []  # (socket, path)
        self._prev: dict[str, int] = {}
        if not fs.isdir(self.BASE):
            why = (
                "resctrl not mounted (mount -t resctrl resctrl /sys/fs/resctrl; needs a CPU "
                "with memory-bandwidth monitoring)"
                if not fs.isdir("sys/fs/resctrl")
                else "resctrl has no monitoring (mon_data): no MBM on this CPU"
            )
            self.status = SourceStatus("memory_traffic:resctrl", None, False, why)
            return
        l3_to_socket = l3_socket_map(fs, topology)
        for dom in fs.listdir(self.BASE):
            if not dom.startswith("mon_L3_"):
                continue
            rel = f"{self.BASE}/{dom}/mbm_total_bytes"
            try:
                socket = l3_to_socket.get(int(dom[7:]), -1)
            except ValueError:
                continue
            if fs.exists(rel):
                self._domains.append((socket, rel))
        self.status = SourceStatus(
            "memory_traffic:resctrl",
            "resctrl",
            bool(self._domains),
            None
            if self._domains
            else "resctrl is mounted but has no mbm_total_bytes "
            "(no memory-bandwidth monitoring on this CPU, or disabled: rdt=mbmtotal)",
        )

    @property
    def available(self) -> bool:
        return self.status.available

    def read(self, interval_s: float | None) -> Rates | None:
        if not self.status.available:
            return None
        totals: dict[int, float] = {}
        complete = interval_s is not None and interval_s > 0
        for socket, rel in self._domains:
            try:
                with open(self._fs.path(rel), "rb") as f:
                    text = f.read(64).strip()
            except OSError as exc:
                self.status = SourceStatus(
                    "memory_traffic:resctrl", "resctrl", False, f"/{rel}: {exc.strerror or exc}"
                )
                return None
            if not text.isdigit():  # "Unavailable" (RMID not yet counted) or "Error"
                self._prev.pop(rel, None)
                complete = False
                continue
            value = int(text)
            prev = self._prev.get(rel)
            self._prev[rel] = value
            delta = None if prev is None else counter_delta(prev, value)
            if delta is None:
                complete = False
                continue
            totals[socket] = totals.get(socket, 0.0) + delta
        if not complete or interval_s is None:
            return None
        return {s: (None, None, b / interval_s) for s, b in totals.items()}

    def close(self) -> None:
        self._domains = []


def estimate_rates(
    bytes_per_token: float | None,
    gen_tok_s: float | None,
    sockets: tuple[int, ...],
    model_bytes_per_socket: dict[int, int] | None,
) -> tuple[Rates | None, str | None]:
    """bytes read per generated token x tokens/s, per socket.

    One socket: all of it. Several: split by where the model's pages sit (numa_maps), else no
    per-socket figure (the reason carries the whole-machine number)."""
    if bytes_per_token is None:
        return None, "no bytes-per-token figure for the running model"
    if not gen_tok_s:
        return None, "the engine is not generating"
    total = bytes_per_token * gen_tok_s
    if len(sockets) <= 1:
        return {sockets[0] if sockets else 0: (total, None, total)}, None
    placed = {s: b for s, b in (model_bytes_per_socket or {}).items() if b > 0}
    whole = sum(placed.values())
    if not whole:
        return None, (
            f"whole machine ~{total / 1e9:.1f} GB/s; the per-socket split needs the "
            "model's placement (numa_maps)"
        )
    return {
        s: (total * placed.get(s, 0) / whole, None, total * placed.get(s, 0) / whole)
        for s in sockets
    }, None
