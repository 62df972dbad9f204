"""The processor: vendor, model, ISA flags that matter for inference, frequencies, hybrid kinds,
and the CPUs this process may use.

Files read (shell equivalents `lscpu`, `grep flags /proc/cpuinfo`, `taskset -p $$`):
- proc/cpuinfo (vendor_id, model name, cpu family, model, stepping, flags; ARM: Features,
  CPU implementer/part; POWER: cpu; IA-64: vendor/family)
- sys/devices/system/cpu/cpu*/cpufreq/{cpuinfo_max_freq,cpuinfo_min_freq,base_frequency}
- sys/devices/system/cpu/cpu*/{cpu_capacity,regs/identification/midr_el1}
- sys/devices/{cpu_core,cpu_atom}/cpus (Intel hybrid PMUs: P-cores, E-cores)
- proc/self/status Cpus_allowed_list; cgroup cpuset (v1 mount or v2 cpuset.cpus.effective);
  on the live machine `os.sched_getaffinity(0)`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from rigtui.hostfs import HostFS
from rigtui.probes.parse import parse_cpuinfo, parse_cpulist
from rigtui.probes.topology import CPU_DIR, read_list

# Flags llama.cpp / ggml kernels select on (x86 names as /proc/cpuinfo spells them; ARM "Features").
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "i8mm", "sve", "sve2", "bf16", "vsx",
)  # fmt: skip

# (implementer, part) -> core name, for ARM /proc/cpuinfo that has no model name.
ARM_PARTS = {
    (0x41, 0xC09): "Cortex-A9", (0x41, 0xD03): "Cortex-A53", (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1", (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD8E): "Neoverse-N3", (0x41, 0xD85): "Cortex-X925", (0x41, 0xD87): "Cortex-A725",
    (0x48, 0xD01): "Kunpeng-920", (0xC0, 0xAC3): "Ampere-1", (0xC0, 0xAC4): "Ampere-1a",
    (0x61, 0x022): "Apple M1",
}  # fmt: skip
ARM_VENDORS = {0x41: "ARM", 0x48: "HiSilicon", 0x4E: "NVIDIA", 0xC0: "Ampere", 0x61: "Apple"}


@dataclass
class CpuFacts:
    """Intermediate result: what cpu.py learned, before topology is assembled."""

    arch: str | None
    vendor: str | None
    model_name: str | None
    family: int | None
    model: int | None
    stepping: int | None
    flags: tuple[str, ...]
    isa: dict[str, bool]
    unknown: dict[str, str]
    cpuinfo_mhz: float | None = None


def _float(s: str | None) -> float | None:
    try:
        return float(s) if s is not None else None
    except ValueError:
        return None


def _int(s: str | None, base: int = 0) -> int | None:
    if s is None:
        return None
    try:
        return int(s.strip(), base)
    except ValueError:
        return None


def read_cpuinfo(fs: HostFS, *, live: bool) -> CpuFacts:
    text = fs.read_text("proc/cpuinfo")
    unknown: dict[str, str] = {}
    blocks = parse_cpuinfo(text) if text else []
    if text is None:
        unknown["model_name"] = "proc/cpuinfo unreadable"
    first = blocks[0] if blocks else {}
    merged: dict[str, str] = {}
    for b in reversed(blocks):  # the first processor wins; trailing machine block fills gaps
        merged.update(b)
    merged.update(first)
    flags_s = merged.get("flags") or merged.get("Features") or ""
    flags = tuple(flags_s.split())
    vendor = merged.get("vendor_id") or merged.get("vendor")
    name = merged.get("model name") or merged.get("cpu")
    arch = None
    impl = _int(merged.get("CPU implementer"), 16)
    if impl is not None:
        arch = "aarch64" if merged.get("CPU architecture", "").strip() == "8" else "arm"
        vendor = vendor or ARM_VENDORS.get(impl, f"ARM implementer 0x{impl:02x}")
        if not name or name.startswith("ARMv"):
            parts = []  # hybrid ARM (GB10: Cortex-X925 + Cortex-A725) lists every design
            for b in blocks:
                key = (_int(b.get("CPU implementer"), 16), _int(b.get("CPU part"), 16) or 0)
                core = ARM_PARTS.get(key)  # type: ignore[arg-type]
                if core and core not in parts:
                    parts.append(core)
            name = f"{vendor} {' + '.join(sorted(parts))}" if parts else name
    elif "POWER" in (name or ""):
        arch, vendor = "ppc64", vendor or "IBM"
    elif merged.get("arch") == "IA-64":
        arch = "ia64"
    elif vendor in ("GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls"):
        arch = "x86_64" if "lm" in flags else "i686"
    if live:
        arch = os.uname().machine or arch
        if not name:
            name = _cpuinfo_brand()
    if not name:
        unknown["model_name"] = "proc/cpuinfo has no model name"
    flag_set = set(flags)
    isa = {f: f in flag_set for f in ISA_FLAGS}
    isa["neon"] = isa["neon"] or isa["asimd"]  # aarch64 calls NEON "asimd"
    isa["avx512_vnni"] = isa["avx512_vnni"] or "avx512vnni" in flag_set
    if not flags:
        unknown["isa"] = "no flags/Features line in proc/cpuinfo"
    return CpuFacts(
        arch=arch,
        vendor=vendor,
        model_name=re.sub(r"\s+", " ", name).strip() if name else None,
        family=_int(merged.get("cpu family") or merged.get("family"), 10),
        model=_int(merged.get("model"), 10),
        stepping=_int(merged.get("stepping"), 10),
        flags=flags,
        isa=isa,
        unknown=unknown,
        # The clock the kernel measured at boot ("cpu MHz"): on VMs and machines without
        # cpufreq it is the only clock figure there is (x86 only; ARM has no such line).
        cpuinfo_mhz=_float(first.get("cpu MHz")),
    )


def _cpuinfo_brand() -> str | None:
    """py-cpuinfo's brand string (live machine only; it runs CPUID on x86)."""
    try:
        import cpuinfo  # py-cpuinfo

        return cpuinfo.get_cpu_info().get("brand_raw") or None
    except Exception:  # noqa: BLE001 - an optional helper must never break the probe
        return None


