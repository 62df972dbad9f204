"""GPUs: PCI sysfs for every vendor, enriched by NVML for NVIDIA cards when the driver is there.

Files read (shell equivalents `lspci -d ::03xx -vv`, `nvidia-smi -q`):
- sys/bus/pci/devices/*/{class,vendor,device,numa_node,local_cpulist,current_link_speed,
  current_link_width,max_link_speed,max_link_width,driver ->,mem_info_vram_total}
- usr/share/misc/pci.ids or usr/share/hwdata/pci.ids for names without a driver (as `lspci`)
- NVML (nvidia-ml-py, module `pynvml`) on the live machine only: name, memory, compute
  capability, PCIe generation/width, memory bus width and top memory clock (the VRAM
  bandwidth), matched to the PCI device by bus id.

Display controllers of BMCs and hypervisors (ASPEED, Matrox G200, QEMU/VMware/virtio) are not
inference devices: `read_display_adapters` lists them apart so nobody offloads layers to a BMC.
This is the only module besides the telemetry GPU sampler that imports pynvml.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from typing import Any

from rigtui.hostfs import HostFS
from rigtui.model.topology import Gpu
from rigtui.probes.parse import parse_cpulist, pcie_generation

PCI_DIR = "sys/bus/pci/devices"
VENDORS = {
    0x10DE: "NVIDIA", 0x1002: "AMD", 0x8086: "Intel", 0x1A03: "ASPEED", 0x102B: "Matrox",
    0x1234: "QEMU", 0x1B36: "QEMU", 0x15AD: "VMware", 0x1AF4: "virtio", 0x1414: "Microsoft",
    0x1DB7: "Intel Habana", 0x1E52: "Tenstorrent", 0x5143: "Qualcomm",
}  # fmt: skip
DISPLAY_ONLY_VENDORS = {0x1A03, 0x102B, 0x1234, 0x1B36, 0x15AD, 0x1AF4, 0x1414}
# PCI class codes: 0x03xx display controllers (VGA 0x0300, 3D 0x0302, other 0x0380), 0x1200
# processing accelerators (Gaudi, Tenstorrent).
_GPU_CLASS = re.compile(r"0x(03[0-9a-f]{2}|1200)[0-9a-f]{2}", re.IGNORECASE)


def _hex(fs: HostFS, rel: str) -> int | None:
    s = fs.read_str(rel)
    try:
        return int(s, 16) if s else None
    except ValueError:
        fs.note(rel, f"not a hex number: {s[:20]!r}")
        return None


def _pci_devices(fs: HostFS) -> list[Gpu]:
    out = []
    for addr in fs.listdir(PCI_DIR):
        base = f"{PCI_DIR}/{addr}"
        cls = fs.read_str(f"{base}/class")
        if not cls or not _GPU_CLASS.fullmatch(cls):
            continue
        vendor_id = _hex(fs, f"{base}/vendor")
        unknown: dict[str, str] = {}
        node = fs.read_int(f"{base}/numa_node")
        if node is None or node < 0:
            unknown["numa_node"] = "the kernel reports no NUMA affinity for this slot (-1)"
            node = None
        cpulist = fs.read_str(f"{base}/local_cpulist")
        try:
            local = parse_cpulist(cpulist) if cpulist else ()
        except ValueError:
            fs.note(f"{base}/local_cpulist", "not a cpu list")
            local = ()
        speed = fs.read_str(f"{base}/current_link_speed")
        max_speed = fs.read_str(f"{base}/max_link_speed")
        if speed is None:
            unknown["link_speed"] = "no PCIe link attributes (integrated GPU, VM, or old kernel)"
        vram = fs.read_int(f"{base}/mem_info_vram_total")  # amdgpu exposes it
        if vram is None:
            unknown["memory_total_bytes"] = (
                "NVIDIA memory size needs the driver (NVML)" if vendor_id == 0x10DE
                else "the driver does not report memory size in sysfs"
            )  # fmt: skip
        vendor = VENDORS.get(vendor_id or -1)
        out.append(
            Gpu(
                index=len(out), pci_address=addr, vendor_id=vendor_id,
                device_id=_hex(fs, f"{base}/device"), vendor=vendor,
                name=f"{vendor or 'PCI'} display controller {_hex(fs, f'{base}/device') or 0:04x}",
                driver=fs.realname(f"{base}/driver"), memory_total_bytes=vram,
                compute_capability=None, numa_node=node, local_cpus=local, link_speed=speed,
                link_width=_pos_int(fs, f"{base}/current_link_width"), link_max_speed=max_speed,
                link_max_width=_pos_int(fs, f"{base}/max_link_width"),
                pcie_gen=pcie_generation(speed), pcie_gen_max=pcie_generation(max_speed),
                nvml_index=None, source="pci", unknown=unknown,
            )
        )  # fmt: skip
    return out


PCI_IDS = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids")


def pci_name(text: str, vendor_id: int, device_id: int) -> str | None:
    """Device name from the pci.ids database text (`lspci`'s names): the vendor line at column 0,
    its devices on the tab-indented lines below it."""
    key = f"\n{vendor_id:04x}  "
    start = text.find(key)
    if start < 0:
        return None
    dev_key = f"\t{device_id:04x}  "
    for line in text[start + 1 :].split("\n")[1:]:
        if line and not line.startswith("\t"):
            return None  # next vendor
        if line.startswith(dev_key):
            return line[len(dev_key) :].strip()
    return None


def _name_from_pci_ids(fs: HostFS, gpus: list[Gpu]) -> list[Gpu]:
    text = None
    for rel in PCI_IDS:
        text = fs.read_text(rel)
        if text:
            break
    out = []
    for g in gpus:
        name = (
            pci_name(text, g.vendor_id, g.device_id)
            if text and g.vendor_id and g.device_id
            else None
        )
        out.append(replace(g, name=name) if name else g)
    return out


def _pos_int(fs: HostFS, rel: str) -> int | None:
    v = fs.read_int(rel)
    return v if v and v > 0 else None


def read_display_adapters(fs: HostFS) -> tuple[Gpu, ...]:
    """BMC / virtual display controllers (not for compute)."""
    return read_pci_gpus(fs, nvml=False)[1]


def read_gpus(fs: HostFS, nvml: bool | None = None) -> tuple[Gpu, ...]:
    """Compute-capable GPUs/accelerators in PCI address order, NVML-enriched when `nvml` (None:
    only on the live machine). NVML failing (no driver, no library) is not a problem: the PCI
    view stays, with the reason in each card's `unknown`."""
    return read_pci_gpus(fs, nvml)[0]


def read_pci_gpus(fs: HostFS, nvml: bool | None = None) -> tuple[tuple[Gpu, ...], tuple[Gpu, ...]]:
    """(GPUs, display-only adapters) from one pass over sys/bus/pci/devices."""
    devices = _pci_devices(fs)
    displays = tuple(g for g in devices if g.vendor_id in DISPLAY_ONLY_VENDORS)
    gpus = [g for g in devices if g.vendor_id not in DISPLAY_ONLY_VENDORS]
    gpus = [replace(g, index=i) for i, g in enumerate(gpus)]
    if gpus:
        gpus = _name_from_pci_ids(fs, gpus)
    use = fs.is_live if nvml is None else nvml
    if use and any(g.vendor_id == 0x10DE for g in gpus):
        info, why = nvml_devices()
        gpus = [_merge(g, info, why) for g in gpus]
    return tuple(gpus), displays


def _norm_bus_id(bus_id: str) -> str:
    """NVML "00000000:41:00.0" -> sysfs "0000:41:00.0"."""
    dom, _, rest = bus_id.lower().partition(":")
    return f"{int(dom, 16):04x}:{rest}" if rest else bus_id.lower()


def _merge(g: Gpu, info: dict[str, dict[str, Any]], why: str | None) -> Gpu:
    if g.vendor_id != 0x10DE:
        return g
    d = info.get(g.pci_address.lower())
    if d is None:
        unknown = dict(g.unknown)
        unknown["nvml"] = why or "NVML does not list this device"
        return replace(g, unknown=unknown)
    unknown = {k: v for k, v in g.unknown.items() if d.get(k) is None}
    return replace(
        g, name=d.get("name") or g.name, memory_total_bytes=d.get("memory_total_bytes"),
        compute_capability=d.get("compute_capability"),
        numa_node=g.numa_node if g.numa_node is not None else d.get("numa_node"),
        pcie_gen=d.get("pcie_gen") or g.pcie_gen, pcie_gen_max=d.get("pcie_gen_max") or g.pcie_gen_max,
        link_width=d.get("link_width") or g.link_width,
        link_max_width=d.get("link_max_width") or g.link_max_width,
        nvml_index=d.get("nvml_index"), source="pci+nvml", unknown=unknown,
        memory_bus_width=d.get("memory_bus_width"),
        memory_max_clock_mhz=d.get("memory_max_clock_mhz"),
    )  # fmt: skip


def nvml_devices() -> tuple[dict[str, dict[str, Any]], str | None]:
    """sysfs PCI address -> NVML facts; ({}, reason) when NVML is unavailable."""
    try:
        import pynvml
    except ImportError:
        return {}, "nvidia-ml-py not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return {}, f"NVML unavailable: {exc}"
    out: dict[str, dict[str, Any]] = {}
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            bus = pynvml.nvmlDeviceGetPciInfo(h).busId
            bus = bus.decode() if isinstance(bus, bytes) else bus
            d: dict[str, Any] = {"nvml_index": i}
            for key, fn in (
                ("name", lambda h=h: pynvml.nvmlDeviceGetName(h)),
                ("memory_total_bytes", lambda h=h: pynvml.nvmlDeviceGetMemoryInfo(h).total),
                ("compute_capability",
                 lambda h=h: "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(h))),
                ("pcie_gen", lambda h=h: pynvml.nvmlDeviceGetCurrPcieLinkGeneration(h)),
                ("pcie_gen_max", lambda h=h: pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h)),
                ("link_width", lambda h=h: pynvml.nvmlDeviceGetCurrPcieLinkWidth(h)),
                ("link_max_width", lambda h=h: pynvml.nvmlDeviceGetMaxPcieLinkWidth(h)),
                ("numa_node", lambda h=h: pynvml.nvmlDeviceGetNumaNodeId(h)),
                ("memory_bus_width", lambda h=h: pynvml.nvmlDeviceGetMemoryBusWidth(h)),
                ("memory_max_clock_mhz",
                 lambda h=h: pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM)),
            ):  # fmt: skip
                try:
                    v = fn()
                    d[key] = v.decode() if isinstance(v, bytes) else v
                except Exception:  # noqa: BLE001 - NotSupported on some boards / old drivers
                    d[key] = None
            out[_norm_bus_id(bus)] = d
    except Exception as exc:  # noqa: BLE001
        return out, f"NVML error: {exc}"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return out, None
