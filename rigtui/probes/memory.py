"""Memory: DIMMs, populated channels, configured speed, theoretical bandwidth.

Sources, best first (shell equivalents in brackets):
1. SMBIOS type 17 records [`sudo dmidecode -t 17`]: sys/firmware/dmi/entries/17-*/raw, else
   sys/firmware/dmi/tables/DMI (both root-only on most distributions).
2. systemd's dmi_memory_id udev properties, readable by everyone where udev ran it:
   run/udev/data/+dmi:id (MEMORY_DEVICE_<n>_SIZE, _LOCATOR, _CONFIGURED_SPEED_MTS, ...)
   [`udevadm info /sys/devices/virtual/dmi/id`].
3. EDAC [`edac-util -v`]: sys/devices/system/edac/mc/mc*/{mc_name,dimm*/,rank*/} with
   dimm_location "channel N slot M", size (MiB), dimm_mem_type. No speed.
4. The platform table (max supported, not measured) when nothing above is readable.

Theoretical bandwidth = populated channels x 8 bytes x MT/s (configured speed).
"""

from __future__ import annotations

import os
import re

from rigtui.hostfs import HostFS
from rigtui.model.topology import Dimm, MemoryInfo, NumaNode, Socket
from rigtui.probes import platforms
from rigtui.probes.parse import parse_meminfo, parse_smbios_memory_device, smbios_split

HINT_ROOT = (
    "DIMM data needs root: run `sudo rigtui probe` once, or install systemd's udev rules "
    "(dmi_memory_id) so that /run/udev/data/+dmi:id carries MEMORY_DEVICE_* properties"
)
PLATFORM_SOURCE = "platform-table (max supported, not measured)"
HINT_NO_DMI = (
    "no SMBIOS tables under sys/firmware/dmi (VMs and containers usually hide them): run "
    "`sudo dmidecode -t 17` on the host for the DIMMs; `rigtui bench mem` measures what the "
    "memory delivers"
)
HINT_NO_TYPE17 = (
    "SMBIOS is readable but lists no memory devices (type 17): `rigtui bench mem` measures what "
    "the memory delivers"
)
HINT_TREE = (
    "this capture has no readable DIMM records (captured without root, or from a VM): capture "
    "as root (`sudo rigtui capture OUT.tar.gz`) on the machine itself to include them"
)


def no_dimm_hint(fs: HostFS) -> str:
    """What to do about missing DIMM data, for the situation at hand: being root does not help
    where the firmware exposes no SMBIOS (a VM), and a captured tree needs a root capture."""
    if not fs.is_live:
        return HINT_TREE
    if not fs.exists("sys/firmware/dmi"):
        return HINT_NO_DMI
    if os.geteuid() == 0:
        return HINT_NO_TYPE17
    return HINT_ROOT


def unknown_memory(reason: str, total: int | None = None, hint: str = HINT_ROOT) -> MemoryInfo:
    return MemoryInfo(
        total_bytes=total, dimms=(), populated_channels=None, channels_per_socket={},
        platform_channels_per_socket=None, platform_max_mts=None, speed_mts=None,
        theoretical_bandwidth_gbs=None, bandwidth_per_socket_gbs={}, source="unknown",
        hint=hint, unknown={"populated_channels": reason, "theoretical_bandwidth_gbs": reason},
    )  # fmt: skip


# -- sources -------------------------------------------------------------------------------------


def read_smbios_dimms(fs: HostFS) -> tuple[list[dict], str | None]:
    """Type 17 records as dicts, and the source label; ([], None) when unreadable."""
    base = "sys/firmware/dmi/entries"
    entries = sorted(
        (e for e in fs.listdir(base) if re.fullmatch(r"17-\d+", e)), key=lambda e: int(e[3:])
    )
    out = []
    for e in entries:
        blob = fs.read_bytes(f"{base}/{e}/raw")
        if blob is None:
            continue
        for stype, formatted, strings in smbios_split(blob):
            if stype == 17:
                try:
                    out.append(parse_smbios_memory_device(formatted, strings))
                except (ValueError, IndexError) as exc:
                    fs.note(f"{base}/{e}/raw", f"bad SMBIOS type 17 record: {exc}")
    if out:
        return out, "smbios:sys/firmware/dmi/entries"
    blob = fs.read_bytes("sys/firmware/dmi/tables/DMI")
    if blob:
        for stype, formatted, strings in smbios_split(blob):
            if stype == 17:
                try:
                    out.append(parse_smbios_memory_device(formatted, strings))
                except (ValueError, IndexError) as exc:
                    fs.note("sys/firmware/dmi/tables/DMI", f"bad SMBIOS type 17 record: {exc}")
        if out:
            return out, "smbios:sys/firmware/dmi/tables/DMI"
    return [], None


