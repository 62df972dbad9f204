"""`rigtui plan --params 405e9 --bits 6 ...`: size a model on a rig before either exists.

No GGUF: the weights are params x bits / 8 and a token reads the active ones once (a dense
model: all of them; a MoE: `--active-params`). The rig is this machine (the figure `plan MODEL.gguf`
reads with: its `bench mem` run when cached, else the probe's), a platform from rigtui's table (`--platform "EPYC 9004"
--sockets 2`, optionally `--ccds N` for the AMD fabric cap), or raw channels (`--channels 24
--mts 4800`); GPUs come from a table of VRAM and memory bandwidth (`--gpu "RTX 4090 x2"`).

Ceilings, each labelled estimated with its formula:
- CPU only: active bytes / memory bandwidth;
- full offload (the weights fit the GPUs' VRAM): llama.cpp splits layers across GPUs and a token
  passes through them in turn, so the time is the sum over GPUs of (their share / their
  bandwidth), not the total over the summed bandwidth;
- hybrid: the GPUs filled first, the rest read from RAM each token (active bytes split in the
  proportion the weights are: a uniform-MoE assumption, said);
- streamed from a disk: a model that fits neither reads the rest from the disk every token
  (the 400B thread's arithmetic: 300 GB from a 10 GB/s SSD is 30 s per token).
The KV cache is not counted (it needs the model's layers and heads: give a GGUF for it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rigtui.analysis.gpu_specs import GPUS, lookup
from rigtui.analysis.plan_sizes import CUDA_RESERVE
from rigtui.model.analysis import Figure, MemBenchResult
from rigtui.model.topology import Topology
from rigtui.probes import platforms
from rigtui.probes.fabric import BYTES_PER_CLOCK, generation_of_platform

GB = 1e9


_QUANT_BITS = {"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.5625, "Q5_K_M": 5.69,
               "Q5_0": 5.5, "Q4_K_M": 4.85, "Q4_0": 4.5, "IQ4_XS": 4.25, "Q3_K_M": 3.91,
               "Q2_K": 2.63, "IQ2_XXS": 2.06, "IQ1_S": 1.56}  # fmt: skip


class WhatIfError(ValueError):
    """Bad what-if input: one line for the user."""


def count_text(n: float) -> str:
    """400e9 -> '400B', 37e9 -> '37B', 1.5e12 -> '1.5T', 8e6 -> '8M'."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.4g}{unit}"
    return f"{n:g}"


def parse_count(text: str) -> float:
    """'405e9', '405B', '37b', '1.5T', '8000000000' -> a number."""
    t = text.strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMbBtT]?)", t)
    if not m:
        raise WhatIfError(f"{text!r} is not a count (e.g. 405e9 or 405B)")
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
    value = float(m.group(1)) * scale
    if value <= 0:
        raise WhatIfError(f"{text!r} must be above zero")
    return value


def parse_bits(text: str) -> float:
    """'6', '4.5' or a llama.cpp quant name ('Q4_K_M': its average bits per weight)."""
    name = text.strip().upper()
    if name in _QUANT_BITS:
        return float(_QUANT_BITS[name])
    try:
        bits = float(name)
    except ValueError:
        raise WhatIfError(f"--bits {text!r}: give bits per weight (6, 4.5) or a quant type "
                          f"({', '.join(_QUANT_BITS)})") from None  # fmt: skip
    if not 1 <= bits <= 32:
        raise WhatIfError(f"--bits {text!r}: between 1 and 32 bits per weight")
    return bits


def parse_gpus(specs: Sequence[str]) -> list[tuple[str, float, float]]:
    """['RTX 4090 x2', 'RTX 3090'] -> [(name, VRAM GB, GB/s), ...], one entry per card."""
    out: list[tuple[str, float, float]] = []
    by_lower = {k.lower(): k for k in GPUS}
    for spec in specs:
        # "RTX 4090 x2", "H100x8": a count after a space or a digit ("RTX" keeps its X)
        m = re.fullmatch(r"\s*(.*?[\d\s])\s*[xX×]\s*(\d+)\s*", spec)
        name, count = (m.group(1).strip(), int(m.group(2))) if m else (spec.strip(), 1)
        key = by_lower.get(name.strip().lower())
        if key is None and (hit := lookup(name)) is not None:  # "NVIDIA GeForce RTX 4090"
            key = hit[0]
        if key is None:  # "4090" for "RTX 4090": a unique substring will do
            want = name.strip().lower()
            hits = [k for k in GPUS if want in k.lower()]
            ends = [k for k in hits if k.lower().endswith(want)]  # "3090": not the 3090 Ti
            key = hits[0] if len(hits) == 1 else ends[0] if len(ends) == 1 else None
        if key is None or count < 1:
            raise WhatIfError(f"--gpu {spec!r}: not in rigtui's GPU table ({', '.join(GPUS)}); "
                              'write it as "RTX 4090" or "RTX 4090 x2"')  # fmt: skip
        out += [(key, *GPUS[key])] * count
    return out


