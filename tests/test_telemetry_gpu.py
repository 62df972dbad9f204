"""NVML at its boundary: a fake `pynvml` module object with pynvml's call names, units (mW, KB/s,
bytes) and error classes. There is no GPU on the development VM: the values are written from
the cards' published specifications in the shapes NVML returns, not captured from a device."""

from __future__ import annotations

import types
from types import SimpleNamespace

import pytest
from telemetry_helpers import make_topology, proc_tree

from rigtui.hostfs import HostFS
from rigtui.telemetry import Sampler
from rigtui.telemetry.gpu import GpuSource


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return {
            1: "Uninitialized",
            3: "Not Supported",
            9: "Driver Not Loaded",
            15: "GPU is lost",
        }.get(self.value, "Unknown Error")


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801 - pynvml's own name
    def __init__(self):
        super().__init__(15)


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    def __init__(self):
        super().__init__(3)


# an RTX 4090 under load (spec figures: 24 GiB, 450 W limit, PCIe gen4 x16)
RTX4090 = dict(
    name="NVIDIA GeForce RTX 4090",
    util=SimpleNamespace(gpu=97, memory=61),
    mem=SimpleNamespace(total=25757220864, used=18249416704, free=7507804160),
    temp=64,
    power=412345,
    limit=450000,
    sm=2730,
    memclk=10501,
    gen=4,
    gen_max=4,
    width=16,
    width_max=16,
    tx=1250,
    rx=48230,
    procs=[SimpleNamespace(pid=4242, usedGpuMemory=17951621120)],
)
# an RTX 3090 in a riser that trained down to x4, fan/power readings unsupported
RTX3090_X4 = dict(
    name=b"NVIDIA GeForce RTX 3090",
    util=SimpleNamespace(gpu=35, memory=20),
    mem=SimpleNamespace(total=25769803776, used=1073741824, free=0),
    temp=51,
    power=NVMLError_NotSupported,
    limit=NVMLError_NotSupported,
    sm=1695,
    memclk=9751,
    gen=4,
    gen_max=4,
    width=4,
    width_max=16,
    tx=0,
    rx=0,
    procs=[SimpleNamespace(pid=99, usedGpuMemory=None)],
)


def fake_pynvml(cards: list[dict], *, lost: set[int] = frozenset(), init_error=None):
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.NVMLError_GpuIsLost = NVMLError_GpuIsLost
    m.NVML_TEMPERATURE_GPU = 0
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = 1, 2
    m.NVML_PCIE_UTIL_TX_BYTES, m.NVML_PCIE_UTIL_RX_BYTES = 0, 1
    m.calls = []
    m.shutdown = False

    def init():
        if init_error is not None:
            raise init_error

    def field(key):
        def get(h, *args):
            m.calls.append(key)
            if h in lost:
                raise NVMLError_GpuIsLost()
            v = cards[h][key]
            if isinstance(v, type) and issubclass(v, Exception):
                raise v()
            return v

        return get

    m.nvmlInit = init
    m.nvmlShutdown = lambda: setattr(m, "shutdown", True)
    m.nvmlDeviceGetCount = lambda: len(cards)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = field("name")
    m.nvmlDeviceGetUtilizationRates = field("util")
    m.nvmlDeviceGetMemoryInfo = field("mem")
    m.nvmlDeviceGetTemperature = field("temp")
    m.nvmlDeviceGetPowerUsage = field("power")
    m.nvmlDeviceGetEnforcedPowerLimit = field("limit")
    m.nvmlDeviceGetClockInfo = lambda h, clk: field("sm" if clk == 1 else "memclk")(h)
    m.nvmlDeviceGetCurrPcieLinkGeneration = field("gen")
    m.nvmlDeviceGetMaxPcieLinkGeneration = field("gen_max")
    m.nvmlDeviceGetCurrPcieLinkWidth = field("width")
    m.nvmlDeviceGetMaxPcieLinkWidth = field("width_max")
    m.nvmlDeviceGetPcieThroughput = lambda h, c: field("tx" if c == 0 else "rx")(h)
    m.nvmlDeviceGetComputeRunningProcesses = field("procs")
    return m


def test_gpu_values_map_to_sample_fields():
    src = GpuSource(fake_pynvml([RTX4090, RTX3090_X4]))
    assert src.status.available
    a, b = src.read()
    assert a.name == "NVIDIA GeForce RTX 4090" and a.available
    assert (a.util_pct, a.mem_util_pct) == (97.0, 61.0)
    assert a.mem_used_bytes == 18249416704 and a.mem_total_bytes == 25757220864
    assert a.temp_c == 64.0 and a.power_w == pytest.approx(412.345) and a.power_limit_w == 450.0
    assert (a.sm_clock_mhz, a.mem_clock_mhz) == (2730, 10501)
    assert (a.pcie_gen, a.pcie_gen_max, a.pcie_width, a.pcie_width_max) == (4, 4, 16, 16)
    assert a.pcie_rx_bytes_s == 48230 * 1024.0 and a.pcie_tx_bytes_s == 1250 * 1024.0
    assert a.processes == ((4242, 17951621120),)
    # bytes name decoded; unsupported power -> None, not an error; x4 of x16 visible
    assert b.name == "NVIDIA GeForce RTX 3090" and b.available
    assert b.power_w is None and b.power_limit_w is None
    assert (b.pcie_width, b.pcie_width_max) == (4, 16)
    assert b.processes == ((99, None),)
    src.close()


def test_gpu_lost_marks_only_that_gpu():
    src = GpuSource(fake_pynvml([RTX4090, RTX4090], lost={1}))
    a, b = src.read()
    assert a.available and a.util_pct == 97.0
    assert not b.available and "fell off the bus" in b.reason and "Xid 79" in b.reason


def test_nvml_init_failure_is_a_reason():
    src = GpuSource(fake_pynvml([], init_error=NVMLError(9)))
    assert not src.status.available
    assert "Driver Not Loaded" in src.status.reason
    assert src.read() == ()


def test_sampler_adds_gpu_temperatures_and_shuts_nvml_down(tmp_path):
    proc_tree(tmp_path)
    mod = fake_pynvml([RTX4090])
    with Sampler(
        HostFS(str(tmp_path)), make_topology(root=str(tmp_path)), nvml_module=mod
    ) as sampler:
        s = sampler.sample()
    assert s.gpus[0].util_pct == 97.0
    gpu_temps = [t for t in s.temperatures if t.kind == "gpu"]
    assert gpu_temps and gpu_temps[0].temp_c == 64.0 and gpu_temps[0].chip == "nvml"
    assert any(st.name == "gpu" and st.available for st in s.sources)
    assert mod.shutdown
