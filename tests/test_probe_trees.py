"""Probes on small hand-made trees (SMBIOS blobs, udev, EDAC, hwmon, GPU PCI devices, NVML fake)
and the DIMMs of the one hwloc fixture that carries SMBIOS records."""

from __future__ import annotations

import errno
import sys
import time
import types

import pytest
from conftest import HWLOC_DIR
from probe_helpers import cpu_tree, parse_xml, write_tree
from test_probe_parse import smbios_type17

from rigtui.hostfs import HostFS
from rigtui.probes import detect, gpu, sensors
from rigtui.probes.memory import PLATFORM_SOURCE
from rigtui.probes.sensors import SensorReader, k10temp_socket


def test_synthetic_two_socket_epyc(tmp_path):
    topo = detect(HostFS(str(write_tree(tmp_path, cpu_tree(2, 4, 2)))), nvml=False)
    assert [s.id for s in topo.sockets] == [0, 1]
    assert len(topo.cores) == 8 and len(topo.cpu.online) == 16
    assert topo.cpu.smt_active and topo.cpu.threads_per_core == 2
    assert [s.numa_mode for s in topo.sockets] == ["NPS1", "NPS1"]
    assert topo.sockets[0].cpus == (0, 1, 2, 3, 8, 9, 10, 11)
    assert topo.first_thread_per_core() == tuple(range(8))
    assert topo.socket_of_node(1) == 1 and topo.nodes[1].distances == {0: 32, 1: 10}
    assert len(topo.l3_domains) == 2 and topo.l3_domains[0].size_bytes == 32 * 1024**2
    assert topo.cpu.isa["avx512f"] and not topo.cpu.isa["amx_tile"]
    # No DIMM data: the platform table answers, labelled as such.
    assert topo.memory.source == PLATFORM_SOURCE
    assert topo.memory.populated_channels == 24 and topo.memory.speed_mts == 4800
    # ... and this tree's one L3 domain per socket is one CCD to the fabric estimate: 57.6 GB/s
    # per socket (1 x 32 B x 1.8 GHz), below its 12 channels' 460.8
    assert sum(topo.memory.dram_bandwidth_per_socket_gbs.values()) == pytest.approx(921.6)
    assert topo.memory.bandwidth_per_socket_gbs == {0: pytest.approx(57.6), 1: pytest.approx(57.6)}
    assert topo.memory.theoretical_bandwidth_gbs == pytest.approx(115.2)
    assert topo.memory.limited_by == {0: "fabric", 1: "fabric"}
    assert "root" in (topo.memory.hint or "")
    assert (topo.memory.hint or "").startswith("EPYC 9004 (Genoa/Bergamo): 12 x DDR5-4800/socket")


def test_no_dimm_hint_says_what_helps_where(tmp_path, monkeypatch):
    """`sudo` is the fix only on a live machine that has SMBIOS and a user who is not root: a VM
    has no tables at all, and a captured tree needs a root capture."""
    from rigtui.probes import memory

    tree = HostFS(str(write_tree(tmp_path, cpu_tree(1, 2, 1))))
    assert memory.no_dimm_hint(tree) == memory.HINT_TREE
    live = HostFS("/")
    monkeypatch.setattr(HostFS, "exists", lambda self, rel: False)
    assert memory.no_dimm_hint(live) == memory.HINT_NO_DMI
    monkeypatch.setattr(HostFS, "exists", lambda self, rel: True)
    monkeypatch.setattr(memory.os, "geteuid", lambda: 0)
    assert memory.no_dimm_hint(live) == memory.HINT_NO_TYPE17
    monkeypatch.setattr(memory.os, "geteuid", lambda: 1000)
    assert memory.no_dimm_hint(live) == memory.HINT_ROOT and "sudo" in memory.HINT_ROOT


