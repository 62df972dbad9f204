"""Platform table: CPU model name -> memory channels per socket and fastest supported memory.

Used when no DIMM data can be read (no root for SMBIOS, a VM) and by `rigtui check` to compare
the populated channels with what the platform has. Figures are the vendors' published maxima
(1 DIMM per channel); a machine may run slower. `lookup()` labels nothing: callers must say
"platform-table (max supported, not measured)".

LPDDR platforms (Grace, GB10, Strix Halo) count their bus in 64-bit channel equivalents so that
bandwidth = channels x 8 B x MT/s holds for them as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    vendor: str
    channels_per_socket: int
    max_mts: int
    memory_type: str
    max_sockets: int
    mrdimm_mts: int | None = None  # MRDIMM speed where supported (Granite Rapids)
    note: str | None = None

    @property
    def bandwidth_per_socket_gbs(self) -> float:
        """Theoretical peak per socket, GB/s (1e9): channels x 8 B x MT/s."""
        return self.channels_per_socket * 8 * self.max_mts / 1000


P = Platform
# (regex on the model name, Platform). First match wins: specific before general.
_TABLE: tuple[tuple[str, Platform], ...] = (
    # AMD EPYC: the last digit of the 4-digit model is the generation. The middle characters may
    # be letters: F parts (7F32, 72F3) and cloud SKUs (7R13, 7B12, 9R14, 9B14, 9V84, 9R45), which
    # are exactly the machines (VMs) where no DIMM data is readable.
    (r"EPYC\s+9[0-9A-Z]{2}5", P("EPYC 9005 (Turin)", "AMD", 12, 6000, "DDR5", 2,
                                 note="DDR5-6400 on some SKUs and qualified boards")),
    (r"EPYC\s+9[0-9A-Z]{2}4", P("EPYC 9004 (Genoa/Bergamo)", "AMD", 12, 4800, "DDR5", 2)),
    (r"EPYC\s+8\d\d4", P("EPYC 8004 (Siena)", "AMD", 6, 4800, "DDR5", 1)),
    (r"EPYC\s+4\d\d4", P("EPYC 4004 (AM5)", "AMD", 2, 5200, "DDR5", 1)),
    (r"EPYC\s+4\d\d5", P("EPYC 4005 (AM5)", "AMD", 2, 5600, "DDR5", 1)),
    (r"EPYC\s+7[0-9A-Z]{2}3", P("EPYC 7003 (Milan)", "AMD", 8, 3200, "DDR4", 2)),
    (r"EPYC\s+7[0-9A-Z]{2}2", P("EPYC 7002 (Rome)", "AMD", 8, 3200, "DDR4", 2)),
    (r"EPYC\s+7[0-9A-Z]{2}1", P("EPYC 7001 (Naples)", "AMD", 8, 2666, "DDR4", 2)),
    (r"EPYC\s+3\d\d1", P("EPYC 3001 (Snowy Owl)", "AMD", 4, 2666, "DDR4", 1)),
    # Threadripper: PRO (WX) parts have 8 channels, the HEDT parts 4.
    (r"Threadripper\s+PRO\s+99\d\dWX", P("Threadripper PRO 9000WX", "AMD", 8, 6400, "DDR5", 1)),
    (r"Threadripper\s+PRO\s+79\d\dWX", P("Threadripper PRO 7000WX", "AMD", 8, 5200, "DDR5", 1)),
    (r"Threadripper\s+PRO\s+59\d\dWX", P("Threadripper PRO 5000WX", "AMD", 8, 3200, "DDR4", 1)),
    (r"Threadripper\s+PRO\s+39\d\dWX", P("Threadripper PRO 3000WX", "AMD", 8, 3200, "DDR4", 1)),
    (r"Threadripper\s+99\d\dX", P("Threadripper 9000", "AMD", 4, 6400, "DDR5", 1)),
    (r"Threadripper\s+79\d\dX", P("Threadripper 7000", "AMD", 4, 5200, "DDR5", 1)),
    (r"Threadripper\s+39\d\dX", P("Threadripper 3000", "AMD", 4, 3200, "DDR4", 1)),
    (r"Threadripper\s+29\d\dW?X", P("Threadripper 2000", "AMD", 4, 2933, "DDR4", 1)),
    (r"Threadripper\s+19\d\dX", P("Threadripper 1000", "AMD", 4, 2666, "DDR4", 1)),
    (r"Ryzen\s+AI\s+Max", P("Ryzen AI Max (Strix Halo)", "AMD", 4, 8000, "LPDDR5X", 1,
                             note="256-bit bus counted as 4 x 64-bit")),
    (r"Ryzen\s+\d\s+(9\d\d\d|8\d\d\d|7\d\d\d)", P("Ryzen 7000-9000 (AM5)", "AMD", 2, 5600, "DDR5", 1)),
    (r"Ryzen\s+\d\s+(5\d\d\d|3\d\d\d)", P("Ryzen 3000/5000 (AM4)", "AMD", 2, 3200, "DDR4", 1)),
    (r"Ryzen\s+\d\s+(2\d\d\d|1\d\d\d)", P("Ryzen 1000/2000 (AM4)", "AMD", 2, 2933, "DDR4", 1)),
    (r"Opteron.*\b6[2-3]\d\d\b", P("Opteron 6200/6300 (G34)", "AMD", 4, 1866, "DDR3", 4)),
    (r"Opteron.*\b8\d\d\b", P("Opteron 800 (Socket 940)", "AMD", 2, 400, "DDR", 8)),
    # Intel Xeon 6 (Granite Rapids P-cores, Sierra Forest E-cores): 69xx = 12 channels.
    (r"Xeon.*\b69\d\dP", P("Xeon 6900P (Granite Rapids-AP)", "Intel", 12, 6400, "DDR5", 2,
                            mrdimm_mts=8800)),
    (r"Xeon.*\b6[5-7]\d\dP", P("Xeon 6700P/6500P (Granite Rapids-SP)", "Intel", 8, 6400, "DDR5",
                                8, mrdimm_mts=8000)),
    (r"Xeon.*\b63\d\dP", P("Xeon 6300P (entry, LGA1700)", "Intel", 2, 4800, "DDR5", 1)),
    (r"Xeon.*\b69\d\dE", P("Xeon 6900E (Sierra Forest-AP)", "Intel", 12, 6400, "DDR5", 2)),
    (r"Xeon.*\b67\d\dE", P("Xeon 6700E (Sierra Forest-SP)", "Intel", 8, 6400, "DDR5", 2)),
    # Xeon Scalable gen 1-5: "Platinum 8480+" - the second digit is the generation.
    (r"Xeon.*\bMax\s+94\d\d", P("Xeon Max 9400 (Sapphire Rapids HBM)", "Intel", 8, 4800, "DDR5", 2,
                                 note="plus 64 GB HBM2e per socket")),
    (r"Xeon.*(Platinum|Gold|Silver|Bronze)\s+\d5\d\d", P("Xeon Scalable gen 5 (Emerald Rapids)",
                                                         "Intel", 8, 5600, "DDR5", 2)),
    (r"Xeon.*(Platinum|Gold|Silver|Bronze)\s+\d4\d\d", P("Xeon Scalable gen 4 (Sapphire Rapids)",
                                                         "Intel", 8, 4800, "DDR5", 8)),
    (r"Xeon.*(Platinum|Gold)\s+83\d\dH", P("Xeon Scalable gen 3 (Cooper Lake)", "Intel", 6, 3200,
                                           "DDR4", 8)),
    (r"Xeon.*(Platinum|Gold|Silver|Bronze)\s+\d3\d\d", P("Xeon Scalable gen 3 (Ice Lake-SP)",
                                                         "Intel", 8, 3200, "DDR4", 2)),
    (r"Xeon.*Platinum\s+92\d\d", P("Xeon Scalable gen 2 (Cascade Lake-AP)", "Intel", 12, 2933,
                                   "DDR4", 2)),
    (r"Xeon.*(Platinum|Gold|Silver|Bronze)\s+\d2\d\d", P("Xeon Scalable gen 2 (Cascade Lake)",
                                                         "Intel", 6, 2933, "DDR4", 8)),
    (r"Xeon.*(Platinum|Gold|Silver|Bronze)\s+\d1\d\d", P("Xeon Scalable gen 1 (Skylake-SP)",
                                                         "Intel", 6, 2666, "DDR4", 8)),
    # Xeon W workstations.
    (r"Xeon.*\bw[3579]-35\d\d", P("Xeon W-3500 (Sapphire Rapids refresh)", "Intel", 8, 4800, "DDR5", 1)),
    (r"Xeon.*\bw[3579]-34\d\d", P("Xeon W-3400 (Sapphire Rapids)", "Intel", 8, 4800, "DDR5", 1)),
    (r"Xeon.*\bw[3579]-2[45]\d\d", P("Xeon W-2400/2500", "Intel", 4, 4800, "DDR5", 1)),
    (r"Xeon.*\bW-33\d\d", P("Xeon W-3300 (Ice Lake)", "Intel", 8, 3200, "DDR4", 1)),
    (r"Xeon.*\bW-3[12]\d\d", P("Xeon W-3100/3200", "Intel", 6, 2933, "DDR4", 1)),
    (r"Xeon.*\bW-2[12]\d\d", P("Xeon W-2100/2200", "Intel", 4, 2933, "DDR4", 1)),
    (r"Xeon.*E5-\d\d\d\d\w?\s+v[34]", P("Xeon E5 v3/v4", "Intel", 4, 2400, "DDR4", 2)),
    # Sandy Bridge-EN/Ivy Bridge-EN (E5-24xx) have 3 channels; v1 runs DDR3-1600, v2 DDR3-1866.
    (r"Xeon.*E5-24\d\d\w?\s+v2", P("Xeon E5-2400 v2", "Intel", 3, 1600, "DDR3", 2)),
    (r"Xeon.*E5-24\d\d", P("Xeon E5-2400", "Intel", 3, 1600, "DDR3", 2)),
    (r"Xeon.*E5-\d\d\d\d\w?\s+v2", P("Xeon E5 v2 (Ivy Bridge-EP)", "Intel", 4, 1866, "DDR3", 4)),
    (r"Xeon.*E5-\d\d\d\d", P("Xeon E5 (Sandy Bridge-EP)", "Intel", 4, 1600, "DDR3", 4)),
    (r"Xeon.*\bX75\d\d", P("Xeon 7500 (Nehalem-EX)", "Intel", 4, 1066, "DDR3", 8)),
    # Desktop Core: two channels.
    (r"Core.*Ultra\s+\d\s+2\d\d", P("Core Ultra 200 (Arrow Lake)", "Intel", 2, 6400, "DDR5", 1)),
    (r"Core.*i[3579]-1[2-4]\d{2,3}", P("Core 12th-14th gen", "Intel", 2, 5600, "DDR5", 1,
                                       note="DDR4-3200 boards exist")),
    (r"Core.*i[3579]-(1[01]\d{2,3}|[6-9]\d{3})", P("Core 6th-11th gen", "Intel", 2, 3200, "DDR4", 1)),
    (r"Core.*i[3579]", P("Core (older)", "Intel", 2, 1600, "DDR3", 1)),
    # ARM servers and desktops.
    (r"Altra\s+Max|Altra", P("Ampere Altra / Altra Max", "Ampere", 8, 3200, "DDR4", 2)),
    (r"AmpereOne|Ampere-1", P("AmpereOne", "Ampere", 8, 5200, "DDR5", 1)),
    (r"Grace|Neoverse-V2", P("NVIDIA Grace", "NVIDIA", 8, 8533, "LPDDR5X", 2,
                             note="512-bit LPDDR5X counted as 8 x 64-bit")),
    (r"Cortex-X925|GB10", P("NVIDIA GB10 (DGX Spark)", "NVIDIA", 4, 8533, "LPDDR5X", 1,
                            note="256-bit LPDDR5X counted as 4 x 64-bit")),
    (r"Kunpeng-920", P("HiSilicon Kunpeng 920", "HiSilicon", 8, 2933, "DDR4", 4)),
)  # fmt: skip

_compiled: list[tuple[re.Pattern[str], Platform]] = []  # compiled on first use: keeps startup fast


def lookup(cpu_model_name: str | None) -> Platform | None:
    """The platform of a CPU brand string ("AMD EPYC 9654 96-Core Processor"), or None."""
    if not cpu_model_name:
        return None
    if not _compiled:
        _compiled.extend((re.compile(rx, re.IGNORECASE), p) for rx, p in _TABLE)
    for rx, plat in _compiled:
        if rx.search(cpu_model_name):
            return plat
    return None


def all_platforms() -> tuple[Platform, ...]:
    return tuple(p for _, p in _TABLE)