@dataclass(frozen=True)
class WhatIfPlan:
    """The what-if answer; every figure carries its basis and formula."""

    params: float
    active_params: float
    bits: float
    rig: str  # what it was sized against, in words
    weights_bytes: Figure
    bytes_per_token: Figure
    ram_bytes: Figure
    bandwidth_gbs: Figure
    gpus: tuple[tuple[str, float, float], ...]
    vram_bytes: Figure
    fits: str  # "vram" | "ram" | "ram+vram" | "disk" | "unknown"
    cpu_only_tok_s: Figure
    full_offload_tok_s: Figure
    hybrid_tok_s: Figure
    disk_s_per_token: Figure
    notes: tuple[str, ...] = field(default_factory=tuple)


def _fclk_for(platform_name: str) -> int | None:
    """The default FCLK of the platform's generation (probes/fabric's table), for --ccds."""
    gen = generation_of_platform(platform_name)
    return gen.fclk_mhz if gen is not None else None


def rig_bandwidth(*, topology: Topology | None = None, membench: MemBenchResult | None = None,
                  platform: str | None = None, sockets: int = 1, ccds: int | None = None,
                  channels: int | None = None, mts: int | None = None) -> tuple[Figure, str, list[str]]:  # fmt: skip
    """(memory bandwidth, the rig in words, notes) for raw channels, a platform or this machine."""
    notes: list[str] = []
    if channels is not None or mts is not None:
        if not channels or not mts or channels < 1 or mts < 100:
            raise WhatIfError("--channels and --mts go together (e.g. --channels 24 --mts 4800)")
        gbs = channels * 8 * mts / 1000
        return (Figure(gbs, "estimated", f"theoretical: {channels} channels x 8 B x {mts} MT/s",
                       "GB/s"), f"{channels} x DDR-{mts} channels", notes)  # fmt: skip
    if platform is not None:
        plat = platforms.lookup(platform) or next(
            (p for p in platforms.all_platforms() if platform.lower() in p.name.lower()), None)
        if plat is None:
            raise WhatIfError(f"--platform {platform!r} is not in rigtui's platform table; give "
                              "--channels N --mts M instead")  # fmt: skip
        if sockets < 1 or sockets > plat.max_sockets:
            raise WhatIfError(f"--sockets {sockets}: {plat.name} takes 1 to {plat.max_sockets}")
        per = plat.bandwidth_per_socket_gbs
        detail = (f"theoretical: {sockets} x {plat.channels_per_socket} channels x 8 B x "
                  f"{plat.max_mts} MT/s ({plat.name}, the platform's maximum)")  # fmt: skip
        rig = f"{sockets} x {plat.name}"
        if ccds is not None:
            fclk = _fclk_for(plat.name) if plat.vendor == "AMD" else None
            if fclk is None:
                raise WhatIfError(f"--ccds: {plat.name} has no CCD fabric rigtui models (AMD Zen 2-5)")
            cap = ccds * BYTES_PER_CLOCK * fclk / 1000
            if cap < per:
                detail += (f", capped by the fabric: {ccds} CCDs x {BYTES_PER_CLOCK} B x "
                           f"{fclk / 1000:g} GHz FCLK = {cap:g} GB/s per socket (estimated)")  # fmt: skip
                notes.append(f"the fabric, not the channels, limits each socket: {cap:g} of "
                             f"{per:g} GB/s; a part with more CCDs reads the channels' figure")  # fmt: skip
                per = cap
            rig += f", {ccds} CCDs"
        if sockets > 1:
            notes.append(f"{sockets} sockets: the sum assumes the model interleaved over every "
                         "node with each socket reading its local half; cross-socket reads run "
                         "at roughly half (measure with `rigtui bench mem` on the rig)")  # fmt: skip
        return Figure(round(sockets * per, 3), "estimated", detail, "GB/s"), rig, notes
    if topology is None:
        raise WhatIfError("no rig: give --platform, --channels/--mts, or run on the machine")
    from rigtui.analysis.plan import cpu_bandwidth  # what `plan MODEL.gguf` reads with

    name = topology.cpu.model_name or "this machine"
    rig = f"this machine ({name}, {len(topology.sockets)} socket(s))"
    return cpu_bandwidth(topology, membench, None), rig, notes