def _smbios_entries(n_sockets: int, channels: str, size_mb: int = 65536) -> dict[str, bytes]:
    files = {}
    i = 0
    for s in range(n_sockets):
        for ch in channels:
            files[f"sys/firmware/dmi/entries/17-{i}/raw"] = smbios_type17(
                locator=f"P{s} CHANNEL {ch}", bank=f"P{s}_NODE0_CHANNEL_{ch}", size_mb=size_mb
            )
            i += 1
    files[f"sys/firmware/dmi/entries/17-{i}/raw"] = smbios_type17(locator="P1 CHANNEL Z", size_mb=0)
    return files


def test_smbios_entries_give_channels_speed_bandwidth(tmp_path):
    files = {**cpu_tree(2, 4, 2), **_smbios_entries(2, "ABCDEFGHIJKL")}
    topo = detect(HostFS(str(write_tree(tmp_path, files))), nvml=False)
    m = topo.memory
    assert m.source == "smbios"
    assert len(m.dimms) == 25 and sum(d.populated for d in m.dimms) == 24
    assert dict(m.channels_per_socket) == {0: 12, 1: 12} and m.populated_channels == 24
    assert m.speed_mts == 4800 and sum(m.dram_bandwidth_per_socket_gbs.values()) == pytest.approx(921.6)
    assert m.platform_channels_per_socket == 12 and m.hint is None
    d0 = m.dimms[0]
    assert (d0.socket, d0.channel, d0.size_bytes, d0.type) == (0, "A", 64 * 1024**3, "DDR5")


def test_smbios_half_populated_and_tables_dmi(tmp_path):
    blob = b"".join(
        smbios_type17(locator=f"CPU1_DIMM_{ch}1", bank="BANK 0", size_mb=32768, configured=4400)
        for ch in "ABCD"
    ) + bytes([127, 4, 0, 0, 0, 0])
    files = {**cpu_tree(1, 4, 2), "sys/firmware/dmi/tables/DMI": blob}
    m = detect(HostFS(str(write_tree(tmp_path, files))), nvml=False).memory
    assert m.source == "smbios"
    assert dict(m.channels_per_socket) == {0: 4} and m.speed_mts == 4400
    assert sum(m.dram_bandwidth_per_socket_gbs.values()) == pytest.approx(4 * 8 * 4400 / 1000)
    assert all(d.socket == 0 for d in m.dimms)  # "CPU1" is the first socket on this board


def test_udev_dmi_memory_id(tmp_path):
    props = []
    for i, ch in enumerate("ABCDEFGH"):
        props += [
            f"E:MEMORY_DEVICE_{i}_PRESENT=1",
            f"E:MEMORY_DEVICE_{i}_SIZE={32 * 1024**3}",
            f"E:MEMORY_DEVICE_{i}_LOCATOR=DIMM_{ch}1",
            f"E:MEMORY_DEVICE_{i}_TYPE=DDR4",
            f"E:MEMORY_DEVICE_{i}_SPEED_MTS=3200",
            f"E:MEMORY_DEVICE_{i}_CONFIGURED_SPEED_MTS=2933",
            f"E:MEMORY_DEVICE_{i}_SERIAL_NUMBER=XYZ{i}",
        ]
    files = {
        **cpu_tree(1, 4, 2, model="AMD EPYC 7763 64-Core Processor"),
        "run/udev/data/+dmi:id": "S:something\n" + "\n".join(props) + "\n",
    }
    m = detect(HostFS(str(write_tree(tmp_path, files))), nvml=False).memory
    assert m.source == "udev"
    assert m.populated_channels == 8 and m.speed_mts == 2933
    assert sum(m.dram_bandwidth_per_socket_gbs.values()) == pytest.approx(8 * 8 * 2933 / 1000)


