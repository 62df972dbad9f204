"""Unit tests of the pure parsers in rigtui.probes.parse (and the platform table)."""

from __future__ import annotations

import struct

import pytest

from rigtui.probes import parse
from rigtui.probes.parse import (
    blank_smbios_strings,
    classify_hwmon_label,
    coretemp_package,
    format_cpulist,
    parse_cpuinfo,
    parse_cpulist,
    parse_cpumask,
    parse_meminfo,
    parse_selected,
    parse_smbios_memory_device,
    pcie_generation,
    smbios_filter,
    smbios_split,
)
from rigtui.probes.platforms import all_platforms, lookup


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0-3,8", (0, 1, 2, 3, 8)),
        ("", ()),
        ("\n", ()),
        ("5", (5,)),
        ("0-62:2", tuple(range(0, 63, 2))),  # lscpu's strided form
        ("0-7:2/4", (0, 1, 4, 5)),  # kernel bitmap_parselist used/group form
        (" 1-2 , 4 ", (1, 2, 4)),
        ("3,1,2,1", (1, 2, 3)),
    ],
)
def test_parse_cpulist(text, expected):
    assert parse_cpulist(text) == expected


@pytest.mark.parametrize("garbage", ["a-b", "3-1", "0-", "1,x", "0-99999999"])
def test_parse_cpulist_rejects_garbage(garbage):
    with pytest.raises(ValueError):
        parse_cpulist(garbage)


@pytest.mark.parametrize(
    "cpus, text", [((0, 1, 2, 3, 8), "0-3,8"), ((), ""), ((5,), "5"), ((1, 3, 5), "1,3,5")]
)
def test_format_cpulist_round_trips(cpus, text):
    assert format_cpulist(cpus) == text
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize(
    "mask, expected",
    [
        ("00000000,0000ffff", tuple(range(16))),
        ("0000,22222222,22222222", tuple(range(1, 64, 4))),  # x86_64-64cpu node2 (short group)
        ("f", (0, 1, 2, 3)),
        ("0x30", (4, 5)),
        ("00000001,00000000", (32,)),
        ("000000f0\n", (4, 5, 6, 7)),
        ("0", ()),
    ],
)
def test_parse_cpumask(mask, expected):
    assert parse_cpumask(mask) == expected


@pytest.mark.parametrize("garbage", ["xyz", "ff,,ff", "0x", "12345678901234567"])
def test_parse_cpumask_rejects_garbage(garbage):
    with pytest.raises(ValueError):
        parse_cpumask(garbage)


def test_parse_meminfo_system_and_node_forms():
    system = "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\nHugePages_Total:       4\nbroken line\n"
    node = "Node 0 MemTotal:     16772456 kB\nNode 0 MemFree:      13079628 kB\nNode 0 HugePages_Free:  0\n"
    assert parse_meminfo(system) == {
        "MemTotal": 24576000 * 1024,
        "MemAvailable": 1000 * 1024,
        "HugePages_Total": 4,  # a count, not bytes
    }
    got = parse_meminfo(node)
    assert got["MemTotal"] == 16772456 * 1024 and got["MemFree"] == 13079628 * 1024
    assert parse_meminfo("garbage\x00\xff") == {}


def test_parse_selected_and_pcie_generation():
    assert parse_selected("always [madvise] never") == "madvise"
    assert parse_selected("[always] madvise never\n") == "always"
    assert pcie_generation("16.0 GT/s PCIe") == 4
    assert pcie_generation("32.0 GT/s PCIe") == 5
    assert pcie_generation("2.5 GT/s") == 1
    assert pcie_generation("Unknown") is None
    assert pcie_generation(None) is None


def test_parse_cpuinfo_blocks():
    text = (
        "processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: X\n\nHardware\t: board\n"
    )
    blocks = parse_cpuinfo(text)
    assert [b.get("processor") for b in blocks] == ["0", "1", None]
    assert blocks[2]["Hardware"] == "board"


@pytest.mark.parametrize(
    "chip, label, kind",
    [
        ("k10temp", "Tctl", "cpu-package"),
        ("k10temp", "Tdie", "cpu-package"),
        ("k10temp", "Tccd3", "ccd"),
        ("coretemp", "Package id 1", "cpu-package"),
        ("coretemp", "Core 12", "core"),
        ("nvme", "Composite", "nvme"),
        ("amdgpu", "edge", "gpu"),
        ("acpitz", "temp1", "other"),
    ],
)
def test_classify_hwmon_label(chip, label, kind):
    assert classify_hwmon_label(chip, label) == kind


def test_coretemp_package():
    assert coretemp_package("Package id 3") == 3
    assert coretemp_package("Physical id 1") == 1
    assert coretemp_package("Core 0") is None


