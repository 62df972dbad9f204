"""Facts about the OS configuration that matter for inference (inputs for `rigtui check`).

Files read (shell equivalents in brackets):
- proc/sys/kernel/{osrelease,hostname} [uname -r, hostname], etc/os-release [cat]
- proc/cpuinfo "hypervisor" flag, sys/class/dmi/id/{sys_vendor,product_name},
  sys/hypervisor/type, run/systemd/container, .dockerenv, proc/1/cgroup [systemd-detect-virt]
- sys/kernel/mm/transparent_hugepage/{enabled,defrag} [cat]
- proc/sys/kernel/numa_balancing, proc/sys/kernel/perf_event_paranoid [sysctl]
- sys/devices/system/cpu/cpu*/cpufreq/scaling_governor [cpupower frequency-info]
- sys/devices/system/cpu/cpufreq/boost, sys/devices/system/cpu/intel_pstate/no_turbo
- sys/devices/system/cpu/smt/control
- proc/mounts (resctrl), proc/meminfo (SwapTotal, SwapFree, MemAvailable) [free -b]
"""

from __future__ import annotations

import re

from rigtui.hostfs import HostFS
from rigtui.model.topology import HostInfo
from rigtui.probes.parse import parse_key_values, parse_meminfo, parse_selected

# DMI sys_vendor / product_name fragments -> systemd-detect-virt's names.
_DMI_VIRT = (
    ("qemu", "qemu"), ("kvm", "kvm"), ("vmware", "vmware"), ("virtualbox", "oracle"),
    ("innotek", "oracle"), ("xen", "xen"), ("microsoft corporation", "microsoft"),
    ("amazon ec2", "amazon"), ("google compute engine", "google"), ("bochs", "bochs"),
    ("parallels", "parallels"),
)  # fmt: skip


def empty_host() -> HostInfo:
    return HostInfo(
        None, None, None, None, None, None, None, {}, None, None, None, None, None, None, None,
        unknown={"kernel": "host probe failed"},
    )  # fmt: skip


def detect_virtualization(fs: HostFS) -> tuple[str | None, str | None]:
    """(name, None) or (None, why unknown). Containers are reported as such ("docker"), VMs by
    hypervisor name, bare metal as "none" only when the CPU says no hypervisor."""
    container = fs.read_str("run/systemd/container")
    if container:
        return container, None
    if fs.exists(".dockerenv"):
        return "docker", None
    cg = fs.read_text("proc/1/cgroup") or ""
    for name in ("docker", "kubepods", "lxc", "podman"):
        if name in cg:
            return name, None
    hv = fs.read_str("sys/hypervisor/type")
    if hv:
        return hv, None
    dmi = " ".join(
        s for s in (fs.read_str("sys/class/dmi/id/sys_vendor"),
                    fs.read_str("sys/class/dmi/id/product_name")) if s
    ).lower()  # fmt: skip
    for frag, name in _DMI_VIRT:
        if frag in dmi:
            return name, None
    cpuinfo = fs.read_text("proc/cpuinfo")
    if cpuinfo is None:
        return None, "proc/cpuinfo unreadable"
    m = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    if m:
        return ("vm (unknown hypervisor)" if " hypervisor" in m.group(1) + " " else "none"), None
    return None, "no x86 hypervisor flag to tell (non-x86 or sparse tree)"


def read_host(fs: HostFS) -> HostInfo:
    unknown: dict[str, str] = {}

    def need(name: str, value, why: str):
        if value is None:
            unknown[name] = why
        return value

    osrel = fs.read_text("etc/os-release") or fs.read_text("usr/lib/os-release")
    kernel = fs.read_str("proc/sys/kernel/osrelease")
    if kernel is None:
        version = fs.read_str("proc/version")  # "Linux version 6.1.0-13-amd64 (...)"
        m = re.match(r"Linux version (\S+)", version or "")
        kernel = m.group(1) if m else None
    thp = fs.read_str("sys/kernel/mm/transparent_hugepage/enabled")
    defrag = fs.read_str("sys/kernel/mm/transparent_hugepage/defrag")
    governors: dict[str, int] = {}
    for d in fs.glob("sys/devices/system/cpu", "cpu"):
        if re.fullmatch(r".*/cpu\d+", d):
            g = fs.read_str(f"{d}/cpufreq/scaling_governor")
            if g:
                governors[g] = governors.get(g, 0) + 1
    boost_s = fs.read_str("sys/devices/system/cpu/cpufreq/boost")
    no_turbo = fs.read_str("sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = boost_s == "1" if boost_s in ("0", "1") else (no_turbo == "0" if no_turbo else None)
    mounts = fs.read_text("proc/mounts")
    resctrl = None if mounts is None else any(
        len(p) > 2 and p[2] == "resctrl" for p in (ln.split() for ln in mounts.splitlines())
    )  # fmt: skip
    meminfo_text = fs.read_text("proc/meminfo")
    mi = parse_meminfo(meminfo_text) if meminfo_text else {}
    virt, virt_why = detect_virtualization(fs)
    if virt_why:
        unknown["virtualization"] = virt_why
    if not governors:
        unknown["governors"] = "no cpufreq scaling_governor (VM, or cpufreq driver not loaded)"
    return HostInfo(
        hostname=fs.read_str("proc/sys/kernel/hostname"),
        kernel=need("kernel", kernel, "proc/sys/kernel/osrelease and proc/version unreadable"),
        os_name=need("os_name", parse_key_values(osrel).get("PRETTY_NAME") if osrel else None,
                     "etc/os-release unreadable"),
        virtualization=virt,
        thp_enabled=need("thp_enabled", parse_selected(thp) if thp else None,
                         "sys/kernel/mm/transparent_hugepage/enabled absent (THP not built in)"),
        thp_defrag=parse_selected(defrag) if defrag else None,
        numa_balancing=need("numa_balancing", fs.read_int("proc/sys/kernel/numa_balancing"),
                            "proc/sys/kernel/numa_balancing absent (kernel without NUMA balancing)"),
        governors=governors,
        boost=need("boost", boost, "neither cpufreq/boost nor intel_pstate/no_turbo present"),
        smt_control=need("smt_control", fs.read_str("sys/devices/system/cpu/smt/control"),
                         "sys/devices/system/cpu/smt/control absent (old kernel)"),
        perf_event_paranoid=need("perf_event_paranoid",
                                 fs.read_int("proc/sys/kernel/perf_event_paranoid"),
                                 "proc/sys/kernel/perf_event_paranoid unreadable"),
        resctrl_mounted=need("resctrl_mounted", resctrl, "proc/mounts unreadable"),
        swap_total_bytes=mi.get("SwapTotal"),
        swap_free_bytes=mi.get("SwapFree"),
        mem_available_bytes=need("mem_available_bytes", mi.get("MemAvailable"),
                                 "proc/meminfo has no MemAvailable"),
        unknown=unknown,
    )  # fmt: skip
