"""RAPL energy counters through powercap: joules used by the CPU packages (and DRAM, where the
CPU meters it) over a run, for tokens per joule.

    /sys/class/powercap/intel-rapl:N/name            "package-N"   (Intel, and AMD Zen since 5.11)
    /sys/class/powercap/intel-rapl:N:M/name          "dram" | "core" | "uncore"
    .../energy_uj, .../max_energy_range_uj           a counter in microjoules that wraps

The `intel-rapl-mmio` zones repeat the package counters through MMIO and `psys` meters the whole
platform: both are left out so nothing is counted twice. Since Linux 5.10 `energy_uj` is
readable by root only (the PLATYPUS side channel, CVE-2020-8694): without it the reader says so
and how to allow it, instead of a zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigtui.hostfs import HostFS

POWERCAP = "sys/class/powercap"
NEEDS_ROOT = ("powercap energy_uj is root-only since Linux 5.10 (CVE-2020-8694): run as root, "
              "or `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` on this machine")  # fmt: skip


@dataclass(frozen=True)
class RaplZone:
    path: str  # relative to the root: sys/class/powercap/intel-rapl:0
    name: str  # "package-0", "dram"
    kind: str  # "package" | "dram"
    max_uj: int | None  # where the counter wraps


@dataclass(frozen=True)
class EnergyReading:
    """Microjoules per zone path at one moment (None: that zone could not be read)."""

    uj: dict[str, int | None]


class Rapl:
    """The package and DRAM zones of a machine; `read()` now, `joules(a, b)` between two reads."""

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs
        self.zones: list[RaplZone] = []
        self.reason: str | None = None
        for entry in sorted(fs.listdir(POWERCAP)):
            if not entry.startswith("intel-rapl:"):  # intel-rapl-mmio, psys duplicates, others
                continue
            rel = f"{POWERCAP}/{entry}"
            name = (fs.read_str(f"{rel}/name") or "").strip()
            kind = "package" if name.startswith("package") else "dram" if name == "dram" else None
            if kind is None:  # core, uncore, psys: parts of a package, or the platform
                continue
            self.zones.append(RaplZone(rel, name, kind, fs.read_int(f"{rel}/max_energy_range_uj")))
        if not self.zones:
            self.reason = ("no RAPL package zone under /sys/class/powercap (no intel_rapl driver, "
                           "a VM, or a CPU without RAPL)")  # fmt: skip

    @property
    def available(self) -> bool:
        return bool(self.zones) and self.reason is None

    def read(self) -> EnergyReading | None:
        """Every zone's counter now; None (and `reason` set) when no package can be read."""
        if not self.zones:
            return None
        before = len(self.fs.problems)
        uj = {z.path: self.fs.read_int(f"{z.path}/energy_uj") for z in self.zones}
        if all(uj[z.path] is None for z in self.zones if z.kind == "package"):
            denied = any("permission denied" in p.reason for p in self.fs.problems[before:])
            self.reason = NEEDS_ROOT if denied else "RAPL energy_uj unreadable"
            return None
        return EnergyReading(uj)

    def joules(self, a: EnergyReading, b: EnergyReading) -> dict[str, float] | None:
        """{"package": J, "dram": J} used between two readings (a wrapped counter counted
        once around); None when a package zone is missing from either."""
        out: dict[str, float] = {}
        for z in self.zones:
            x, y = a.uj.get(z.path), b.uj.get(z.path)
            if x is None or y is None:
                if z.kind == "package":
                    return None
                continue
            delta = y - x
            if delta < 0:  # wrapped
                if not z.max_uj:
                    return None
                delta += z.max_uj
            out[z.kind] = out.get(z.kind, 0.0) + delta / 1e6
        return out

    def describe(self) -> str:
        names = ", ".join(z.name for z in self.zones)
        return f"RAPL via powercap ({names})" if names else "RAPL: none"
