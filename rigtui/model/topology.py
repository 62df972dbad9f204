"""What the machine is: the result of `rigtui.probes.detect(fs)`.

Every value a machine may not report is `None`, and the reason is in the owning object's
`unknown` mapping (field name -> why, and how to get it), so the UI and `--json` can say it.
All collections are tuples / read-only so a Topology can be shared across threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rigtui.model.common import Problem


def _ro(d: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class CpuInfo:
    """The processor model and what it can do (one entry even on multi-socket boxes)."""

    arch: str | None  # "x86_64", "aarch64", "ppc64le", ...
    vendor: str | None  # "AuthenticAMD", "GenuineIntel", "ARM", ...
    model_name: str | None  # brand string
    family: int | None
    model: int | None
    stepping: int | None
    isa: Mapping[str, bool]  # the inference-relevant flags, all keys always present
    flags: tuple[str, ...]  # every flag /proc/cpuinfo lists (first CPU)
    smt_active: bool | None  # sys/devices/system/cpu/smt/active, else inferred from siblings
    threads_per_core: int | None
    online: tuple[int, ...]
    offline: tuple[int, ...]  # present but offline
    allowed: tuple[int, ...] | None  # CPUs this process may run on (affinity / cgroup cpuset)
    max_mhz: float | None
    min_mhz: float | None
    hybrid: bool  # more than one core kind (P/E) reported by the kernel
    unknown: Mapping[str, str] = field(default_factory=_ro)
    cpuinfo_mhz: float | None = None  # "cpu MHz" of /proc/cpuinfo: a clock reading, not the max


@dataclass(frozen=True)
class LogicalCpu:
    """One logical CPU (a PU in hwloc's words)."""

    id: int
    online: bool
    socket: int | None  # physical_package_id
    die: int | None
    core_id: int | None  # as the kernel numbers it: repeats across dies and sockets
    core: int | None  # index into Topology.cores (unique physical core)
    node: int | None  # NUMA node id
    l3: int | None  # index into Topology.l3_domains
    kind: str | None  # hybrid core kind: "P", "E" (None on non-hybrid machines)
    capacity: int | None  # sys/devices/system/cpu/cpuN/cpu_capacity (ARM big.LITTLE, hybrid)
    max_mhz: float | None


@dataclass(frozen=True)
class Core:
    """One physical core: the unique key is (socket, die, core_id)."""

    index: int
    socket: int | None
    die: int | None
    core_id: int | None
    cpus: tuple[int, ...]  # its hardware threads (online ones)
    node: int | None
    kind: str | None


@dataclass(frozen=True)
class CacheDomain:
    """A shared cache instance (L3: a CCX/CCD on AMD, a socket or SNC half on Intel)."""

    index: int
    level: int
    size_bytes: int | None
    cpus: tuple[int, ...]
    socket: int | None


@dataclass(frozen=True)
class NumaNode:
    """A NUMA node as the kernel describes it (`numactl -H`)."""

    id: int
    cpus: tuple[int, ...]  # online CPUs of the node
    mem_total_bytes: int | None
    mem_free_bytes: int | None
    distances: Mapping[int, int]  # node id -> SLIT distance
    kind: str  # "cpu" | "memory-only"
    socket: int | None  # the socket whose CPUs it holds, or nearest for memory-only nodes
    hugepages_total: int | None = None  # 2 MiB pages reserved on the node
    note: str | None = None  # e.g. "CPUs outside this process's cpuset"
    unknown: Mapping[str, str] = field(default_factory=_ro)


@dataclass(frozen=True)
class Socket:
    """One CPU package."""

    id: int
    model: str | None
    cores: int  # physical cores (online)
    cpus: tuple[int, ...]  # online logical CPUs
    nodes: tuple[int, ...]  # NUMA nodes with CPUs in this socket (+ memory-only attached)
    dies: int  # distinct die ids
    l3_domains: tuple[int, ...]  # indices into Topology.l3_domains
    numa_mode: str | None = None  # "NPS1", "NPS4", "SNC2", "1 node" ... inferred


@dataclass(frozen=True)
class Dimm:
    """One memory device slot (SMBIOS type 17), populated or not."""

    locator: str | None  # "DIMM_A1", "P0 CHANNEL A"
    bank_locator: str | None
    populated: bool
    size_bytes: int | None
    type: str | None  # "DDR5", "DDR4", ...
    form_factor: str | None
    speed_mts: int | None  # max rated speed
    configured_speed_mts: int | None  # what it runs at
    data_width_bits: int | None
    rank: int | None
    manufacturer: str | None
    part_number: str | None
    socket: int | None  # inferred from locator where possible
    channel: str | None  # inferred from locator / EDAC
    source: str  # "smbios:sys/firmware/dmi/entries", "udev:dmi_memory_id", "edac"


@dataclass(frozen=True)
class FabricLimit:
    """What the cores of one socket can pull from its memory controllers, when a link between
    the core dies and the I/O die is narrower than the DRAM channels (AMD Zen 2-5: every CCD
    reads through one GMI link of 32 B per fabric clock). `cap_per_socket_gbs` is
    CCDs x bytes_per_clock x FCLK; `basis` says whether FCLK was read or is the generation's
    default ("estimated"); `note` is the formula and its caveats in words."""

    generation: str  # "Zen 4 (EPYC 9004 Genoa)"
    ccds_per_socket: Mapping[int, int]
    l3_per_ccd: int  # L3 domains (CCXs) per CCD: 2 on Zen 2 and Zen 4c, else 1
    bytes_per_clock: int  # read bytes per CCD per fabric clock
    fclk_mhz: float
    basis: str  # "estimated" (the generation's default FCLK) | "read"
    cap_per_socket_gbs: Mapping[int, float]
    note: str


@dataclass(frozen=True)
class MemoryInfo:
    """System memory and its theoretical bandwidth: channels x 8 B x MT/s, or the fabric's cap
    where that is lower (`fabric`, `limited_by`)."""

    total_bytes: int | None
    dimms: tuple[Dimm, ...]
    populated_channels: int | None  # whole machine
    channels_per_socket: Mapping[int, int]  # socket -> populated channels
    platform_channels_per_socket: int | None  # what the platform supports
    platform_max_mts: int | None
    speed_mts: int | None  # configured speed used for the bandwidth figure
    theoretical_bandwidth_gbs: float | None  # whole machine, GB/s (1e9): the sum of the sockets'
    bandwidth_per_socket_gbs: Mapping[int, float]  # min(DRAM channels, fabric cap) per socket
    source: str  # "smbios", "udev:dmi_memory_id", "edac", "platform-table (max supported, not measured)", "unknown"
    hint: str | None = None  # how to get better data
    unknown: Mapping[str, str] = field(default_factory=_ro)
    # channels x 8 B x MT/s per socket, before any fabric cap (equal to bandwidth_per_socket_gbs
    # where nothing else limits); empty when the channels are not known
    dram_bandwidth_per_socket_gbs: Mapping[int, float] = field(default_factory=_ro)
    fabric: FabricLimit | None = None  # None: no core-to-memory link limit is modelled here
    limited_by: Mapping[int, str] = field(default_factory=_ro)  # socket -> "dram" | "fabric"
    fabric_note: str | None = None  # which limit applies where no fabric cap is modelled, and why


@dataclass(frozen=True)
class Gpu:
    """A display/3D controller seen on PCI, enriched by NVML for NVIDIA cards."""

    index: int  # rigtui's order (PCI address order)
    pci_address: str  # "0000:41:00.0"
    vendor_id: int | None
    device_id: int | None
    vendor: str | None  # "NVIDIA", "AMD", "Intel", ...
    name: str | None
    driver: str | None
    memory_total_bytes: int | None
    compute_capability: str | None  # "8.9"
    numa_node: int | None
    local_cpus: tuple[int, ...]
    link_speed: str | None  # current, as sysfs says: "16.0 GT/s PCIe"
    link_width: int | None
    link_max_speed: str | None
    link_max_width: int | None
    pcie_gen: int | None  # current generation (1-6)
    pcie_gen_max: int | None
    nvml_index: int | None
    source: str  # "pci" | "pci+nvml"
    unknown: Mapping[str, str] = field(default_factory=_ro)
    # NVML: the memory bus (bits) and its top clock (MHz, as nvidia-smi's "Max Clocks Memory");
    # bandwidth = bits / 8 x MHz x 2 (double data rate): 384 x 10501 -> 1008 GB/s, a 4090
    memory_bus_width: int | None = None
    memory_max_clock_mhz: int | None = None


@dataclass(frozen=True)
class Sensor:
    """One temperature reading, mapped to what it measures."""

    chip: str  # hwmon `name`: "k10temp", "coretemp", "nvme", "nvml"
    label: str  # "Tctl", "Tccd1", "Package id 0", "Composite"
    kind: str  # "cpu-package" | "ccd" | "core" | "nvme" | "gpu" | "other"
    temp_c: float | None
    socket: int | None
    device: str | None  # PCI address / nvme name / GPU index
    crit_c: float | None = None
    path: str | None = None  # file read (relative to root)


@dataclass(frozen=True)
class HostInfo:
    """Facts about the OS configuration that matter for inference (inputs for checks)."""

    hostname: str | None
    kernel: str | None  # release, e.g. "6.8.0-45-generic"
    os_name: str | None  # PRETTY_NAME of os-release
    virtualization: str | None  # "kvm", "vmware", "none", ... (None = unknown)
    thp_enabled: str | None  # selected value of transparent_hugepage/enabled: always|madvise|never
    thp_defrag: str | None
    numa_balancing: int | None  # /proc/sys/kernel/numa_balancing
    governors: Mapping[str, int]  # scaling_governor -> number of CPUs
    boost: bool | None  # cpufreq boost / intel_pstate no_turbo inverted
    smt_control: str | None  # sys/devices/system/cpu/smt/control
    perf_event_paranoid: int | None
    resctrl_mounted: bool | None
    swap_total_bytes: int | None
    swap_free_bytes: int | None
    mem_available_bytes: int | None
    unknown: Mapping[str, str] = field(default_factory=_ro)


@dataclass(frozen=True)
class Topology:
    """Everything `rigtui probe` knows about a machine."""

    root: str
    cpu: CpuInfo
    cpus: tuple[LogicalCpu, ...]
    cores: tuple[Core, ...]
    l3_domains: tuple[CacheDomain, ...]
    sockets: tuple[Socket, ...]
    nodes: tuple[NumaNode, ...]
    memory: MemoryInfo
    gpus: tuple[Gpu, ...]
    sensors: tuple[Sensor, ...]
    host: HostInfo
    problems: tuple[Problem, ...] = ()
    # BMC / hypervisor display controllers (ASPEED, Matrox G200, QEMU...): seen on PCI, not GPUs
    # for inference, so kept out of `gpus`.
    display_adapters: tuple[Gpu, ...] = ()

    # -- convenience lookups (pure) ------------------------------------------------------------
    def node(self, node_id: int) -> NumaNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def socket(self, socket_id: int) -> Socket | None:
        return next((s for s in self.sockets if s.id == socket_id), None)

    def socket_of_node(self, node_id: int) -> int | None:
        n = self.node(node_id)
        return n.socket if n else None

    def socket_of_cpu(self, cpu_id: int) -> int | None:
        c = next((c for c in self.cpus if c.id == cpu_id), None)
        return c.socket if c else None

    @property
    def online_cpus(self) -> tuple[int, ...]:
        return self.cpu.online

    @property
    def physical_cores(self) -> int:
        return len(self.cores)

    def fingerprint(self) -> dict[str, object]:
        """What a benchmark result depends on, to tag and cache results per machine:
        CPU model, sockets, nodes, cores, logical CPUs, memory channels/speed, GPU names."""
        return {
            "cpu_model": self.cpu.model_name,
            "sockets": len(self.sockets),
            "nodes": len(self.nodes),
            "cores": len(self.cores),
            "cpus": len(self.cpu.online),
            "memory_bytes": self.memory.total_bytes,
            "channels": self.memory.populated_channels,
            "memory_mts": self.memory.speed_mts,
            "gpus": [g.name or f"{g.vendor_id or 0:04x}:{g.device_id or 0:04x}" for g in self.gpus],
        }

    def first_thread_per_core(self, cpus: tuple[int, ...] | None = None) -> tuple[int, ...]:
        """One logical CPU per physical core (the lowest id), optionally within `cpus`."""
        wanted = set(cpus) if cpus is not None else None
        out: list[int] = []
        for core in self.cores:
            for c in core.cpus:
                if wanted is None or c in wanted:
                    out.append(c)
                    break
        return tuple(sorted(out))