def what_if(*, params: float, bits: float, active_params: float | None = None,
            bandwidth: Figure, rig: str, ram_bytes: float | None = None, ram_basis: str = "read",
            gpus: Sequence[tuple[str, float, float]] = (), disk_gbs: float = 10.0,
            notes: Sequence[str] = ()) -> WhatIfPlan:  # fmt: skip
    active = params if active_params is None else active_params
    if active > params:
        raise WhatIfError("--active-params cannot exceed --params")
    if disk_gbs <= 0:
        raise WhatIfError("--disk-gbs must be above zero")
    weights = params * bits / 8
    per_token = active * bits / 8
    frac = active / params
    out_notes = list(notes)
    bpt_detail = f"{count_text(active)} active params x {bits:g} bits / 8 (the KV cache not counted)"
    if active < params:
        out_notes.append(f"MoE: {frac:.1%} of the weights are read per token; wherever they sit, "
                         "the same share of each part is assumed active (a GGUF plan knows "
                         "shared and routed experts apart)")  # fmt: skip
    usable = [(n, max(0.0, v * GB - CUDA_RESERVE), bw) for n, v, bw in gpus]
    vram = sum(u for _, u, _ in usable)
    bw = bandwidth.value

    def tok_s(seconds: float | None, detail: str) -> Figure:
        if seconds is None or seconds <= 0:
            return Figure(None, "estimated", detail, "tok/s")
        return Figure(1 / seconds, "estimated", detail, "tok/s")

    cpu = tok_s(per_token / (bw * GB) if bw else None,
                f"CPU only: {per_token / GB:.1f} GB per token / {bw or '?'} GB/s")  # fmt: skip
    full = Figure(None, "estimated", "no GPU given (--gpu)", "tok/s")
    hybrid = Figure(None, "estimated", "no GPU given (--gpu)", "tok/s")
    on_gpu = 0.0
    if usable:
        if weights <= vram:  # layers split in proportion to each card's usable VRAM, in turn
            t = sum(per_token * (u / vram) / (g_bw * GB) for _, u, g_bw in usable)
            full = tok_s(t, f"full offload over {len(usable)} GPU(s), one after another per "
                            f"token: sum of (share / bandwidth) = {t * 1000:.1f} ms")  # fmt: skip
            on_gpu = weights
            hybrid = Figure(None, "estimated", "not needed: every weight fits the GPUs (full "
                            "offload)", "tok/s")  # fmt: skip
        else:
            full = Figure(None, "estimated", f"does not fit: {weights / GB:.0f} GB of weights "
                          f"in {vram / GB:.0f} GB of usable VRAM", "tok/s")  # fmt: skip
            on_gpu = vram
            t_gpu = sum(per_token * (u / weights) / (g_bw * GB) for _, u, g_bw in usable)
            rest = per_token * (1 - vram / weights)
            t = t_gpu + (rest / (bw * GB) if bw else 0)
            hybrid = tok_s(t if bw else None,
                           f"hybrid: {vram / GB:.0f} GB on the GPUs ({t_gpu * 1000:.1f} ms), "
                           f"{rest / GB:.1f} GB per token from RAM at {bw or '?'} GB/s")  # fmt: skip
    resident = on_gpu + (ram_bytes or 0)
    if usable and weights <= vram:
        fits = "vram"
    elif ram_bytes is None:
        fits = "unknown"
    elif weights <= ram_bytes:
        fits = "ram"
    elif weights <= resident:
        fits = "ram+vram"
    else:
        fits = "disk"
    missing = max(0.0, weights - resident) if ram_bytes is not None else weights
    all_from_disk = (f"every weight read from a {disk_gbs:g} GB/s disk per token: "
                     f"{per_token / GB:.1f} GB / {disk_gbs:g} GB/s")  # fmt: skip
    if ram_bytes is None:
        disk = Figure(round(per_token / (disk_gbs * GB), 3), "estimated", all_from_disk, "s/token")
    elif missing <= 0:
        disk = Figure(round(per_token / (disk_gbs * GB), 3), "estimated",
                      f"it fits, so nothing streams; were {all_from_disk}", "s/token")  # fmt: skip
    else:
        streamed = per_token * (missing / weights)
        disk = Figure(round(streamed / (disk_gbs * GB), 3), "estimated",
                      f"{streamed / GB:.1f} GB per token not in RAM or VRAM, read from a "
                      f"{disk_gbs:g} GB/s disk", "s/token")  # fmt: skip
    if fits == "disk":
        out_notes.append(f"it does not fit: {missing / GB:.0f} GB would stream from the disk "
                         f"every token ({disk.value:g} s/token); add memory or quantize harder")  # fmt: skip
    ram_fig = Figure(ram_bytes, ram_basis if ram_bytes is not None else "estimated",
                     ("system memory (/proc/meminfo)" if ram_basis == "read" else "given (--ram-gb)")
                     if ram_bytes is not None else
                     "not given: --ram-gb N (a platform's size is the buyer's choice)", "B")  # fmt: skip
    return WhatIfPlan(
        params=params, active_params=active, bits=bits, rig=rig,
        weights_bytes=Figure(weights, "estimated",
                             f"{count_text(params)} params x {bits:g} bits / 8", "B"),
        bytes_per_token=Figure(per_token, "estimated", bpt_detail, "B"),
        ram_bytes=ram_fig, bandwidth_gbs=bandwidth, gpus=tuple(gpus),
        vram_bytes=Figure(vram, "estimated", f"VRAM minus {CUDA_RESERVE >> 20} MiB per GPU (CUDA context, as plan reserves)", "B"),
        fits=fits, cpu_only_tok_s=cpu, full_offload_tok_s=full, hybrid_tok_s=hybrid,
        disk_s_per_token=disk, notes=tuple(out_notes),
    )  # fmt: skip