def test_edac_layout(tmp_path):
    files = dict(cpu_tree(2, 4, 2, model="Intel(R) Xeon(R) Platinum 8480+"))
    for s in range(2):
        for imc in range(2):
            mc = f"sys/devices/system/edac/mc/mc{s * 2 + imc}"
            files[f"{mc}/mc_name"] = f"Intel_10nm Socket#{s} IMC#{imc}\n"
            for ch in range(2):
                files[f"{mc}/dimm{ch}/size"] = "32768\n"
                files[f"{mc}/dimm{ch}/dimm_location"] = f"channel {ch} slot 0\n"
                files[f"{mc}/dimm{ch}/dimm_mem_type"] = "Registered-DDR5\n"
            files[f"{mc}/dimm2/size"] = "0\n"  # an empty slot
            files[f"{mc}/dimm2/dimm_location"] = "channel 1 slot 1\n"
    m = detect(HostFS(str(write_tree(tmp_path, files))), nvml=False).memory
    assert m.source == "edac"
    assert dict(m.channels_per_socket) == {0: 4, 1: 4}
    assert m.speed_mts is None and "speed_mts" in m.unknown  # EDAC knows no speed
    assert "4800" in m.unknown["speed_mts"]  # ... but says what the platform allows
    assert m.theoretical_bandwidth_gbs is None


def test_dimms_match_hwloc_memory_modules(fixture_root):
    name = "32em64t-2n8c+dax+nvme+mic+dimms"
    topo = detect(HostFS(str(fixture_root(name))), nvml=False)
    expected = parse_xml(HWLOC_DIR / f"{name}.xml").memory_modules
    ours = [d for d in topo.memory.dimms if d.populated]
    assert len(ours) == len(expected) == 8
    for d, e in zip(ours, expected, strict=True):
        assert d.locator == e["DeviceLocation"].strip()
        assert d.size_bytes == int(e["Size"].removesuffix("KiB")) * 1024
        assert d.type == e["Type"] and d.form_factor == e["FormFactor"]
        assert d.part_number == e["PartNumber"].strip() and str(d.rank) == e["Rank"]
        assert d.manufacturer == e["Vendor"]
    assert topo.memory.source == "smbios" and topo.memory.speed_mts == 1600
    # Dell-style locators: the letter is the socket (A = CPU1, B = CPU2).
    assert {d.socket for d in ours} == {0, 1}
    assert dict(topo.memory.channels_per_socket) == {0: 4, 1: 4}
    assert "estimated" in (topo.memory.hint or "")
    assert [g.vendor for g in topo.display_adapters] == ["ASPEED"] and topo.gpus == ()


# -- sensors ----------------------------------------------------------------------------------------


def _hwmon_files(tmp_path):
    files = {}
    links = {}
    for i, addr in enumerate(("0000:00:18.3", "0000:00:19.3")):
        dev = f"sys/devices/pci0000:00/{addr}"
        h = f"{dev}/hwmon/hwmon{i}"
        files[f"{h}/name"] = "k10temp\n"
        files[f"{h}/temp1_input"] = f"{45000 + i * 1000}\n"
        files[f"{h}/temp1_label"] = "Tctl\n"
        files[f"{h}/temp3_input"] = "40125\n"
        files[f"{h}/temp3_label"] = "Tccd1\n"
        links[f"sys/class/hwmon/hwmon{i}"] = f"../../devices/pci0000:00/{addr}/hwmon/hwmon{i}"
        links[f"{h}/device"] = "../../../" + addr
    nv = "sys/devices/pci0000:40/0000:40:01.1/0000:41:00.0/nvme/nvme0/hwmon2"
    files[f"{nv}/name"] = "nvme\n"
    files[f"{nv}/temp1_input"] = "38850\n"
    files[f"{nv}/temp1_label"] = "Composite\n"
    files[f"{nv}/temp1_crit"] = "84850\n"
    links["sys/class/hwmon/hwmon2"] = f"../../{nv.removeprefix('sys/')}"
    return write_tree(tmp_path, files, links)


