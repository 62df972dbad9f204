"""Temperatures: hwmon read directly (psutil loses which device a chip belongs to) and NVML.

Files read (shell equivalent `sensors`):
- sys/class/hwmon/hwmon*/{name,device ->,temp*_input,temp*_label,temp*_crit}
Chips are matched by `name`, never by hwmon index (the index changes across boots):
- k10temp / zenpower (AMD): Tctl/Tdie = package, Tccd* = CCD; the socket comes from the PCI
  device the chip sits on: 0000:00:18.3 is node 0, 00:19.3 node 1, ... (the data fabric
  function 3 of each socket).
- coretemp (Intel): "Package id N" = socket N; "Core M" belongs to the platform device
  coretemp.N, i.e. socket N.
- nvme: "Composite" per controller; amdgpu/nouveau: GPU edge/junction.
- NVML GPU temperature for NVIDIA cards (live machine).

`SensorReader` finds the chips once; `read()` then only re-reads the temp*_input files, so the
telemetry sampler can call it every second (well under 5 ms for a few dozen sensors). A file that
fails (EIO from a sleeping sensor, a chip unplugged) gives `temp_c=None`, never an exception.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from rigtui.hostfs import HostFS
from rigtui.model.topology import Gpu, Sensor, Socket
from rigtui.probes.parse import classify_hwmon_label, coretemp_package

HWMON_DIR = "sys/class/hwmon"


@dataclass(frozen=True)
class _Source:
    template: Sensor
    abs_path: str


def _millideg(raw: bytes) -> float | None:
    try:
        return int(raw.strip()) / 1000.0
    except ValueError:
        return None


def _sockets_of(hint: Any) -> set[int] | None:
    """Socket ids from a Topology, a tuple of Socket, or None."""
    if hint is None:
        return None
    sockets = getattr(hint, "sockets", hint)
    try:
        return {s.id for s in sockets if isinstance(s, Socket)}
    except TypeError:
        return None


def k10temp_socket(pci_address: str | None) -> int | None:
    """ "0000:00:18.3" -> 0, "0000:00:19.3" -> 1 (device 0x18 + socket)."""
    m = re.fullmatch(r"[0-9a-fA-F]{4}:00:([0-9a-fA-F]{2})\.3", pci_address or "")
    if not m:
        return None
    dev = int(m.group(1), 16)
    return dev - 0x18 if 0x18 <= dev < 0x20 else None


class SensorReader:
    """Discovers temperature sensors once; `read()` returns fresh readings."""

    def __init__(
        self,
        fs: HostFS,
        topology_or_sockets_hint: Any = None,
        *,
        gpus: tuple[Gpu, ...] = (),
        nvml: bool | None = None,
    ) -> None:
        self.fs = fs
        self._sockets = _sockets_of(topology_or_sockets_hint)
        if not gpus and topology_or_sockets_hint is not None:
            gpus = tuple(getattr(topology_or_sockets_hint, "gpus", ()) or ())
        self._sources = self._discover()
        use_nvml = fs.is_live if nvml is None else nvml
        self._nvml: list[tuple[Sensor, Any]] = []
        self._pynvml: Any = None
        if use_nvml and any(g.vendor_id == 0x10DE and g.nvml_index is not None for g in gpus):
            self._open_nvml(gpus)

    # -- discovery ---------------------------------------------------------------------------
    def _discover(self) -> list[_Source]:
        fs = self.fs
        out: list[_Source] = []
        single_socket = self._sockets is not None and len(self._sockets) == 1
        for chip_dir in fs.glob(HWMON_DIR, "hwmon"):
            name = fs.read_str(f"{chip_dir}/name")
            if not name:
                continue
            device_target = fs.readlink(f"{chip_dir}/device")
            device = os.path.basename(os.path.normpath(device_target)) if device_target else None
            socket: int | None = None
            if name in ("k10temp", "zenpower"):
                # 00:18.3 is the first socket, 00:19.3 the second: the n-th physical package id.
                nth = k10temp_socket(device)
                ids = sorted(self._sockets) if self._sockets else None
                socket = (
                    nth if ids is None or nth is None else (ids[nth] if nth < len(ids) else None)
                )
            elif name == "coretemp" and device:
                m = re.fullmatch(r"coretemp\.(\d+)", device)
                socket = int(m.group(1)) if m else None
            if socket is None and single_socket and name in ("k10temp", "zenpower", "coretemp"):
                socket = next(iter(self._sockets or {0}))
            if name == "nvme":
                # hwmon sits under the controller: .../nvme/nvme0 -> "nvme0"
                device = self._nvme_name(chip_dir) or device
            files = fs.listdir(chip_dir)
            for f in files:
                m = re.fullmatch(r"temp(\d+)_input", f)
                if not m:
                    continue
                n = m.group(1)
                label = fs.read_str(f"{chip_dir}/temp{n}_label") or f"temp{n}"
                kind = classify_hwmon_label(name, label)
                sock = socket
                if name == "coretemp" and kind == "cpu-package":
                    sock = coretemp_package(label)
                crit = fs.read_int(f"{chip_dir}/temp{n}_crit") if f"temp{n}_crit" in files else None
                tmpl = Sensor(
                    chip=name, label=label, kind=kind, temp_c=None, socket=sock, device=device,
                    crit_c=crit / 1000 if crit else None, path=f"{chip_dir}/{f}",
                )  # fmt: skip
                out.append(_Source(tmpl, str(fs.path(f"{chip_dir}/{f}"))))
        return out

    def _nvme_name(self, chip_dir: str) -> str | None:
        target = self.fs.readlink(chip_dir)  # class/hwmon/hwmonN -> ../../devices/.../nvme0/hwmonN
        if target:
            m = re.search(r"/(nvme\d+)/hwmon\d+$", target) or re.search(r"/(nvme\d+)/", target)
            if m:
                return m.group(1)
        return None

    def _open_nvml(self, gpus: tuple[Gpu, ...]) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # noqa: BLE001 - no driver: no GPU temperatures, nothing else changes
            return
        self._pynvml = pynvml
        for g in gpus:
            if g.nvml_index is None:
                continue
            try:
                h = pynvml.nvmlDeviceGetHandleByIndex(g.nvml_index)
            except Exception:  # noqa: BLE001
                continue
            tmpl = Sensor(chip="nvml", label=g.name or f"GPU {g.index}", kind="gpu", temp_c=None,
                          socket=None, device=g.pci_address)  # fmt: skip
            self._nvml.append((tmpl, h))

    # -- reading -----------------------------------------------------------------------------
    @property
    def sensors_found(self) -> int:
        return len(self._sources) + len(self._nvml)

    def read(self) -> tuple[Sensor, ...]:
        out = []
        for src in self._sources:
            try:
                with open(src.abs_path, "rb") as f:
                    value = _millideg(f.read(32))
            except OSError:  # EIO from a sleeping/broken sensor, chip gone
                value = None
            out.append(replace(src.template, temp_c=value))
        if self._nvml:
            pynvml = self._pynvml
            for tmpl, h in self._nvml:
                try:
                    t = float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
                except Exception:  # noqa: BLE001
                    t = None
                out.append(replace(tmpl, temp_c=t))
        return tuple(out)

    def close(self) -> None:
        if self._pynvml is not None:
            with contextlib.suppress(Exception):
                self._pynvml.nvmlShutdown()
            self._pynvml = None
            self._nvml = []
