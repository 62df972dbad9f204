"""Checks that compare the machine with the installed engine: ISA features llama.cpp was built
with, GPU offload support, and GPU PCIe links.

Engine facts arrive as plain values in CheckContext (`llama_cpp.llama_print_system_info()`,
`llama_cpp.llama_supports_gpu_offload()`, gathered by the CLI through `rigtui.engine`); on a
captured tree (`--root`) they describe this machine's engine, not that one, so those checks say
`unknown`.
"""

from __future__ import annotations

import re

from rigtui.analysis.checks_common import F_CPUINFO, F_OFFLOAD, F_SYSINFO, check
from rigtui.model.analysis import Check, CheckContext
from rigtui.model.topology import Gpu, Topology

# llama.cpp's system-info feature name -> the /proc/cpuinfo flag that provides it.
LLAMA_FEATURE_FLAGS = {
    "SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX_VNNI": "avx_vnni", "AVX2": "avx2",
    "F16C": "f16c", "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8", "NEON": "asimd", "ARM_FMA": "asimd", "FP16_VA": "asimdhp",
    "DOTPROD": "asimddp", "MATMUL_INT8": "i8mm", "SVE": "sve", "SME": "sme",
}  # fmt: skip
# The features whose absence in the build costs real speed on a CPU that has them.
_SPEED_FEATURES = (
    "AVX2",
    "FMA",
    "F16C",
    "AVX512",
    "AVX512_VNNI",
    "AVX512_BF16",
    "AVX_VNNI",
    "AMX_INT8",
    "DOTPROD",
    "MATMUL_INT8",
    "SVE",
)
_GPU_VENDOR_IDS = {0x10DE: "NVIDIA", 0x1002: "AMD"}
_REBUILD = 'CMAKE_ARGS="{args}" pip install --force-reinstall --no-cache-dir llama-cpp-python'


def parse_system_info(info: str) -> dict[str, int]:
    """`"CPU : AVX = 1 | AVX2 = 1 | ... | CUDA : ARCHS = 890 | ..."` -> {"AVX": 1, ...} for the
    CPU part (older builds have no "CPU :" prefix and list 0s; newer ones list only what is on)."""
    out: dict[str, int] = {}
    section = "CPU"  # older builds: no "NAME :" sections, every feature is the CPU's
    for token in info.split("|"):
        head, sep, rest = token.partition(":")
        if sep and "=" not in head:  # "CUDA : ARCHS = 890" starts the CUDA section
            section, token = head.strip().upper(), rest
        m = re.match(r"\s*([A-Z][A-Z0-9_]*)\s*=\s*(\d+)", token)
        if m and section == "CPU":
            out.setdefault(m.group(1), int(m.group(2)))
    return out


def _live_engine_unknown(
    cid: str, title: str, ctx: CheckContext, why: str, ev: list[tuple[str, object]]
) -> Check | None:
    if not ctx.live:
        return check(
            cid,
            title,
            "unknown",
            "captured tree (--root): the installed engine is this machine's, not that one's",
            ev,
            why,
            "run `rigtui check` on that machine",
        )
    return None