def read_freqs(fs: HostFS, cpu_ids: list[int]) -> dict[int, tuple[float | None, float | None]]:
    """cpu id -> (max MHz, min MHz) from cpufreq (kHz in sysfs)."""
    out = {}
    for cid in cpu_ids:
        base = f"{CPU_DIR}/cpu{cid}/cpufreq"
        mx = fs.read_int(f"{base}/cpuinfo_max_freq")
        mn = fs.read_int(f"{base}/cpuinfo_min_freq")
        out[cid] = (mx / 1000 if mx else None, mn / 1000 if mn else None)
    return out


def read_capacities(fs: HostFS, cpu_ids: list[int]) -> dict[int, int | None]:
    return {cid: fs.read_int(f"{CPU_DIR}/cpu{cid}/cpu_capacity") for cid in cpu_ids}


def read_kinds(fs: HostFS, cpu_ids: list[int], capacity: dict[int, int | None]) -> dict[int, str]:
    """Hybrid core kinds "P"/"E" where the kernel tells them; {} on homogeneous machines.

    Sources, most direct first: Intel's hybrid PMU directories (sys/devices/cpu_core/cpus and
    cpu_atom/cpus); on ARM, distinct MIDR values (core designs), ranked by cpu_capacity; else
    intel_pstate's base_frequency, which differs between P- and E-cores (Turbo Boost Max makes
    cpuinfo_max_freq differ among P-cores too, so it is not used: see hwloc's cpukinds)."""
    p = read_list(fs, "sys/devices/cpu_core/cpus")
    e = read_list(fs, "sys/devices/cpu_atom/cpus")
    if p and e:
        return {**{c: "P" for c in p}, **{c: "E" for c in e}}
    groups: dict[object, list[int]] = {}
    for cid in cpu_ids:
        midr = fs.read_str(f"{CPU_DIR}/cpu{cid}/regs/identification/midr_el1")
        if midr is None:
            groups = {}
            break
        groups.setdefault((_int(midr, 16) or 0) >> 4 & 0xFFF, []).append(cid)  # part number
    rank_by: dict[int, float] = {}
    if len(groups) == 2:
        for members in groups.values():
            caps = [capacity.get(c) or 0 for c in members]
            for c in members:
                rank_by[c] = max(caps)
    else:
        base = {c: fs.read_int(f"{CPU_DIR}/cpu{c}/cpufreq/base_frequency") for c in cpu_ids}
        if all(base.values()) and len(set(base.values())) == 2:
            rank_by = {c: float(v or 0) for c, v in base.items()}
    if len(set(rank_by.values())) != 2:
        return {}
    top = max(rank_by.values())
    return {c: "P" if v == top else "E" for c, v in rank_by.items()}


def read_allowed(fs: HostFS) -> tuple[tuple[int, ...] | None, str | None]:
    """CPUs this process may run on, and where that came from; (None, reason) if unknown.

    Live: the scheduler affinity (covers taskset, cgroup cpusets and containers). A captured
    tree: proc/self/status, else the cgroup cpuset the capture was taken in."""
    if fs.is_live:
        try:
            return tuple(sorted(os.sched_getaffinity(0))), "sched_getaffinity"
        except (AttributeError, OSError):
            pass
    status = fs.read_text("proc/self/status")
    if status:
        m = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.MULTILINE)
        if m:
            try:
                return parse_cpulist(m.group(1)), "proc/self/status"
            except ValueError:
                fs.note("proc/self/status", "bad Cpus_allowed_list")
    path = _cpuset_path(fs)
    mounts = fs.read_text("proc/mounts") or ""
    if path is not None:
        for line in mounts.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            mnt = parts[1].lstrip("/")
            opts = parts[3] if len(parts) > 3 else ""
            if parts[2] == "cpuset" or (parts[2] == "cgroup" and "cpuset" in opts.split(",")):
                rel = f"{mnt}/{path}".replace("//", "/").rstrip("/")
                cpus = read_list(fs, f"{rel}/cpus") or read_list(fs, f"{rel}/cpuset.cpus")
                if cpus:
                    return cpus, f"cgroup cpuset {rel}"
            elif parts[2] == "cgroup2":
                rel = f"{mnt}/{path}".replace("//", "/").rstrip("/")
                cpus = read_list(fs, f"{rel}/cpuset.cpus.effective")
                if cpus:
                    return cpus, f"cgroup2 {rel}"
    return None, "no affinity information in this tree"


def _cpuset_path(fs: HostFS) -> str | None:
    text = fs.read_str("proc/self/cpuset")
    if text:
        return text.strip().lstrip("/")
    cg = fs.read_text("proc/self/cgroup") or ""
    for line in cg.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[0] == "0" or "cpuset" in parts[1].split(",")):
            return parts[2].strip().lstrip("/")
    return None
