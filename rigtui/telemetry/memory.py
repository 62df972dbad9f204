"""Memory per NUMA node, swap, and memory pressure.

Reads `sys/devices/system/node/nodeN/meminfo` (`numastat -m`), `proc/meminfo` (SwapTotal,
SwapFree; `free`) and `proc/pressure/memory` (PSI, kernel >= 4.20 with CONFIG_PSI; `cat`).
All kept open and re-read with pread.
"""

from __future__ import annotations

from rigtui.hostfs import HostFS
from rigtui.model.sample import NodeMemory, SourceStatus, SystemMemory
from rigtui.model.topology import Topology
from rigtui.probes.parse import parse_meminfo
from rigtui.telemetry.files import KeptFile, open_kept


def parse_psi(text: str) -> tuple[float | None, float | None]:
    """`some avg10=0.12 ...` / `full avg10=0.00 ...` -> (some avg10, full avg10) in %."""
    some = full = None
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for item in rest.split():
            key, _, value = item.partition("=")
            if key == "avg10":
                try:
                    v = float(value)
                except ValueError:
                    break
                if kind == "some":
                    some = v
                elif kind == "full":
                    full = v
                break
    return some, full


def _read(f: KeptFile | None) -> str | None:
    if f is None:
        return None
    try:
        return f.read().decode("ascii", errors="replace")
    except OSError:
        return None


class MemorySource:
    def __init__(self, fs: HostFS, topology: Topology) -> None:
        self._nodes: list[tuple[int, KeptFile | None]] = [
            (n.id, open_kept(fs, f"sys/devices/system/node/node{n.id}/meminfo"))
            for n in topology.nodes
        ]
        self._meminfo = open_kept(fs, "proc/meminfo")
        self._psi = open_kept(fs, "proc/pressure/memory", size_hint=256)
        missing = [nid for nid, f in self._nodes if f is None]
        self.status = SourceStatus(
            "nodes",
            "sysfs",
            not missing or len(missing) < len(self._nodes),
            f"no meminfo for node(s) {missing}" if missing else None,
        )
        self.psi_status = SourceStatus(
            "psi",
            "procfs" if self._psi else None,
            self._psi is not None,
            None
            if self._psi
            else "no /proc/pressure/memory (kernel without CONFIG_PSI, or booted with psi=0)",
        )

    def read_nodes(self) -> tuple[NodeMemory, ...]:
        out: list[NodeMemory] = []
        for nid, f in self._nodes:
            text = _read(f)
            info = parse_meminfo(text) if text else {}
            out.append(
                NodeMemory(
                    node=nid,
                    total_bytes=info.get("MemTotal"),
                    free_bytes=info.get("MemFree"),
                    file_bytes=info.get("FilePages"),
                    anon_bytes=info.get("AnonPages"),
                    hugepages_total=info.get("HugePages_Total"),  # pages of the default size
                    hugepages_free=info.get("HugePages_Free"),
                )
            )
        return tuple(out)

    def read_system(self) -> SystemMemory:
        text = _read(self._meminfo)
        info = parse_meminfo(text) if text else {}
        swap_total, swap_free = info.get("SwapTotal"), info.get("SwapFree")
        some = full = None
        psi = _read(self._psi)
        if psi:
            some, full = parse_psi(psi)
        return SystemMemory(
            swap_total_bytes=swap_total,
            swap_used_bytes=None
            if swap_total is None or swap_free is None
            else swap_total - swap_free,
            psi_some_avg10=some,
            psi_full_avg10=full,
        )

    def close(self) -> None:
        for _, f in self._nodes:
            if f is not None:
                f.close()
        for f in (self._meminfo, self._psi):
            if f is not None:
                f.close()