def read_udev_dimms(fs: HostFS) -> list[dict]:
    """MEMORY_DEVICE_<n>_* properties that systemd-udevd's dmi_memory_id stored."""
    from rigtui.probes.parse import parse_udev_properties

    text = fs.read_text("run/udev/data/+dmi:id")
    if not text:
        return []
    props = parse_udev_properties(text)
    devices: dict[int, dict[str, str]] = {}
    for key, value in props.items():
        m = re.fullmatch(r"MEMORY_DEVICE_(\d+)_(\w+)", key)
        if m:
            devices.setdefault(int(m.group(1)), {})[m.group(2)] = value

    def num(d: dict[str, str], k: str) -> int | None:
        try:
            return int(d[k]) if k in d else None
        except ValueError:
            return None

    out = []
    for _, d in sorted(devices.items()):
        size = num(d, "SIZE")
        present = d.get("PRESENT")
        out.append({
            "locator": d.get("LOCATOR"), "bank_locator": d.get("BANK_LOCATOR"),
            "populated": bool(size) if present is None else present == "1",
            "size_bytes": size, "type": d.get("TYPE"), "form_factor": d.get("FORM_FACTOR"),
            "speed_mts": num(d, "SPEED_MTS"), "configured_speed_mts": num(d, "CONFIGURED_SPEED_MTS"),
            "data_width_bits": num(d, "DATA_WIDTH"), "rank": num(d, "RANK"),
            "manufacturer": d.get("MANUFACTURER"), "part_number": d.get("PART_NUMBER"),
        })  # fmt: skip
    return out


def read_edac_dimms(fs: HostFS) -> list[dict]:
    """DIMMs (or ranks, on older drivers) EDAC memory controllers report."""
    base = "sys/devices/system/edac/mc"
    out = []
    for mc in fs.listdir(base):
        if not re.fullmatch(r"mc\d+", mc):
            continue
        mc_name = fs.read_str(f"{base}/{mc}/mc_name") or ""
        sock = re.search(r"Socket#(\d+)", mc_name)
        for d in fs.listdir(f"{base}/{mc}"):
            if not re.fullmatch(r"(dimm|rank)\d+", d):
                continue
            p = f"{base}/{mc}/{d}"
            size_mb = fs.read_int(f"{p}/size")
            loc = fs.read_str(f"{p}/dimm_location") or ""
            ch = re.search(r"channel\s+(\d+)", loc)
            mtype = fs.read_str(f"{p}/dimm_mem_type") or ""
            tm = re.search(r"(LP)?DDR\d", mtype)
            out.append({
                "locator": fs.read_str(f"{p}/dimm_label") or f"{mc} {loc}".strip(),
                "bank_locator": mc_name or mc, "populated": bool(size_mb),
                "size_bytes": size_mb * 1024**2 if size_mb is not None else None,
                "type": tm.group(0) if tm else None, "form_factor": None, "speed_mts": None,
                "configured_speed_mts": None, "data_width_bits": None, "rank": None,
                "manufacturer": None, "part_number": None,
                "socket": int(sock.group(1)) if sock else None,
                "channel": f"{mc}/ch{ch.group(1)}" if ch else None,
            })  # fmt: skip
    return out


# -- locators -> socket and channel --------------------------------------------------------------

# "P0" may follow an underscore (Gigabyte's "DIMM_P0_A0"), which \b would not see as a boundary.
_SOCKET_RX = re.compile(r"(?:CPU|PROC|SOCKET|NODE|(?<![A-Z])P)\s*[_-]?\s*(\d+)", re.IGNORECASE)
# Channel spellings, most explicit first: "CHANNEL A"/"CH_A", Gigabyte's "P0_A0", "DIMM_A1".
_CHANNEL_RXS = tuple(
    re.compile(rx, re.IGNORECASE)
    for rx in (
        r"(?:CHANNEL|\bCH)\s*[_-]?\s*([A-Z0-9])\b",
        r"(?<![A-Z])P\d+[_-]([A-Z])\d",
        r"DIMM\s*[_-]?\s*([A-Z])\d",
    )
)