def engine_isa(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Engine built for this CPU", "engine_isa"
    why = (
        "llama.cpp's matmul kernels are chosen at build time: a build without AVX512/VNNI/"
        "DOTPROD on a CPU that has them leaves speed unused; the opposite crashes (SIGILL)."
    )
    ev: list[tuple[str, object]] = [(F_SYSINFO, ctx.engine_system_info)]
    unknown = _live_engine_unknown(cid, title, ctx, why, ev)
    if unknown:
        return unknown
    if not ctx.engine_system_info:
        return check(
            cid,
            title,
            "unknown",
            ctx.engine_reason or "engine system info not available",
            ev,
            why,
            "pip install llama-cpp-python (rigtui's engine)",
        )
    built = parse_system_info(ctx.engine_system_info)
    flags = set(top.cpu.flags)
    if not flags:
        return check(cid, title, "unknown", "CPU flags not readable", ev, why, "cat /proc/cpuinfo")
    relevant = {
        k: v
        for k, v in LLAMA_FEATURE_FLAGS.items()
        if k in built or LLAMA_FEATURE_FLAGS[k] in flags
    }
    cpu_has = {k for k, flag in relevant.items() if flag in flags}
    build_has = {k for k, v in built.items() if v and k in LLAMA_FEATURE_FLAGS}
    ev.append((F_CPUINFO + " flags", " ".join(sorted(relevant[k] for k in cpu_has)) or None))
    illegal = sorted(build_has - cpu_has)
    unused = [k for k in _SPEED_FEATURES if k in cpu_has and k not in build_has]
    if illegal:
        return check(
            cid,
            title,
            "fail",
            f"the engine uses {', '.join(illegal)}, which this CPU lacks (illegal instruction)",
            ev,
            why,
            _REBUILD.format(args="-DGGML_NATIVE=ON"),
        )
    if unused:
        return check(
            cid,
            title,
            "warn",
            f"the CPU has {', '.join(unused)} but the engine was built without "
            + ("it" if len(unused) == 1 else "them")
            + ": prompt processing runs slower than the CPU allows",
            ev,
            why,
            _REBUILD.format(args="-DGGML_NATIVE=ON"),
        )
    return check(
        cid,
        title,
        "pass",
        "engine features match the CPU: "
        + (", ".join(sorted(build_has & set(_SPEED_FEATURES))) or "baseline"),
        ev,
        why,
    )


def discrete_gpus(top: Topology) -> list[Gpu]:
    """NVIDIA/AMD display controllers (not a server's BMC VGA)."""
    return [
        g
        for g in top.gpus
        if g.vendor in ("NVIDIA", "AMD") or (g.vendor_id or 0) in _GPU_VENDOR_IDS
    ]


def gpu_offload(top: Topology, ctx: CheckContext) -> Check:
    title, cid = "Engine can use the GPUs", "gpu_offload"
    why = "A GPU next to a CPU-only build does nothing: every layer runs from system memory."
    gpus = discrete_gpus(top)
    ev: list[tuple[str, object]] = [
        (
            "PCI display controllers",
            ", ".join(f"{g.pci_address} {g.name or g.vendor}" for g in gpus) or "none",
        ),
        (F_OFFLOAD, ctx.engine_gpu_offload),
    ]
    if not gpus:
        return check(cid, title, "pass", "no NVIDIA/AMD GPU: CPU inference", ev, why)
    unknown = _live_engine_unknown(cid, title, ctx, why, ev)
    if unknown:
        return unknown
    if ctx.engine_gpu_offload is None:
        return check(
            cid,
            title,
            "unknown",
            ctx.engine_reason or "engine not importable",
            ev,
            why,
            "pip install llama-cpp-python (rigtui's engine)",
        )
    if not ctx.engine_gpu_offload:
        vendor = (
            "NVIDIA"
            if any((g.vendor or _GPU_VENDOR_IDS.get(g.vendor_id or 0)) == "NVIDIA" for g in gpus)
            else "AMD"
        )
        flag = "-DGGML_CUDA=on" if vendor == "NVIDIA" else "-DGGML_HIP=on"
        return check(
            cid,
            title,
            "warn",
            f"{len(gpus)} {vendor} GPU(s) present but the engine is a CPU-only build",
            ev,
            why,
            _REBUILD.format(args=flag),
        )
    return check(cid, title, "pass", f"engine supports GPU offload ({len(gpus)} GPU(s))", ev, why)


def gpu_pcie_link(top: Topology) -> Check:
    title, cid = "GPU PCIe link", "gpu_pcie_link"
    why = (
        "Loading weights, split layers and tensor-parallel traffic cross PCIe: a x4 link or a "
        "card in the wrong slot quarters that."
    )
    gpus = discrete_gpus(top)
    ev: list[tuple[str, object]] = [
        (
            f"/sys/bus/pci/devices/{g.pci_address}/current_link_width,max_link_width,"
            "current_link_speed,max_link_speed",
            f"x{g.link_width} of x{g.link_max_width}, {g.link_speed} of {g.link_max_speed}",
        )
        for g in gpus
    ]
    if not gpus:
        return check(cid, title, "pass", "no NVIDIA/AMD GPU", ev, why)
    narrow = [
        g for g in gpus if g.link_width and g.link_max_width and g.link_width < g.link_max_width
    ]
    slow = [g for g in gpus if g.pcie_gen and g.pcie_gen_max and g.pcie_gen < g.pcie_gen_max]
    missing = [g for g in gpus if g.link_width is None or g.link_max_width is None]
    if narrow:
        return check(
            cid,
            title,
            "warn",
            "; ".join(
                f"GPU {g.index} ({g.pci_address}) at x{g.link_width} of x{g.link_max_width}"
                for g in narrow
            ),
            ev,
            why,
            "move the card to a full x16 slot (board manual: slots "
            "sharing lanes with M.2/other slots drop to x8/x4); reseat it; check BIOS bifurcation",
        )
    if missing and len(missing) == len(gpus):
        return check(
            cid,
            title,
            "unknown",
            "link width not reported",
            ev,
            why,
            "sudo lspci -vv -s ADDRESS | grep LnkSta",
        )
    note = ""
    if slow:
        note = (
            "; "
            + ", ".join(f"GPU {g.index} at gen {g.pcie_gen} of {g.pcie_gen_max}" for g in slow)
            + " (idle GPUs lower the link speed: check under load)"
        )
    return check(
        cid, title, "pass", f"{len(gpus) - len(missing)} GPU link(s) at full width" + note, ev, why
    )


def llama_server_build(top: Topology, ctx: CheckContext) -> Check:
    """llama.cpp's own llama-server (the `llama-server` engine) vs this machine: a GPU with no
    GPU backend in the build, or a CPU with AVX-512 under a portable AVX2 build."""
    title, cid = "llama-server built for this machine", "llama_server_build"
    why = ("profiles with engine = \"llama-server\" (MoE -ot, RPC) run this binary: its backends "
           "and CPU kernels are fixed when it is built")  # fmt: skip
    sb = ctx.server_build
    ev: list[tuple[str, object]] = [("rigtui engines", dict(sb) if sb else None)]
    unknown = _live_engine_unknown(cid, title, ctx, why, ev)
    if unknown:
        return unknown
    if not sb or not sb.get("found") or sb.get("ok") is False:
        reason = (sb or {}).get("reason") or "not looked for"
        return check(cid, title, "unknown", f"no usable llama-server: {reason}", ev, why,
                     "`rigtui engines build` (or put your own build on PATH); only needed for "
                     'engine = "llama-server" profiles')  # fmt: skip
    backends = set(sb.get("backends") or ())
    flags = sb.get("build_flags") or {}
    gpus = {_GPU_VENDOR_IDS.get(g.vendor_id or 0, "") for g in top.gpus}
    if "NVIDIA" in gpus and "CUDA" not in backends:
        return check(cid, title, "warn", f"this machine has an NVIDIA GPU, but {sb.get('path')} has "
                     f"no CUDA backend ({', '.join(sorted(backends)) or 'CPU only'}): gpu_layers and "
                     "-ot to CUDA0 cannot work", ev, why, "rigtui engines build --cuda --native")  # fmt: skip
    cpu_flags = set(top.cpu.flags)
    if flags and flags.get("GGML_NATIVE") == "OFF" and "avx512f" in cpu_flags:
        return check(cid, title, "warn", "the CPU has AVX-512, but rigtui's llama-server is the "
                     "portable AVX2 build: prompt processing runs slower than the CPU allows", ev,
                     why, "rigtui engines build --native")  # fmt: skip
    what = ", ".join(sorted(backends)) or "CPU"
    cpu = {"ON": "built for this CPU", "OFF": "portable AVX2"}.get(str(flags.get("GGML_NATIVE")), "")
    return check(cid, title, "pass", f"{sb.get('path')}: {what}" + (f", {cpu}" if cpu else ""), ev, why)