# -- SMBIOS -----------------------------------------------------------------------------------------


def smbios_type17(
    *,
    locator: str = "P0 CHANNEL A",
    bank: str = "BANK 0",
    size_mb: int = 32768,
    mem_type: int = 0x22,
    speed: int = 4800,
    configured: int = 4800,
    rank: int = 2,
    serial: str = "SN12345",
    asset: str = "AT-9",
    part: str = "M321R4GA3BB6-CQK",
    length: int = 0x5C,
) -> bytes:
    """A type 17 structure per DSP0134 3.3 (length 0x5C), sizes over 32 GiB via Extended Size."""
    strings = [locator, bank, "Samsung", serial, asset, part]
    size_field = 0x7FFF if size_mb >= 0x7FFF else size_mb
    f = bytearray(length)
    struct.pack_into("<BBH", f, 0, 17, length, 0x1100)
    struct.pack_into("<HHHHH", f, 0x04, 0x1000, 0xFFFE, 80, 64, size_field)
    struct.pack_into("<BBBBBH", f, 0x0E, 0x09, 0, 1, 2, mem_type, 0x0080)
    struct.pack_into("<HBBBBB", f, 0x15, speed, 3, 4, 5, 6, rank)
    if length >= 0x22:
        struct.pack_into("<IH", f, 0x1C, size_mb if size_field == 0x7FFF else 0, configured)
    blob = bytes(f) + b"\x00".join(s.encode() for s in strings) + b"\x00\x00"
    return blob


def test_smbios_type17_ddr5_extended_size():
    (stype, formatted, strings), *_ = list(smbios_split(smbios_type17(size_mb=65536)))
    d = parse_smbios_memory_device(formatted, strings)
    assert stype == 17
    assert d["locator"] == "P0 CHANNEL A" and d["bank_locator"] == "BANK 0"
    assert d["size_bytes"] == 64 * 1024**3 and d["populated"]
    assert d["type"] == "DDR5" and d["form_factor"] == "DIMM"
    assert d["speed_mts"] == 4800 and d["configured_speed_mts"] == 4800
    assert d["rank"] == 2 and d["data_width_bits"] == 64
    assert d["manufacturer"] == "Samsung" and d["part_number"] == "M321R4GA3BB6-CQK"


def test_smbios_type17_empty_slot_and_old_short_record():
    blob = smbios_type17(size_mb=0, length=0x1C, part="")
    (_, formatted, strings), *_ = list(smbios_split(blob))
    d = parse_smbios_memory_device(formatted, strings)
    assert not d["populated"] and d["size_bytes"] == 0
    assert d["configured_speed_mts"] is None  # field absent in a 2.3-era record


def test_smbios_size_in_kib_units_and_unknown():
    blob = bytearray(smbios_type17(size_mb=1))
    struct.pack_into("<H", blob, 0x0C, 0x8000 | 512)  # bit 15: KiB units
    (_, formatted, strings), *_ = list(smbios_split(bytes(blob)))
    assert parse_smbios_memory_device(formatted, strings)["size_bytes"] == 512 * 1024
    struct.pack_into("<H", blob, 0x0C, 0xFFFF)
    (_, formatted, strings), *_ = list(smbios_split(bytes(blob)))
    d = parse_smbios_memory_device(formatted, strings)
    assert d["populated"] and d["size_bytes"] is None


def test_smbios_garbage_does_not_loop_or_crash():
    assert list(smbios_split(b"")) == []
    assert list(smbios_split(b"\x11\x02\x00")) == []  # length < 4
    assert list(smbios_split(b"\x11\x40\x00\x00" + b"\x00" * 8)) == []  # truncated
    with pytest.raises(ValueError):
        parse_smbios_memory_device(b"\x04\x10" + b"\x00" * 14, [])


def test_blank_serials_keeps_layout():
    table = smbios_type17() + smbios_type17(locator="P1 CHANNEL B") + bytes([127, 4, 0, 0, 0, 0])
    clean = blank_smbios_strings(table, parse.SMBIOS_SECRET_STRINGS)
    assert len(clean) == len(table)
    assert b"SN12345" not in clean and b"AT-9" not in clean
    recs = [parse_smbios_memory_device(f, s) for t, f, s in smbios_split(clean) if t == 17]
    assert [r["locator"] for r in recs] == ["P0 CHANNEL A", "P1 CHANNEL B"]
    assert recs[0]["part_number"] == "M321R4GA3BB6-CQK"


def test_smbios_filter_keeps_only_memory_devices():
    type1 = bytes([1, 8, 0, 1, 1, 2, 3, 4]) + b"Vendor\x00Product\x00\x00"
    table = type1 + smbios_type17() + bytes([127, 4, 0, 0, 0, 0])
    kept = list(smbios_split(smbios_filter(table, {17})))
    assert [t for t, _, _ in kept] == [17, 127]


