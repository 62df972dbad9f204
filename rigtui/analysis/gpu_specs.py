"""GPU memory sizes and bandwidths, the figure a GPU's token generation is bound by.

The vendors' published figures (memory bus width x memory clock: an RTX 4090's 384-bit GDDR6X
at 21 Gbit/s is 1008 GB/s). `lookup("NVIDIA GeForce RTX 4090")` matches the longest table name
whose words are all in a probed or typed name, so "NVIDIA A100-PCIE-40GB" is the A100 40GB and
"RTX 3090 Ti" is not taken for the 3090. `vram_bandwidth(gpu)` prefers what the driver says
(NVML's bus width and top memory clock) and falls back on the table.
"""

from __future__ import annotations

from typing import Any

# name -> (VRAM GB, memory bandwidth GB/s)
GPUS: dict[str, tuple[float, float]] = {
    "RTX 5090": (32, 1792), "RTX 4090": (24, 1008), "RTX 4080": (16, 717),
    "RTX 4070 Ti": (12, 504), "RTX 4060 Ti": (16, 288), "RTX 3090": (24, 936),
    "RTX 3090 Ti": (24, 1008), "RTX 3080": (10, 760), "RTX 3060": (12, 360),
    "RTX A6000": (48, 768), "RTX 6000 Ada": (48, 960), "RTX PRO 6000": (96, 1792),
    "Tesla P40": (24, 347), "Tesla P100": (16, 732), "Tesla V100": (32, 900),
    "A100 40GB": (40, 1555), "A100": (80, 2039), "H100": (80, 3350), "H200": (141, 4800),
    "L40S": (48, 864), "RX 7900 XTX": (24, 960), "MI50": (32, 1024), "MI100": (32, 1229),
    "MI210": (64, 1638), "MI300X": (192, 5300),
}  # fmt: skip

_ALIASES = {"P40": "Tesla P40", "P100": "Tesla P100", "V100": "Tesla V100"}


def lookup(name: str | None) -> tuple[str, float, float] | None:
    """(table name, VRAM GB, GB/s) for a GPU name, or None when it is not in the table."""
    if not name:
        return None
    words = set(name.replace("-", " ").lower().split())
    best = None
    for key in list(GPUS) + list(_ALIASES):  # every word of the key in the name, longest wins
        if set(key.lower().split()) <= words and (best is None or len(key) > len(best)):
            best = key
    if best is None:
        return None
    key = _ALIASES.get(best, best)
    return (key, *GPUS[key])


def vram_bandwidth(gpu: Any) -> tuple[float, str, str] | None:
    """(GB/s, basis, where from) of a probed Gpu's memory: NVML's bus width x top memory clock x
    2 (double data rate: nvidia-smi's "Max Clocks Memory" is half the transfer rate; a 4090's
    384 bits at 10501 MHz is 1008 GB/s) when the driver told, else rigtui's table; None when
    neither knows the card."""
    bits, mhz = getattr(gpu, "memory_bus_width", None), getattr(gpu, "memory_max_clock_mhz", None)
    if bits and mhz:
        gbs = bits / 8 * mhz * 2 / 1000
        return gbs, "read", f"NVML: {bits}-bit bus x {mhz} MHz x 2 = {gbs:.0f} GB/s"
    spec = lookup(getattr(gpu, "name", None))
    if spec is None:
        return None
    return spec[2], "table", f"{spec[0]} {spec[2]:g} GB/s (table)"


# PCIe transfer rate per lane (GT/s) and line-code efficiency, by generation
_PCIE = {1: (2.5, 0.8), 2: (5.0, 0.8), 3: (8.0, 128 / 130), 4: (16.0, 128 / 130),
         5: (32.0, 128 / 130), 6: (64.0, 242 / 256)}  # fmt: skip


def pcie_bandwidth(gpu: Any) -> tuple[float, str] | None:
    """(GB/s one way, in words) of a probed Gpu's PCIe link: the card's top generation (an idle
    NVIDIA card trains its link down to Gen 1 and reports that as current) at its current
    width (a riser that trained x4 stays x4); None when neither is known."""
    gen = getattr(gpu, "pcie_gen_max", None) or getattr(gpu, "pcie_gen", None)
    width = getattr(gpu, "link_width", None) or getattr(gpu, "link_max_width", None)
    if gen not in _PCIE or not width:
        return None
    gts, eff = _PCIE[gen]
    gbs = gts * width * eff / 8
    return gbs, f"PCIe Gen{gen} x{width} {gbs:.1f} GB/s"
