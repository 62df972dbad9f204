"""Checks about the CPU and kernel: governor, boost, SMT, kernel version, perf counters, resctrl.

Inputs: the probed HostInfo/CpuInfo (cpufreq, smt/control, osrelease, perf_event_paranoid,
/proc/mounts, /proc/cpuinfo flags).
"""

from __future__ import annotations

import re

from rigtui.analysis.checks_common import (
    F_BOOST,
    F_CPUINFO,
    F_GOVERNOR,
    F_MOUNTS,
    F_OSRELEASE,
    F_PARANOID,
    F_SMT,
    check,
    reason,
)
from rigtui.model.analysis import Check, CheckContext
from rigtui.model.topology import Topology


def cpu_governor(top: Topology) -> Check:
    title, cid = "CPU frequency governor", "cpu_governor"
    why = "Power-saving governors ramp clocks slowly; prompt processing is compute bound."
    govs = dict(top.host.governors)
    ev = [(F_GOVERNOR, ", ".join(f"{g} x{n}" for g, n in sorted(govs.items())) or None)]
    if not govs:
        return check(
            cid,
            title,
            "unknown",
            reason(
                top.host.unknown, "governors", "no cpufreq (a VM, or firmware-controlled frequency)"
            ),
            ev,
            why,
            "on bare metal load the cpufreq driver (amd-pstate / intel_pstate / acpi-cpufreq)",
        )
    others = {g: n for g, n in govs.items() if g != "performance"}
    if others:
        return check(
            cid,
            title,
            "warn",
            "governor " + ", ".join(f"{g} on {n} CPU(s)" for g, n in sorted(others.items())),
            ev,
            why,
            "sudo cpupower frequency-set -g performance",
        )
    return check(cid, title, "pass", "all CPUs use the performance governor", ev, why)


def cpu_boost(top: Topology) -> Check:
    title, cid = "CPU boost", "cpu_boost"
    why = "Boost clocks add prompt-processing speed (compute-bound); generation barely changes."
    boost = top.host.boost
    ev = [(F_BOOST, None if boost is None else ("on" if boost else "off"))]
    if boost is None:
        return check(
            cid,
            title,
            "unknown",
            reason(
                top.host.unknown, "boost", "boost state not exposed (VM or firmware-controlled)"
            ),
            ev,
            why,
            "check the BIOS (Core Performance Boost / Turbo Mode)",
        )
    if not boost:
        return check(
            cid,
            title,
            "warn",
            "boost is off",
            ev,
            why,
            "echo 1 | sudo tee /sys/devices/system/cpu/cpufreq/boost (intel_pstate: "
            "echo 0 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo), and "
            "enable Core Performance Boost / Turbo in the BIOS",
        )
    return check(cid, title, "pass", "boost is on", ev, why)