def test_k10temp_mapping_and_nvme(tmp_path):
    root = _hwmon_files(tmp_path)
    reader = SensorReader(HostFS(str(root)), None, nvml=False)
    got = {(s.chip, s.label, s.socket): s for s in reader.read()}
    assert got[("k10temp", "Tctl", 0)].temp_c == 45.0
    assert got[("k10temp", "Tctl", 1)].temp_c == 46.0
    assert got[("k10temp", "Tccd1", 1)].kind == "ccd"
    nvme = got[("nvme", "Composite", None)]
    assert nvme.device == "nvme0" and nvme.crit_c == pytest.approx(84.85)
    assert k10temp_socket("0000:00:1a.3") == 2 and k10temp_socket("0000:41:00.0") is None


def test_sensor_reader_rereads_and_survives_eio(tmp_path, monkeypatch):
    root = _hwmon_files(tmp_path)
    reader = SensorReader(HostFS(str(root)), None, nvml=False)
    first = reader.read()
    (root / "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/temp1_input").write_text("70000\n")
    second = {(s.label, s.socket): s.temp_c for s in reader.read()}
    assert second[("Tctl", 0)] == 70.0 and len(first) == 5
    real_open = open

    def eio_open(path, *a, **k):
        if str(path).endswith("hwmon1/temp1_input"):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", eio_open)
    third = {(s.label, s.socket): s.temp_c for s in reader.read()}
    assert third[("Tctl", 1)] is None and third[("Tctl", 0)] == 70.0


def test_sensor_reader_is_cheap(tmp_path):
    files = {}
    for c in range(64):
        files[f"sys/class/hwmon/hwmon0/temp{c + 1}_input"] = "50000\n"
        files[f"sys/class/hwmon/hwmon0/temp{c + 1}_label"] = f"Core {c}\n"
    files["sys/class/hwmon/hwmon0/name"] = "coretemp\n"
    reader = SensorReader(HostFS(str(write_tree(tmp_path, files))), None, nvml=False)
    reader.read()
    t0 = time.perf_counter()
    for _ in range(20):
        out = reader.read()
    per_call = (time.perf_counter() - t0) / 20
    assert len(out) == 64 and per_call < 0.005, f"{per_call * 1000:.2f} ms per read"


# -- GPUs -------------------------------------------------------------------------------------------


def _gpu_tree(tmp_path):
    dev = "sys/devices/pci0000:40/0000:40:01.1/0000:41:00.0"
    files = {
        f"{dev}/class": "0x030200\n",
        f"{dev}/vendor": "0x10de\n",
        f"{dev}/device": "0x2684\n",
        f"{dev}/numa_node": "1\n",
        f"{dev}/local_cpulist": "8-15\n",
        f"{dev}/current_link_speed": "16.0 GT/s PCIe\n",
        f"{dev}/current_link_width": "16\n",
        f"{dev}/max_link_speed": "32.0 GT/s PCIe\n",
        f"{dev}/max_link_width": "16\n",
        "sys/devices/pci0000:00/0000:00:05.0/class": "0x030000\n",
        "sys/devices/pci0000:00/0000:00:05.0/vendor": "0x1a03\n",
        "sys/devices/pci0000:00/0000:00:05.0/device": "0x2000\n",
        "sys/devices/pci0000:00/0000:00:05.0/numa_node": "-1\n",
        "sys/bus/pci/drivers/nvidia/bind": "",
    }
    links = {
        "sys/bus/pci/devices/0000:41:00.0": "../../../devices/pci0000:40/0000:40:01.1/0000:41:00.0",
        "sys/bus/pci/devices/0000:00:05.0": "../../../devices/pci0000:00/0000:00:05.0",
        f"{dev}/driver": "../../../../bus/pci/drivers/nvidia",
    }
    return write_tree(tmp_path, files, links)


def test_gpu_from_pci_without_nvml(tmp_path):
    fs = HostFS(str(_gpu_tree(tmp_path)))
    (g,) = gpu.read_gpus(fs, nvml=False)
    assert (g.pci_address, g.vendor, g.driver, g.numa_node) == (
        "0000:41:00.0",
        "NVIDIA",
        "nvidia",
        1,
    )
    assert g.local_cpus == tuple(range(8, 16))
    assert (g.pcie_gen, g.link_width, g.pcie_gen_max, g.link_max_width) == (4, 16, 5, 16)
    assert g.memory_total_bytes is None and "NVML" in g.unknown["memory_total_bytes"]
    assert g.source == "pci"
    (bmc,) = gpu.read_display_adapters(fs)
    assert bmc.vendor == "ASPEED" and bmc.numa_node is None


