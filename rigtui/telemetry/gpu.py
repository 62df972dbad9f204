"""NVIDIA GPUs through NVML (nvidia-ml-py, module `pynvml`): the only telemetry module that
imports it. Shell equivalent: `nvidia-smi -q -d UTILIZATION,MEMORY,TEMPERATURE,POWER,CLOCK,PCI`.

Per GPU: utilisation, memory, temperature, power and its limit, SM/memory clocks, PCIe generation
and width now vs max (a card trained down to x4 or gen1 shows here), PCIe throughput, and the
compute processes. A field the card does not support is None; a GPU that fell off the bus
(NVML_ERROR_GPU_IS_LOST, Xid 79) is marked unavailable with the reason, the others carry on.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rigtui.model.sample import GpuSample, SourceStatus

NVML_ERROR_GPU_IS_LOST = 15
_LOST_REASON = (
    "GPU fell off the bus (NVML: GPU is lost): check `dmesg` for Xid 79, power and "
    "seating; a reboot is usually needed"
)


class _Lost(Exception):
    pass


class GpuSource:
    """`nvml`: an already imported pynvml-like module (tests pass a fake), or None to import it."""

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml = nvml
        self._handles: list[Any] = []
        self._inited = False
        self.status = SourceStatus("gpu", "nvml", False, "NVML not started")
        if self._nvml is None:
            try:
                import pynvml  # only here: the UI and other layers never import NVML
            except ImportError:
                self.status = SourceStatus(
                    "gpu", None, False, "nvidia-ml-py not installed: pip install nvidia-ml-py"
                )
                return
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
            self._inited = True
            count = int(self._nvml.nvmlDeviceGetCount())
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            self.status = SourceStatus(
                "gpu",
                "nvml",
                False,
                f"NVML unavailable: {_msg(exc)} (no NVIDIA driver loaded, or no NVIDIA GPU)",
            )
            return
        self.status = SourceStatus(
            "gpu", "nvml", True, None if self._handles else "NVML reports no GPUs"
        )

    def _is_lost(self, exc: BaseException) -> bool:
        lost_cls = getattr(self._nvml, "NVMLError_GpuIsLost", None)
        if isinstance(lost_cls, type) and isinstance(exc, lost_cls):
            return True
        return getattr(exc, "value", None) == NVML_ERROR_GPU_IS_LOST

    def _get(self, fn_name: str, *args: Any) -> Any:
        """One NVML query; None when unsupported/failing, _Lost when the GPU is gone."""
        fn = getattr(self._nvml, fn_name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            if self._is_lost(exc):
                raise _Lost from exc
            return None

    def _const(self, name: str, default: int) -> int:
        return int(getattr(self._nvml, name, default))

    def _read_one(self, index: int, h: Any) -> GpuSample:
        name = self._get("nvmlDeviceGetName", h)
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        util = self._get("nvmlDeviceGetUtilizationRates", h)
        mem = self._get("nvmlDeviceGetMemoryInfo", h)
        temp = self._get("nvmlDeviceGetTemperature", h, self._const("NVML_TEMPERATURE_GPU", 0))
        power_mw = self._get("nvmlDeviceGetPowerUsage", h)
        limit_mw = self._get("nvmlDeviceGetEnforcedPowerLimit", h)
        sm = self._get("nvmlDeviceGetClockInfo", h, self._const("NVML_CLOCK_SM", 1))
        memclk = self._get("nvmlDeviceGetClockInfo", h, self._const("NVML_CLOCK_MEM", 2))
        tx = self._get("nvmlDeviceGetPcieThroughput", h, self._const("NVML_PCIE_UTIL_TX_BYTES", 0))
        rx = self._get("nvmlDeviceGetPcieThroughput", h, self._const("NVML_PCIE_UTIL_RX_BYTES", 1))
        procs = self._get("nvmlDeviceGetComputeRunningProcesses", h) or []
        return GpuSample(
            index=index,
            name=name,
            available=True,
            util_pct=_num(getattr(util, "gpu", None)),
            mem_util_pct=_num(getattr(util, "memory", None)),
            mem_used_bytes=_int(getattr(mem, "used", None)),
            mem_total_bytes=_int(getattr(mem, "total", None)),
            temp_c=_num(temp),
            power_w=None if power_mw is None else power_mw / 1000.0,
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            sm_clock_mhz=_int(sm),
            mem_clock_mhz=_int(memclk),
            pcie_gen=_int(self._get("nvmlDeviceGetCurrPcieLinkGeneration", h)),
            pcie_gen_max=_int(self._get("nvmlDeviceGetMaxPcieLinkGeneration", h)),
            pcie_width=_int(self._get("nvmlDeviceGetCurrPcieLinkWidth", h)),
            pcie_width_max=_int(self._get("nvmlDeviceGetMaxPcieLinkWidth", h)),
            # NVML reports KB/s over a 20 ms window
            pcie_tx_bytes_s=None if tx is None else float(tx) * 1024.0,
            pcie_rx_bytes_s=None if rx is None else float(rx) * 1024.0,
            processes=tuple((int(p.pid), _int(getattr(p, "usedGpuMemory", None))) for p in procs),
        )

    def read(self) -> tuple[GpuSample, ...]:
        out: list[GpuSample] = []
        for index, h in enumerate(self._handles):
            try:
                out.append(self._read_one(index, h))
            except _Lost:
                out.append(GpuSample(index=index, name=None, available=False, reason=_LOST_REASON))
        return tuple(out)

    def close(self) -> None:
        if self._inited:
            self._inited = False
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()


def _msg(exc: BaseException) -> str:
    try:
        return str(exc) or type(exc).__name__
    except Exception:
        return type(exc).__name__


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _int(v: Any) -> int | None:
    return None if v is None else int(v)