# -- platforms --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, name, channels, mts",
    [
        ("AMD EPYC 9654 96-Core Processor", "EPYC 9004", 12, 4800),
        # Turin's standard speed is DDR5-6000; 6400 only on some SKUs/boards (Platform.note)
        ("AMD EPYC 9755 128-Core Processor", "EPYC 9005", 12, 6000),
        # cloud and F SKUs carry letters in the middle: the VMs where no DIMM data is readable
        ("AMD EPYC 9R14 96-Core Processor", "EPYC 9004", 12, 4800),
        ("AMD EPYC 9B45 128-Core Processor", "EPYC 9005", 12, 6000),
        ("AMD EPYC 7R13 Processor", "EPYC 7003", 8, 3200),
        ("AMD EPYC 72F3 8-Core Processor", "EPYC 7003", 8, 3200),
        ("AMD EPYC 7H12 64-Core Processor", "EPYC 7002", 8, 3200),
        ("AMD EPYC 7B12", "EPYC 7002", 8, 3200),
        ("AMD EPYC 7763 64-Core Processor", "EPYC 7003", 8, 3200),
        ("AMD EPYC 7742 64-Core Processor", "EPYC 7002", 8, 3200),
        ("AMD EPYC 7601 32-Core Processor", "EPYC 7001", 8, 2666),
        ("AMD EPYC 8534P 64-Core Processor", "EPYC 8004", 6, 4800),
        ("AMD EPYC 4564P 16-Core Processor", "EPYC 4004", 2, 5200),
        ("AMD Ryzen Threadripper PRO 7995WX 96-Cores", "Threadripper PRO 7000WX", 8, 5200),
        ("AMD Ryzen Threadripper 7980X 64-Cores", "Threadripper 7000", 4, 5200),
        ("AMD Ryzen Threadripper 3990X 64-Core Processor", "Threadripper 3000", 4, 3200),
        ("AMD Ryzen 9 7950X 16-Core Processor", "Ryzen 7000", 2, 5600),
        ("Intel(R) Xeon(R) Platinum 8480+", "Sapphire Rapids", 8, 4800),
        ("INTEL(R) XEON(R) PLATINUM 8592+", "Emerald Rapids", 8, 5600),
        ("Intel(R) Xeon(R) 6980P", "Granite Rapids-AP", 12, 6400),
        ("Intel(R) Xeon(R) 6767P", "Granite Rapids-SP", 8, 6400),
        ("Intel(R) Xeon(R) 6369P", "Xeon 6300P", 2, 4800),  # entry LGA1700, not Granite Rapids
        # Sandy Bridge-EP runs DDR3-1600 (the 32em64t fixture's DIMMs), Ivy Bridge-EP 1866
        ("Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz", "Sandy Bridge-EP", 4, 1600),
        ("Intel(R) Xeon(R) CPU E5-2680 v2 @ 2.80GHz", "Ivy Bridge-EP", 4, 1866),
        ("Intel(R) Xeon(R) CPU E5-2440 0 @ 2.40GHz", "E5-2400", 3, 1600),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "E5 v3/v4", 4, 2400),
        ("Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "Cascade Lake", 6, 2933),
        ("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", "Skylake-SP", 6, 2666),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "Ice Lake-SP", 8, 3200),
        ("Intel(R) Xeon(R) w9-3495X", "Xeon W-3400", 8, 4800),
        ("13th Gen Intel(R) Core(TM) i9-13900K", "Core 12th-14th gen", 2, 5600),
        ("Neoverse-V2", "Grace", 8, 8533),
        ("13th Gen Intel(R) Core(TM) i7-1370P", "Core 12th-14th gen", 2, 5600),  # mobile: 4 digits
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "Core 6th-11th gen", 2, 3200),
        ("11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", "Core 6th-11th gen", 2, 3200),
        ("Intel(R) Core(TM) i5 CPU       M 560  @ 2.67GHz", "Core (older)", 2, 1600),
    ],
)
def test_platform_lookup(model, name, channels, mts):
    p = lookup(model)
    assert p is not None and name in p.name
    assert (p.channels_per_socket, p.max_mts) == (channels, mts)


def test_platform_lookup_unknown_and_granite_rapids_mrdimm():
    assert lookup(None) is None and lookup("") is None
    assert lookup("QEMU Virtual CPU version 2.5+") is None
    gnr = lookup("Intel(R) Xeon(R) 6980P")
    assert gnr is not None and gnr.mrdimm_mts == 8800 and gnr.memory_type == "DDR5"
    assert gnr.bandwidth_per_socket_gbs == pytest.approx(614.4)
    assert all(p.channels_per_socket > 0 and p.max_mts > 0 for p in all_platforms())