def test_gpu_nvml_enrichment_with_a_fake_driver(tmp_path, monkeypatch):
    """The NVML boundary: a stand-in pynvml module answering like a driver with one RTX 4090."""
    fake = types.SimpleNamespace(
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"h{i}",
        nvmlDeviceGetPciInfo=lambda h: types.SimpleNamespace(busId=b"00000000:41:00.0"),
        nvmlDeviceGetName=lambda h: "NVIDIA GeForce RTX 4090",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=24 * 1024**3),
        nvmlDeviceGetCudaComputeCapability=lambda h: (8, 9),
        nvmlDeviceGetCurrPcieLinkGeneration=lambda h: 4,
        nvmlDeviceGetMaxPcieLinkGeneration=lambda h: 4,
        nvmlDeviceGetCurrPcieLinkWidth=lambda h: 16,
        nvmlDeviceGetMaxPcieLinkWidth=lambda h: 16,
        nvmlDeviceGetTemperature=lambda h, kind: 61,
        NVML_CLOCK_MEM=2,
        nvmlDeviceGetMemoryBusWidth=lambda h: 384,
        # nvidia-smi -q on a 4090: "Max Clocks ... Memory : 10501 MHz"
        nvmlDeviceGetMaxClockInfo=lambda h, clock: {2: 10501}[clock],
    )

    def no_numa(h):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    fake.nvmlDeviceGetNumaNodeId = no_numa
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    fs = HostFS(str(_gpu_tree(tmp_path)))
    (g,) = gpu.read_gpus(fs, nvml=True)
    assert g.source == "pci+nvml" and g.name == "NVIDIA GeForce RTX 4090"
    assert g.memory_total_bytes == 24 * 1024**3 and g.compute_capability == "8.9"
    assert g.numa_node == 1 and g.nvml_index == 0  # sysfs affinity kept when NVML has none
    assert (g.memory_bus_width, g.memory_max_clock_mhz) == (384, 10501)
    from rigtui.analysis.gpu_specs import vram_bandwidth

    gbs, basis, how = vram_bandwidth(g)
    assert round(gbs) == 1008 and basis == "read" and "384-bit" in how  # NVIDIA's 1008 GB/s
    temps = sensors.SensorReader(fs, None, gpus=(g,), nvml=True).read()
    assert [(s.chip, s.kind, s.temp_c, s.device) for s in temps] == [
        ("nvml", "gpu", 61.0, "0000:41:00.0")
    ]


def test_gpu_nvml_missing_driver_keeps_pci_view(tmp_path, monkeypatch):
    def fail():
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(nvmlInit=fail))
    (g,) = gpu.read_gpus(HostFS(str(_gpu_tree(tmp_path))), nvml=True)
    assert g.source == "pci" and "Not Found" in g.unknown["nvml"]


def test_gpu_name_from_pci_ids(tmp_path):
    root = _gpu_tree(tmp_path)
    write_tree(
        root,
        {
            "usr/share/misc/pci.ids": "# comment\n1002  Advanced Micro Devices\n\t2684  not this one\n"
            "10de  NVIDIA Corporation\n\t2684  AD102 [GeForce RTX 4090]\n"
            "\t\t10de 167c  subsystem line\n\t2685  AD102 [other]\n10df  Emulex\n"
        },
    )
    (g,) = gpu.read_gpus(HostFS(str(root)), nvml=False)
    assert g.name == "AD102 [GeForce RTX 4090]"
    assert gpu.pci_name("\n10de  NVIDIA\n10df  X\n\t2684  wrong vendor\n", 0x10DE, 0x2684) is None


