"""Pure parsers for the text and binary formats of /sys, /proc and SMBIOS. No I/O here.

Every parser takes the text (or bytes) of one file and returns plain values. Garbage raises
`ValueError` with a short reason; the probes catch it and record a `Problem` for the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from rigtui.model.cpulist import MAX_CPUS, format_cpulist, parse_cpulist  # noqa: F401 (re-exported)

# -- CPU lists and masks --------------------------------------------------------------------------
# parse_cpulist / format_cpulist live in rigtui.model.cpulist (shared with profiles): imported
# above and re-exported from here.


def parse_cpumask(s: str) -> tuple[int, ...]:
    """Hex cpumask -> ids: "00000000,0000ffff" (comma-separated 32-bit groups, most significant
    first, as in node*/cpumap and cpu*/topology/thread_siblings), "0xff", "f". A mask wider
    than any machine (MAX_CPUS, as parse_cpulist) is refused, not expanded."""
    text = s.strip().replace("\n", "")
    if not text:
        return ()
    if text.lower().startswith("0x"):
        text = text[2:]
    groups = [g.strip() for g in text.split(",")]
    if len(groups) > MAX_CPUS // 32:
        raise ValueError(f"a cpumask of {len(groups)} 32-bit groups is beyond any machine")
    out: list[int] = []
    # Every group but the first is a full 32-bit word; the first may be shorter. One word at
    # a time from the least significant: shifting one huge integer a bit at a time was
    # quadratic (minutes for a 16 MB mask).
    for word, g in enumerate(reversed(groups)):
        if not re.fullmatch(r"[0-9a-fA-F]{1,16}", g) or (len(groups) > 1 and len(g) > 8):
            raise ValueError(f"not a hex cpumask: {s.strip()[:40]!r}")
        value, base = int(g, 16), word * 32
        while value:
            low = value & -value
            out.append(base + low.bit_length() - 1)
            value ^= low
    return tuple(sorted(out))


# -- meminfo and friends --------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo or sys/devices/system/node/nodeN/meminfo -> {key: bytes}.

    "Node 0 MemTotal:  16772456 kB" and "MemTotal: 16772456 kB" both give "MemTotal". Counters
    without a unit (HugePages_Total) are kept as plain counts. Unparseable lines are skipped.
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(
            r"\s*(?:Node\s+\d+\s+)?([A-Za-z0-9_()]+):\s*(\d+)\s*([kKmMgG]?[bB]?)\s*$", line
        )
        if m:
            out[m.group(1)] = int(m.group(2)) * _UNITS.get(m.group(3).lower(), 1)
    return out


def parse_distance(text: str) -> tuple[int, ...]:
    """node*/distance: "10 21 21 10" -> (10, 21, 21, 10)."""
    try:
        return tuple(int(x) for x in text.split())
    except ValueError:
        raise ValueError(f"not a distance row: {text.strip()[:40]!r}") from None


def parse_size(s: str) -> int:
    """Cache sizes "32768K", "1M", "512" -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", s, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {s.strip()[:40]!r}")
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2).upper()]


def parse_selected(text: str) -> str | None:
    """ "always [madvise] never" -> "madvise" (transparent_hugepage/enabled and the like)."""
    m = re.search(r"\[([^\]]+)\]", text)
    return m.group(1) if m else (text.strip() or None)


