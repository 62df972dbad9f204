"""Per-CPU utilisation and frequency, grouped per NUMA node and socket.

Reads `proc/stat` (the `cpuN` lines: jiffies per state since boot, like `mpstat -P ALL 1`) and
`sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq` (kHz, like `cpupower monitor`), both
kept open and re-read with pread.
"""

from __future__ import annotations

from types import MappingProxyType

from rigtui.hostfs import HostFS
from rigtui.model.sample import CpuUsage, SourceStatus
from rigtui.model.topology import Topology
from rigtui.telemetry.files import KeptFile, open_kept


def parse_proc_stat_cpus(data: bytes) -> dict[int, tuple[int, int]]:
    """`cpuN user nice system idle iowait irq softirq steal ...` -> {N: (busy, total)} jiffies.

    Only the per-CPU lines are parsed (they come first; the long `intr` line is skipped). Idle
    and iowait are "not busy"; guest time is already inside user/nice.
    """
    out: dict[int, tuple[int, int]] = {}
    for line in data.split(b"\n"):
        if not line.startswith(b"cpu"):
            if out:
                break
            continue
        name, _, rest = line.partition(b" ")
        if len(name) == 3:  # the aggregate "cpu " line
            continue
        try:
            cpu = int(name[3:])
            v = [int(x) for x in rest.split()[:8]]
        except ValueError:
            continue
        if len(v) < 4:
            continue
        v += [0] * (8 - len(v))
        idle = v[3] + v[4]
        total = sum(v)
        out[cpu] = (total - idle, total)
    return out


def utilisation(prev: tuple[int, int] | None, cur: tuple[int, int]) -> float | None:
    """% busy between two (busy, total) readings; None without a previous one or no time."""
    if prev is None:
        return None
    d_total = cur[1] - prev[1]
    if d_total <= 0:
        return 0.0 if d_total == 0 else None
    return max(0.0, min(100.0, 100.0 * (cur[0] - prev[0]) / d_total))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class CpuSource:
    def __init__(self, fs: HostFS, topology: Topology) -> None:
        self._stat = open_kept(fs, "proc/stat", size_hint=16384)
        self._node = {c.id: c.node for c in topology.cpus}
        self._socket = {c.id: c.socket for c in topology.cpus}
        self._prev: dict[int, tuple[int, int]] = {}
        self._freq: dict[int, KeptFile] = {}
        for cpu in topology.online_cpus:
            f = open_kept(
                fs, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq", size_hint=64
            )
            if f is not None:
                self._freq[cpu] = f
        self.status = SourceStatus(
            "cpu",
            "procfs",
            self._stat is not None,
            None if self._stat else "cannot open /proc/stat",
        )
        self.freq_status = SourceStatus(
            "cpu_freq",
            "cpufreq" if self._freq else None,
            bool(self._freq),
            None
            if self._freq
            else "no cpufreq in sysfs (usual in VMs; or the cpufreq driver is not loaded)",
        )

    def read(self) -> CpuUsage:
        cur: dict[int, tuple[int, int]] = {}
        if self._stat is not None:
            try:
                cur = parse_proc_stat_cpus(self._stat.read())
            except OSError as exc:
                self.status = SourceStatus("cpu", "procfs", False, f"/proc/stat: {exc.strerror}")
        ids = tuple(sorted(cur))
        per_cpu: list[float] = []
        all_busy = all_total = 0
        by_node: dict[int, list[float]] = {}
        by_socket: dict[int, list[float]] = {}
        for cpu in ids:
            u = utilisation(self._prev.get(cpu), cur[cpu])
            value = 0.0 if u is None else u
            per_cpu.append(value)
            prev = self._prev.get(cpu)
            if prev is not None:
                all_busy += cur[cpu][0] - prev[0]
                all_total += cur[cpu][1] - prev[1]
            node, socket = self._node.get(cpu), self._socket.get(cpu)
            if node is not None:
                by_node.setdefault(node, []).append(value)
            if socket is not None:
                by_socket.setdefault(socket, []).append(value)
        self._prev = cur
        freq: list[float | None] = []
        for cpu in ids:
            f = self._freq.get(cpu)
            khz = None
            if f is not None:
                try:
                    khz = int(f.read())
                except (OSError, ValueError):
                    khz = None
            freq.append(None if khz is None else khz / 1000.0)
        total = 100.0 * all_busy / all_total if all_total > 0 else 0.0
        return CpuUsage(
            cpu_ids=ids,
            per_cpu=tuple(round(v, 1) for v in per_cpu),
            freq_mhz=tuple(freq),
            total=round(max(0.0, min(100.0, total)), 1),
            per_node=MappingProxyType({n: round(_mean(v), 1) for n, v in sorted(by_node.items())}),
            per_socket=MappingProxyType(
                {s: round(_mean(v), 1) for s, v in sorted(by_socket.items())}
            ),
        )

    def close(self) -> None:
        if self._stat is not None:
            self._stat.close()
        for f in self._freq.values():
            f.close()
        self._freq.clear()