def _channel(text: str) -> str | None:
    for rx in _CHANNEL_RXS:
        if m := rx.search(text):
            return m.group(1).upper()
    return None


def infer_slots(dimms: list[dict], socket_ids: list[int]) -> None:
    """Add "socket" and "channel" to each DIMM dict from its locators, where they say it.

    Board vendors differ: "P0 CHANNEL A" / "CPU1_DIMM_A1" / "P1-DIMMA1" name socket and channel;
    Dell names the socket by the letter ("A1".."A12" on CPU1, "B1".. on CPU2) and not the channel.
    Boards counting from 1 (CPU1, P1) are shifted; the n-th socket of the board is the n-th
    physical package id of the kernel (`socket_ids`, sorted)."""
    n_sockets = max(len(socket_ids), 1)
    ids = socket_ids or [0]
    found: list[int | None] = []
    for d in dimms:
        text = " ".join(x for x in (d.get("locator"), d.get("bank_locator")) if x)
        m = _SOCKET_RX.search(text)
        found.append(int(m.group(1)) if m else None)
    known = [s for s in found if s is not None]
    shift = 1 if known and min(known) >= 1 and max(known) >= n_sockets else 0
    letters = {
        m.group(1).upper()
        for d in dimms
        if (m := re.fullmatch(r"(?:DIMM[_ ]?)?([A-Z])\d+", (d.get("locator") or "").strip(), re.I))
    }
    letters_are_sockets = n_sockets > 1 and len(letters) == n_sockets and not known
    for d, s in zip(dimms, found, strict=True):
        if d.get("socket") is None:
            d["socket"] = ids[s - shift] if s is not None and 0 <= s - shift < n_sockets else None
        loc = (d.get("locator") or "").strip()
        if letters_are_sockets:
            m = re.fullmatch(r"(?:DIMM[_ ]?)?([A-Z])\d+", loc, re.I)
            if m:
                d["socket"] = ids[sorted(letters).index(m.group(1).upper())]
            continue
        if d.get("channel") is None:
            text = " ".join(x for x in (d.get("locator"), d.get("bank_locator")) if x)
            d["channel"] = _channel(text)
        if d.get("socket") is None and n_sockets == 1:
            d["socket"] = ids[0]


# -- assembly ------------------------------------------------------------------------------------