def parse_key_values(text: str, sep: str = "=") -> dict[str, str]:
    """KEY=VALUE lines (os-release, uevent), quotes stripped; other lines skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found and key.strip() and not key.lstrip().startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def parse_udev_properties(text: str) -> dict[str, str]:
    """run/udev/data/* database -> the "E:KEY=VALUE" properties."""
    return {k[2:]: v for k, v in parse_key_values(text).items() if k.startswith("E:")}


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo -> one dict per blank-line separated block (processors, plus the trailing
    machine-wide block ARM and POWER print)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        key, found, value = line.partition(":")
        if found:
            cur.setdefault(key.strip(), value.strip())
    if cur:
        blocks.append(cur)
    return blocks


def pcie_generation(speed: str | None) -> int | None:
    """sysfs link speed "16.0 GT/s PCIe" -> 4 (by the transfer rate of each generation)."""
    if not speed:
        return None
    m = re.match(r"\s*([\d.]+)\s*GT/s", speed)
    if not m:
        return None
    gts = float(m.group(1))
    for gen, rate in ((6, 64.0), (5, 32.0), (4, 16.0), (3, 8.0), (2, 5.0), (1, 2.5)):
        if gts >= rate - 0.01:
            return gen
    return None


# -- hwmon ----------------------------------------------------------------------------------------


def classify_hwmon_label(chip: str, label: str) -> str:
    """What a hwmon temperature measures, from the chip `name` and the `tempN_label`:
    "cpu-package" (k10temp Tctl/Tdie, coretemp "Package id N", zenpower), "ccd" (Tccd1..),
    "core" (coretemp "Core N"), "nvme", "gpu" (amdgpu/nouveau), else "other"."""
    chip_l, label_l = chip.lower(), label.lower().strip()
    if chip_l in ("k10temp", "zenpower"):
        if label_l.startswith("tccd"):
            return "ccd"
        if label_l in ("tctl", "tdie", "") or label_l.startswith("tctl"):
            return "cpu-package"
        return "other"
    if chip_l == "coretemp":
        if label_l.startswith("package id") or label_l.startswith("physical id"):
            return "cpu-package"
        if label_l.startswith("core"):
            return "core"
        return "other"
    if chip_l == "nvme":
        return "nvme"
    if chip_l in ("amdgpu", "nouveau", "radeon", "i915", "xe"):
        return "gpu"
    return "other"


def coretemp_package(label: str) -> int | None:
    """ "Package id 1" / "Physical id 1" -> 1."""
    m = re.match(r"\s*(?:package|physical) id\s+(\d+)", label, re.IGNORECASE)
    return int(m.group(1)) if m else None


# -- SMBIOS / DMI (DMTF DSP0134) -------------------------------------------------------------------


def smbios_split(blob: bytes) -> Iterator[tuple[int, bytes, list[str]]]:
    """Walk a table of SMBIOS structures (`sys/firmware/dmi/tables/DMI`, or one `entries/*/raw`)
    -> (type, formatted area, strings). Each structure is a header (type, length, handle), the
    formatted area of `length` bytes, then NUL-terminated strings ending with an extra NUL.
    Stops at type 127 (end of table) or at a truncated structure."""
    pos = 0
    while pos + 4 <= len(blob):
        stype, length = blob[pos], blob[pos + 1]
        if length < 4 or pos + length > len(blob):
            return
        formatted = blob[pos : pos + length]
        end = blob.find(b"\x00\x00", pos + length)
        if end < 0:
            strings_raw = blob[pos + length :]
            pos = len(blob)
        else:
            strings_raw = blob[pos + length : end]
            pos = end + 2
        strings = [s.decode("ascii", "replace") for s in strings_raw.split(b"\x00") if s]
        yield stype, formatted, strings
        if stype == 127:
            return


def smbios_filter(blob: bytes, keep_types: set[int]) -> bytes:
    """The structures of an SMBIOS table whose type is in `keep_types`, in order (whole
    structures: formatted area and strings), followed by an end-of-table structure."""
    out = bytearray()
    pos = 0
    while pos + 4 <= len(blob):
        stype, length = blob[pos], blob[pos + 1]
        if length < 4 or pos + length > len(blob):
            break
        end = blob.find(b"\x00\x00", pos + length)
        end = len(blob) if end < 0 else end + 2
        if stype in keep_types:
            out += blob[pos:end]
        pos = end
        if stype == 127:
            break
    out += bytes([127, 4, 0xFF, 0xFE, 0, 0])
    return bytes(out)


MEMORY_TYPES = {
    0x01: "Other", 0x02: "Unknown", 0x03: "DRAM", 0x04: "EDRAM", 0x05: "VRAM", 0x06: "SRAM",
    0x07: "RAM", 0x08: "ROM", 0x09: "Flash", 0x0A: "EEPROM", 0x0B: "FEPROM", 0x0C: "EPROM",
    0x0D: "CDRAM", 0x0E: "3DRAM", 0x0F: "SDRAM", 0x10: "SGRAM", 0x11: "RDRAM", 0x12: "DDR",
    0x13: "DDR2", 0x14: "DDR2 FB-DIMM", 0x18: "DDR3", 0x19: "FBD2", 0x1A: "DDR4", 0x1B: "LPDDR",
    0x1C: "LPDDR2", 0x1D: "LPDDR3", 0x1E: "LPDDR4", 0x1F: "Logical non-volatile device",
    0x20: "HBM", 0x21: "HBM2", 0x22: "DDR5", 0x23: "LPDDR5", 0x24: "HBM3",
}  # fmt: skip
FORM_FACTORS = {
    0x01: "Other", 0x02: "Unknown", 0x03: "SIMM", 0x04: "SIP", 0x05: "Chip", 0x06: "DIP",
    0x07: "ZIP", 0x08: "Proprietary Card", 0x09: "DIMM", 0x0A: "TSOP", 0x0B: "Row of chips",
    0x0C: "RIMM", 0x0D: "SODIMM", 0x0E: "SRIMM", 0x0F: "FB-DIMM", 0x10: "Die", 0x11: "CAMM",
}  # fmt: skip


def _u8(f: bytes, off: int) -> int | None:
    return f[off] if len(f) > off else None


def _u16(f: bytes, off: int) -> int | None:
    return struct.unpack_from("<H", f, off)[0] if len(f) >= off + 2 else None


def _u32(f: bytes, off: int) -> int | None:
    return struct.unpack_from("<I", f, off)[0] if len(f) >= off + 4 else None


def _string(strings: list[str], index: int | None) -> str | None:
    if not index or index > len(strings):
        return None
    s = strings[index - 1].strip()
    return s or None


def parse_smbios_memory_device(formatted: bytes, strings: list[str]) -> dict[str, object]:
    """One SMBIOS type 17 (Memory Device) structure -> a dict of its fields that matter
    (`dmidecode -t 17`). Offsets from DSP0134 7.18; fields beyond `length` are None.

    Size: 0 = empty slot, 0xFFFF = unknown, 0x7FFF = see Extended Size (MiB, 2.7+);
    bit 15 selects KiB units. Speeds 0xFFFF = see Extended Speed (3.3+)."""
    if len(formatted) < 0x15 or formatted[0] != 17:
        raise ValueError("not an SMBIOS type 17 record")
    size_raw = _u16(formatted, 0x0C)
    size: int | None
    populated = size_raw not in (0, None)
    if size_raw in (None, 0xFFFF):
        size = None
    elif size_raw == 0x7FFF:
        ext = _u32(formatted, 0x1C)
        size = (ext & 0x7FFFFFFF) * 1024**2 if ext is not None else None
    elif size_raw & 0x8000:
        size = (size_raw & 0x7FFF) * 1024
    else:
        size = size_raw * 1024**2

    def speed(off: int, ext_off: int) -> int | None:
        v = _u16(formatted, off)
        if v == 0xFFFF:
            v = _u32(formatted, ext_off)
            v = v & 0x7FFFFFFF if v is not None else None
        return v or None

    width = _u16(formatted, 0x0A)
    attrs = _u8(formatted, 0x1B)
    mtype = _u8(formatted, 0x12)
    form = _u8(formatted, 0x0E)
    return {
        "locator": _string(strings, _u8(formatted, 0x10)),
        "bank_locator": _string(strings, _u8(formatted, 0x11)),
        "populated": populated,
        "size_bytes": size if populated else 0 if size_raw == 0 else None,
        "type": MEMORY_TYPES.get(mtype or 0),
        "form_factor": FORM_FACTORS.get(form or 0),
        "speed_mts": speed(0x15, 0x54),
        "configured_speed_mts": speed(0x20, 0x58),
        "data_width_bits": width if width not in (None, 0, 0xFFFF) else None,
        "rank": (attrs & 0x0F) or None if attrs is not None else None,
        "manufacturer": _string(strings, _u8(formatted, 0x17)),
        "part_number": _string(strings, _u8(formatted, 0x1A)),
        "serial_string_index": _u8(formatted, 0x18),
        "asset_string_index": _u8(formatted, 0x19),
    }


def blank_smbios_strings(blob: bytes, wanted: dict[int, tuple[int, ...]]) -> bytes:
    """Copy of an SMBIOS table with the strings at the given formatted-area offsets overwritten by
    spaces of the same length, per structure type (serial numbers, asset tags): the structure
    layout is unchanged so every parser still reads it. Also blanks type 1's UUID bytes."""
    out = bytearray(blob)
    pos = 0
    while pos + 4 <= len(out):
        stype, length = out[pos], out[pos + 1]
        if length < 4 or pos + length > len(out):
            break
        end = out.find(b"\x00\x00", pos + length)
        end = len(out) if end < 0 else end
        # String i starts after the (i-1)th NUL in the string-set.
        starts = [pos + length]
        j = pos + length
        while j < end:
            if out[j] == 0:
                starts.append(j + 1)
            j += 1
        for off in wanted.get(stype, ()):
            if off < length and out[pos + off]:
                idx = out[pos + off] - 1
                if idx < len(starts):
                    s0 = starts[idx]
                    s1 = out.find(b"\x00", s0)
                    s1 = end if s1 < 0 or s1 > end else s1
                    out[s0:s1] = b" " * (s1 - s0)
        if stype == 1 and length >= 0x18:
            out[pos + 0x08 : pos + 0x18] = b"\x00" * 16
        pos = end + 2
        if stype == 127:
            break
    return bytes(out)


# Serial number and asset tag string offsets per SMBIOS structure type (DSP0134).
SMBIOS_SECRET_STRINGS: dict[int, tuple[int, ...]] = {
    1: (0x07,),  # System: serial number
    2: (0x07, 0x08),  # Baseboard: serial, asset tag
    3: (0x07, 0x08),  # Chassis: serial, asset tag
    4: (0x20, 0x21),  # Processor: serial, asset tag
    17: (0x18, 0x19),  # Memory device: serial, asset tag
}
