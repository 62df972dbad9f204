"""The fabric cap: what a socket's cores can pull from its memory controllers.

On AMD Zen 2-5 the memory controllers sit on the I/O die and every core die (CCD) reads through
one GMI link of 32 bytes per fabric clock (FCLK), so a socket reads at most
CCDs x 32 B x FCLK, whatever its channels allow:

    theoretical = min(channels x 8 B x MT/s, CCDs x 32 B x FCLK)

(the local-ML hardware guide: a Ryzen 5 7400F, 1 CCD at 1.8 GHz on 2 x DDR5-5200, gets
min(83.2, 57.6) = 57.6 GB/s; an EPYC 9755, 16 CCDs at 2.0 GHz on 12 x DDR5-5600,
min(537.6, 1024) = 537.6). The CCD count comes from the L3 domains (one per CCD, two on Zen 2
and Zen 4c, whose CCDs hold two CCXs); FCLK is the generation's default, labelled estimated:
the kernel exposes it only through AMD's HSMP mailbox (root, not read here) and boards
overclock it. Intel's rings and meshes and the other vendors' fabrics are not modelled: there the channels
are the limit rigtui computes, and `fabric_note` says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from rigtui.model.topology import CacheDomain, CpuInfo, FabricLimit, MemoryInfo, Socket

BYTES_PER_CLOCK = 32  # GMI read width per CCD per FCLK cycle (Zen 2-5)
# systemd-detect-virt's container names: a container sees the host's own caches
CONTAINERS = frozenset({"none", "docker", "podman", "lxc", "lxc-libvirt", "systemd-nspawn",
                        "openvz", "rkt", "wsl", "proot", "pouch"})  # fmt: skip


@dataclass(frozen=True)
class Generation:
    name: str
    l3_per_ccd: int
    fclk_mhz: int
    note: str = ""
    max_cores_per_l3: int = 8  # a CCX's cores: more under one L3 means the layout is not real


# (family, first model, last model) -> generation; None where the memory controllers are not
# behind a per-die link (Zen 1's dies each have their own; monolithic APUs).
_AMD: tuple[tuple[int, int, int, Generation | None], ...] = (
    (0x17, 0x00, 0x2F, None),  # Zen / Zen+: no I/O die
    (0x17, 0x30, 0x3F, Generation("Zen 2 (EPYC 7002 Rome, Threadripper 3000)", 2, 1467,
                                                      max_cores_per_l3=4)),
    (0x17, 0x60, 0x6F, None),  # Renoir / Lucienne APUs
    (0x17, 0x70, 0x7F, Generation("Zen 2 (Ryzen 3000 Matisse)", 2, 1600, max_cores_per_l3=4)),
    (0x17, 0x90, 0xAF, None),  # Van Gogh, Mendocino APUs
    (0x19, 0x00, 0x0F, Generation("Zen 3 (EPYC 7003 Milan, Threadripper PRO 5000)", 1, 1600)),
    (0x19, 0x10, 0x1F, Generation("Zen 4 (EPYC 9004 Genoa, Threadripper 7000)", 1, 1800,
                                  "EPYC 9004 parts with 4 CCDs or fewer may wire two GMI links "
                                  "per CCD (GMI-wide), which lifts this cap")),
    (0x19, 0x20, 0x2F, Generation("Zen 3 (Ryzen 5000 Vermeer)", 1, 1600)),
    (0x19, 0x40, 0x5F, None),  # Rembrandt, Cezanne APUs
    (0x19, 0x60, 0x6F, Generation("Zen 4 (Ryzen 7000 Raphael, EPYC 4004)", 1, 1800)),
    (0x19, 0x70, 0x7F, None),  # Phoenix / Hawk Point APUs
    (0x19, 0xA0, 0xAF, Generation("Zen 4c (EPYC 97x4 Bergamo, EPYC 8004 Siena)", 2, 1800)),
    (0x1A, 0x00, 0x1F, Generation("Zen 5 (EPYC 9005 Turin, Threadripper 9000)", 1, 2000,
                                  "Zen 5c CCDs hold 16 cores under one L3", 16)),
    (0x1A, 0x20, 0x3F, None),  # Strix Point, Krackan APUs
    (0x1A, 0x40, 0x4F, Generation("Zen 5 (Ryzen 9000 Granite Ridge, EPYC 4005)", 1, 2000)),
    (0x1A, 0x70, 0x7F, None),  # Strix Halo: its CCDs sit on a wide die-to-die link, not GMI
)  # fmt: skip


_SERIES = re.compile(r"\b(EPYC|Ryzen|Threadripper)(?:\s+PRO)?\s+(\d\dx\d|\d{4})", re.IGNORECASE)


def _series(text: str) -> list[tuple[str, str]]:
    return [(w.lower(), n.lower()) for w, n in _SERIES.findall(text)]


def generation_of_platform(name: str) -> Generation | None:
    """The generation of a platform named in words ("EPYC 9004 (Genoa/Bergamo)", "Threadripper
    PRO 7000WX"): the first whose own names (in its parentheses) share the platform's first
    product line and series; None for non-AMD or unknown names (rigtui plan's what-if --ccds)."""
    want = _series(name)[:1]
    for *_, gen in _AMD:
        if gen is not None and want and want[0] in _series(gen.name):
            return gen
    return None


def amd_generation(family: int | None, model: int | None) -> Generation | None | str:
    """The generation of an AMD CPU; None where no per-die link limits memory reads; a
    string (why) where the family/model is not in the table."""
    if family is None or model is None:
        return "CPU family/model not read"
    if family < 0x17:
        return None  # K8-K10 and the Bulldozer family: controllers on the die itself
    for fam, lo, hi, gen in _AMD:
        if fam == family and lo <= model <= hi:
            return gen
    return f"family {family:#x} model {model:#x} is not in rigtui's fabric table"


def fabric_limit(cpu: CpuInfo, sockets: Sequence[Socket], l3: Sequence[CacheDomain],
                 virtualization: str | None = None) -> tuple[FabricLimit | None, str]:  # fmt: skip
    """(the fabric cap, or None; one line saying which limit applies and why)."""
    if virtualization is not None and virtualization not in CONTAINERS:
        return None, (f"a virtual machine ({virtualization}): its L3 layout is the hypervisor's, "
                      "so the host's core dies cannot be counted; the DRAM channels are the "
                      "theoretical figure")  # fmt: skip
    if cpu.vendor != "AuthenticAMD":
        who = {"GenuineIntel": "Intel's on-die interconnect (ring or mesh)"}.get(
            cpu.vendor or "", "this CPU's interconnect")
        return None, (f"{who} is not modelled as a limit: the DRAM channels are the theoretical "
                      "figure (measure with `rigtui bench mem`)")  # fmt: skip
    gen = amd_generation(cpu.family, cpu.model)
    if isinstance(gen, str):
        return None, f"{gen}: the DRAM channels are the theoretical figure"
    if gen is None:
        return None, ("memory controllers on the cores' own die (no I/O-die link): the DRAM "
                      "channels are the limit")  # fmt: skip
    by_index = {d.index: d for d in l3}
    ccds: dict[int, int] = {}
    for s in sockets:
        n_l3 = len([i for i in s.l3_domains if i in by_index])
        if not n_l3:
            continue
        if s.cores > n_l3 * gen.max_cores_per_l3:
            return None, (f"{gen.name}: socket {s.id} has {s.cores} cores under {n_l3} L3 "
                          f"domain(s), more than a CCX holds ({gen.max_cores_per_l3}): the L3 "
                          "layout is not the hardware's, so the CCDs cannot be counted")  # fmt: skip
        ccds[s.id] = max(1, -(-n_l3 // gen.l3_per_ccd))
    if not ccds:
        return None, f"{gen.name}: no L3 domains read, so the CCDs cannot be counted"
    ghz = gen.fclk_mhz / 1000
    caps = {s: round(n * BYTES_PER_CLOCK * ghz, 3) for s, n in ccds.items()}
    counts = sorted(set(ccds.values()))
    ccd_text = "/".join(map(str, counts))
    per = f"{gen.l3_per_ccd} L3 domains per CCD" if gen.l3_per_ccd > 1 else "one L3 domain per CCD"
    note = (f"{gen.name}: {ccd_text} CCDs per socket ({per}) x {BYTES_PER_CLOCK} B x "
            f"{ghz:g} GHz FCLK (the generation's default, estimated) = "
            f"{'/'.join(f'{c:g}' for c in sorted(set(caps.values())))} GB/s per socket")  # fmt: skip
    if gen.note:
        note += f"; {gen.note}"
    limit = FabricLimit(
        generation=gen.name, ccds_per_socket=ccds, l3_per_ccd=gen.l3_per_ccd,
        bytes_per_clock=BYTES_PER_CLOCK, fclk_mhz=float(gen.fclk_mhz), basis="estimated",
        cap_per_socket_gbs=caps, note=note,
    )  # fmt: skip
    return limit, note


def apply_fabric(mem: MemoryInfo, cpu: CpuInfo, sockets: Sequence[Socket],
                 l3: Sequence[CacheDomain], virtualization: str | None = None) -> MemoryInfo:  # fmt: skip
    """The memory facts with each socket's theoretical bandwidth capped by the fabric:
    `dram_bandwidth_per_socket_gbs` keeps the channels' figure, `limited_by` says which won."""
    limit, note = fabric_limit(cpu, sockets, l3, virtualization)
    dram: Mapping[int, float] = dict(mem.bandwidth_per_socket_gbs)
    caps = limit.cap_per_socket_gbs if limit else {}
    per_socket: dict[int, float] = {}
    limited: dict[int, str] = {}
    for s, bw in dram.items():
        cap = caps.get(s)
        if cap is not None and cap < bw:
            per_socket[s], limited[s] = cap, "fabric"
        else:
            per_socket[s], limited[s] = bw, "dram"
    total = round(sum(per_socket.values()), 3) if per_socket else mem.theoretical_bandwidth_gbs
    return replace(
        mem, bandwidth_per_socket_gbs=per_socket, theoretical_bandwidth_gbs=total,
        dram_bandwidth_per_socket_gbs=dram, fabric=limit, limited_by=limited, fabric_note=note,
    )  # fmt: skip