def read_memory(
    fs: HostFS, cpu_model: str | None, sockets: tuple[Socket, ...], nodes: tuple[NumaNode, ...]
) -> MemoryInfo:
    meminfo = fs.read_text("proc/meminfo")
    total = parse_meminfo(meminfo).get("MemTotal") if meminfo else None
    if total is None:
        node_mem = [n.mem_total_bytes for n in nodes if n.mem_total_bytes is not None]
        total = sum(node_mem) if node_mem else None
    plat = platforms.lookup(cpu_model)
    socket_ids = sorted(s.id for s in sockets) or [0]
    n_sockets = len(socket_ids)

    raw, source = read_smbios_dimms(fs)
    if not raw:
        raw, source = read_udev_dimms(fs), "udev:dmi_memory_id"
    if not raw:
        raw, source = read_edac_dimms(fs), "edac"
    if not raw:
        return _from_platform(plat, total, socket_ids, no_dimm_hint(fs))
    infer_slots(raw, socket_ids)
    dimms = tuple(
        Dimm(
            locator=d.get("locator"), bank_locator=d.get("bank_locator"),
            populated=bool(d.get("populated")), size_bytes=d.get("size_bytes"), type=d.get("type"),
            form_factor=d.get("form_factor"), speed_mts=d.get("speed_mts"),
            configured_speed_mts=d.get("configured_speed_mts"),
            data_width_bits=d.get("data_width_bits"), rank=d.get("rank"),
            manufacturer=d.get("manufacturer"), part_number=d.get("part_number"),
            socket=d.get("socket"), channel=d.get("channel"), source=source or "unknown",
        )
        for d in raw
    )  # fmt: skip
    populated = [d for d in dimms if d.populated]
    unknown: dict[str, str] = {}
    hint = None
    per_socket: dict[int, int] = {}
    if populated and all(d.channel is not None and d.socket is not None for d in populated):
        for s in {d.socket for d in populated}:
            per_socket[s] = len({d.channel for d in populated if d.socket == s})  # type: ignore[misc]
    elif populated:
        # Locators do not name channels: assume one DIMM per channel (servers are populated that
        # way for bandwidth), capped by what the platform has. Labelled as an estimate.
        cap = plat.channels_per_socket if plat else None
        for s in socket_ids:
            on = [d for d in populated if d.socket == s or (d.socket is None and n_sockets == 1)]
            if d_count := len(on):
                per_socket[s] = min(d_count, cap) if cap else d_count
        if not per_socket:
            # Locators name neither socket nor channel ("DIMM 1".."DIMM 24"): split the DIMMs
            # evenly over the sockets (boards are populated symmetrically), still capped.
            n = len(populated)
            per_socket = {
                s: min(n // n_sockets + (i < n % n_sockets), cap or n)
                for i, s in enumerate(socket_ids)
            }
            per_socket = {s: c for s, c in per_socket.items() if c}
        hint = (
            "channels estimated: DIMM locators do not name channels (one DIMM per channel assumed)"
        )
    speeds = [d.configured_speed_mts or d.speed_mts for d in populated]
    known_speeds = [s for s in speeds if s]
    speed = min(known_speeds) if known_speeds else None
    if speed is None:
        unknown["speed_mts"] = f"{source} gives no speed" + (
            f"; platform maximum is {plat.max_mts} MT/s" if plat else ""
        )
    channels = sum(per_socket.values()) if per_socket else None
    if channels is None:
        unknown["populated_channels"] = "no populated DIMM found in " + (source or "any source")
    # Rounded to MB/s: the product is exact in decimal, float sums print 51.199999999999996.
    bw_socket = {s: round(c * 8 * speed / 1000, 3) for s, c in per_socket.items()} if speed else {}
    return MemoryInfo(
        total_bytes=total, dimms=dimms, populated_channels=channels,
        channels_per_socket=per_socket,
        platform_channels_per_socket=plat.channels_per_socket if plat else None,
        platform_max_mts=plat.max_mts if plat else None, speed_mts=speed,
        theoretical_bandwidth_gbs=round(sum(bw_socket.values()), 3) if bw_socket else None,
        bandwidth_per_socket_gbs=bw_socket, source=(source or "unknown").split(":")[0],
        hint=hint, unknown=unknown,
    )  # fmt: skip


def _from_platform(
    plat: platforms.Platform | None, total: int | None, socket_ids: list[int], hint: str
) -> MemoryInfo:
    if plat is None:
        return unknown_memory(
            "no DIMM data readable and the CPU model is not in the platform table", total, hint
        )
    # Name the platform row the figures come from, with its caveats (MRDIMM, LPDDR bus width).
    extra = [f"{plat.name}: {plat.channels_per_socket} x {plat.memory_type}-{plat.max_mts}/socket"]
    if plat.mrdimm_mts:
        extra.append(f"MRDIMM-{plat.mrdimm_mts} where fitted")
    if plat.note:
        extra.append(plat.note)
    hint = f"{'; '.join(extra)}. {hint[:1].upper()}{hint[1:]}"
    n_sockets = len(socket_ids)
    per_socket = {s: plat.channels_per_socket for s in socket_ids}
    bw = {s: round(plat.bandwidth_per_socket_gbs, 3) for s in socket_ids}
    return MemoryInfo(
        total_bytes=total, dimms=(), populated_channels=plat.channels_per_socket * n_sockets,
        channels_per_socket=per_socket, platform_channels_per_socket=plat.channels_per_socket,
        platform_max_mts=plat.max_mts, speed_mts=plat.max_mts,
        theoretical_bandwidth_gbs=round(sum(bw.values()), 3), bandwidth_per_socket_gbs=bw,
        source=PLATFORM_SOURCE, hint=hint,
        unknown={"dimms": "no SMBIOS, udev or EDAC memory data readable"},
    )  # fmt: skip
