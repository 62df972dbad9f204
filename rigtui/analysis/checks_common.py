"""Small helpers shared by the check modules: building a Check, formatting bytes, file names."""

from __future__ import annotations

from rigtui.model.analysis import Check, Evidence

GiB = 1 << 30

# Files the probes read, as the user would `cat` them (evidence names these).
F_THP = "/sys/kernel/mm/transparent_hugepage/enabled"
F_THP_DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"
F_NUMA_BALANCING = "/proc/sys/kernel/numa_balancing"
F_GOVERNOR = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
F_BOOST = "/sys/devices/system/cpu/cpufreq/boost (or intel_pstate/no_turbo)"
F_SMT = "/sys/devices/system/cpu/smt/control"
F_MEMINFO = "/proc/meminfo"
F_PSI = "/proc/pressure/memory"
F_OSRELEASE = "/proc/sys/kernel/osrelease"
F_PARANOID = "/proc/sys/kernel/perf_event_paranoid"
F_MOUNTS = "/proc/mounts"
F_CPUINFO = "/proc/cpuinfo"
F_NODES = "/sys/devices/system/node"
F_SYSINFO = "llama_cpp.llama_print_system_info()"
F_OFFLOAD = "llama_cpp.llama_supports_gpu_offload()"


def check(
    id: str,
    title: str,
    status: str,
    summary: str,
    evidence: list[tuple[str, object]],
    why: str,
    fix: str | None = None,
) -> Check:
    """A Check; `fix` is dropped for a pass (nothing to do)."""
    ev = tuple(Evidence(src, "unknown" if v is None else str(v)) for src, v in evidence)
    return Check(id, title, status, summary, ev, why, None if status == "pass" else fix)


def gib(n: int | float | None) -> str:
    return "?" if n is None else f"{n / GiB:.1f} GiB"


def reason(unknown: object, key: str, default: str) -> str:
    """The probe's recorded reason for a None value, else `default`."""
    try:
        return str(unknown.get(key) or default)  # type: ignore[attr-defined]
    except AttributeError:
        return default