def test_k10temp_maps_to_the_nth_package_id(tmp_path):
    from rigtui.model.topology import Socket

    sockets = tuple(Socket(i, None, 1, (n,), (), 1, ()) for n, i in enumerate((36, 8442)))
    reader = SensorReader(HostFS(str(_hwmon_files(tmp_path))), sockets, nvml=False)
    tctl = sorted((s.socket, s.temp_c) for s in reader.read() if s.label == "Tctl")
    assert tctl == [(36, 45.0), (8442, 46.0)]


@pytest.mark.parametrize(
    "board, locs, n_sockets, want",
    [
        # Supermicro H13: socket counted from 1 on the locator, channel in both strings
        ("supermicro", [(f"P{s + 1}-DIMM{c}1", f"P{s}_Node0_Channel{c}_Dimm0")
                        for s in range(2) for c in "ABCDEFGHIJKL"], 2, {0: 12, 1: 12}),
        # Gigabyte MZ73: "DIMM_P0_A0" (P after an underscore; the letter after it is the channel)
        ("gigabyte", [(f"DIMM_P{s}_{c}0", f"BANK {i}")
                      for s in range(2) for i, c in enumerate("ABCDEFGHIJKL")], 2, {0: 12, 1: 12}),
        # Intel reference boards: CPU0_DIMM_A1
        ("intel", [(f"CPU{s}_DIMM_{c}1", f"NODE {s}") for s in range(2) for c in "ABCDEFGH"], 2,
         {0: 8, 1: 8}),
    ],
)  # fmt: skip
def test_locator_styles_give_socket_and_channel(board, locs, n_sockets, want):
    from rigtui.probes.memory import infer_slots

    dimms = [{"locator": loc, "bank_locator": bank, "populated": True} for loc, bank in locs]
    infer_slots(dimms, list(range(n_sockets)))
    got: dict[int, set] = {}
    for d in dimms:
        assert d["channel"] is not None and len(d["channel"]) == 1, (board, d)
        got.setdefault(d["socket"], set()).add(d["channel"])
    assert {s: len(ch) for s, ch in got.items()} == want


def test_locators_without_socket_or_channel_split_evenly(tmp_path):
    """Lenovo-style "DIMM 1".."DIMM 24" on two sockets: one DIMM per channel assumed, the DIMMs
    split over the sockets (not 24 channels on socket 0), and the estimate is labelled."""
    files = {**cpu_tree(2, 4, 2)}
    for i in range(24):
        files[f"sys/firmware/dmi/entries/17-{i}/raw"] = smbios_type17(
            locator=f"DIMM {i + 1}", bank="Not Specified"
        )
    m = detect(HostFS(str(write_tree(tmp_path, files))), nvml=False).memory
    assert dict(m.channels_per_socket) == {0: 12, 1: 12}
    assert sum(m.dram_bandwidth_per_socket_gbs.values()) == pytest.approx(921.6)
    assert "estimated" in (m.hint or "")


def test_numa_mode_names_the_bios_option_only_where_it_exists():
    from rigtui.probes import _numa_mode

    assert _numa_mode("AuthenticAMD", 4, False, "AMD EPYC 9654 96-Core Processor") == "NPS4"
    assert _numa_mode("AuthenticAMD", 1, False, "AMD Ryzen Threadripper PRO 7995WX") == "NPS1"
    assert _numa_mode("GenuineIntel", 2, False, "Intel(R) Xeon(R) Platinum 8480+") == "SNC2"
    # a desktop has no NPS/SNC setting: saying "NPS1" would send the user looking for one
    assert _numa_mode("AuthenticAMD", 1, False, "AMD Ryzen 9 7950X 16-Core Processor") == "1 node"
    assert _numa_mode("GenuineIntel", 1, False, "13th Gen Intel(R) Core(TM) i9-13900K") == "1 node"
    assert _numa_mode("GenuineIntel", 2, True, "Intel(R) Xeon(R) CPU E5345") == "nodes span sockets"