def smt(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "SMT (hyper-threading)", "smt"
    why = (
        "llama.cpp runs best with one thread per physical core: SMT siblings share the core's "
        "execution units and only add contention."
    )
    active = top.cpu.smt_active
    cores, cpus = top.physical_cores, len(top.cpu.online)
    ev = [
        (F_SMT, top.host.smt_control),
        ("physical cores / logical CPUs", f"{cores} / {cpus}"),
        ("profile n_threads", ctx.profile_threads),
    ]
    if active is None:
        return check(
            cid,
            title,
            "unknown",
            reason(top.cpu.unknown, "smt_active", "SMT state not reported"),
            ev,
            why,
            "lscpu | grep 'Thread(s) per core'",
        )
    if active:
        if ctx.profile_threads and cores and ctx.profile_threads > cores:
            return check(
                cid,
                title,
                "warn",
                f"SMT on and the profile asks for "
                f"{ctx.profile_threads} threads on {cores} physical cores",
                ev,
                why,
                f"set n_threads = {cores} (or fewer) in the profile",
            )
        if cores and cores == cpus:
            return check(
                cid,
                title,
                "pass",
                f"the kernel reports SMT active, but each of the {cores} cores shows one thread "
                "(a VM's vCPUs, or siblings offline): the host's SMT is hidden from this system",
                ev,
                why,
            )
        return check(
            cid,
            title,
            "pass",
            f"SMT on: {cpus} logical CPUs on {cores} cores; use at "
            f"most {cores} threads (rigtui's profiles pin one per core)",
            ev,
            why,
        )
    return check(cid, title, "pass", f"SMT off: {cores} cores", ev, why)


def _kernel_tuple(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def kernel_version(top: Topology) -> Check:
    title, cid = "Kernel version", "kernel_version"
    why = (
        "EPYC Zen 4/5 needs a recent kernel: 6.6 LTS or later for current scheduler and "
        "amd-pstate support; the amd_umc memory-traffic counters arrived in 6.7."
    )
    release = top.host.kernel
    model = top.cpu.model_name or ""
    ev = [(F_OSRELEASE, release), (F_CPUINFO + " model name", model or None)]
    if not release or _kernel_tuple(release) is None:
        return check(cid, title, "unknown", "kernel release not readable", ev, why, "uname -r")
    ver = _kernel_tuple(release)
    assert ver is not None
    if "EPYC" in model.upper():
        if ver < (6, 6):
            return check(
                cid,
                title,
                "warn",
                f"kernel {release} on {model}: older than 6.6",
                ev,
                why,
                "upgrade to a 6.6+ kernel (distribution HWE/backports kernel)",
            )
        if ver < (6, 7):
            return check(
                cid,
                title,
                "pass",
                f"kernel {release} (6.7+ adds amd_umc memory traffic counters)",
                ev,
                why,
            )
    return check(cid, title, "pass", f"kernel {release}", ev, why)


def perf_counters(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Perf counters permission", "perf_counters"
    why = (
        "rigtui reads memory traffic from uncore/UMC perf counters: system-wide events need "
        "perf_event_paranoid <= 0 or root/CAP_PERFMON."
    )
    value = top.host.perf_event_paranoid
    ev = [(F_PARANOID, value), ("running as root", ctx.is_root)]
    if value is None:
        return check(
            cid,
            title,
            "unknown",
            reason(
                top.host.unknown,
                "perf_event_paranoid",
                "perf_event_paranoid absent (kernel without perf events)",
            ),
            ev,
            why,
            "a kernel built with CONFIG_PERF_EVENTS",
        )
    if value <= 0 or (ctx.live and ctx.is_root):
        return check(
            cid,
            title,
            "pass",
            f"perf_event_paranoid = {value}" + (" (running as root)" if value > 0 else ""),
            ev,
            why,
        )
    return check(
        cid,
        title,
        "warn",
        f"perf_event_paranoid = {value}: memory traffic counters need root",
        ev,
        why,
        "sudo sysctl -w kernel.perf_event_paranoid=0 (or give the user CAP_PERFMON)",
    )


_RDT_FLAGS = ("cqm_mbm_total", "cqm_mbm_local", "mba", "rdt_a")


def resctrl(top: Topology) -> Check:
    title, cid = "resctrl mounted", "resctrl"
    why = (
        "Memory Bandwidth Monitoring (resctrl) measures per-node traffic where perf's uncore "
        "counters are not available."
    )
    flags = set(top.cpu.flags)
    has_mbm = bool(flags & {"cqm_mbm_total", "cqm_mbm_local"})
    mounted = top.host.resctrl_mounted
    ev = [
        (F_MOUNTS + " resctrl", mounted),
        (F_CPUINFO + " flags", " ".join(f for f in _RDT_FLAGS if f in flags) or "no RDT/MBM flags"),
    ]
    if mounted:
        return check(cid, title, "pass", "resctrl is mounted", ev, why)
    if not has_mbm:
        return check(
            cid,
            title,
            "pass",
            "the CPU has no memory bandwidth monitoring (MBM): nothing to mount",
            ev,
            why,
        )
    if mounted is None:
        return check(
            cid, title, "unknown", "mount table not readable", ev, why, "mount | grep resctrl"
        )
    return check(
        cid,
        title,
        "warn",
        "the CPU supports MBM but resctrl is not mounted",
        ev,
        why,
        "sudo mount -t resctrl resctrl /sys/fs/resctrl",
    )
