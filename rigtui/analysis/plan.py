"""`rigtui plan MODEL.gguf`: what a model needs, where it fits, and its speed ceilings.

Token generation is memory bound: every generated token reads the active weights once plus the
KV cache so far, so tok/s <= bandwidth / bytes_per_token (the roofline). Prompt processing is
compute bound: tok/s <= FLOPS / (2 x active parameters). Figures carry their basis:
- read: taken or summed exactly from the GGUF header / the probe (SMBIOS, sysfs);
- measured: timed on this machine (`rigtui bench mem`, cached per hardware fingerprint);
- estimated: a formula, spelled out in `detail` (compute buffers, FLOPS, the ceilings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rigtui.analysis.gguf_facts import read_gguf_facts
from rigtui.model.analysis import Figure, GgufFacts, GpuFit, MemBenchResult, NodeFit, Plan
from rigtui.model.topology import Topology

GB = 1e9
GiB = 1 << 30
MiB = 1 << 20
DEFAULT_CTX = 4096  # llama.cpp's default -c
CUDA_RESERVE = 512 * MiB  # CUDA context + cuBLAS workspace per GPU (estimate)

# ggml type -> (elements per block, bytes per block), for KV cache types llama.cpp accepts.
KV_TYPE_SIZES = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "iq4_nl": (32, 18),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
}


class PlanError(ValueError):
    """Bad plan input (unknown KV type, ctx <= 0): the message says what to pass instead."""


def kv_row_bytes(kv_type: str, n: int) -> int:
    """Bytes of `n` elements of `kv_type` (ggml_row_size); n must be a multiple of the block."""
    try:
        block, size = KV_TYPE_SIZES[kv_type.lower()]
    except KeyError:
        raise PlanError(
            f"KV cache type {kv_type!r}: use one of {', '.join(KV_TYPE_SIZES)}"
        ) from None
    if n % block:
        raise PlanError(
            f"KV cache type {kv_type}: a head of {n} elements is not a multiple of "
            f"its {block}-element block (llama.cpp refuses it too); use f16 or q8_0"
        )
    return n // block * size


def kv_bytes_per_layer(
    facts: GgufFacts, n_ctx: int, kv_k: str = "f16", kv_v: str = "f16"
) -> tuple[int, ...]:
    """KV cache bytes of each layer for `n_ctx` cells: n_head_kv x (head_dim_k x size_k +
    head_dim_v x size_v) x n_ctx (llama.cpp's n_embd_k_gqa / n_embd_v_gqa rows)."""
    if not facts.n_head_kv_per_layer or facts.head_dim_k is None or facts.head_dim_v is None:
        return ()
    return tuple(
        n_ctx
        * (kv_row_bytes(kv_k, h * facts.head_dim_k) + kv_row_bytes(kv_v, h * facts.head_dim_v))
        for h in facts.n_head_kv_per_layer
    )


def active_weight_bytes(facts: GgufFacts) -> int:
    """Weights read per token: all tensors, minus the embedding table (one row is read) unless it
    doubles as the output matrix, minus the routed experts not selected (used/total of them)."""
    active = facts.weights_bytes
    if not facts.output_tied:
        active -= facts.token_embd_bytes
    if facts.n_experts and facts.n_experts_used and facts.expert_bytes:
        active -= facts.expert_bytes * (facts.n_experts - facts.n_experts_used) // facts.n_experts
    return active


def bytes_per_token(model_path: str, ctx: int = DEFAULT_CTX, kv_type: str = "f16") -> float:
    """Bytes read per generated token at a context of `ctx` (active weights + full KV cache):
    the figure the UI/telemetry divide measured bandwidth by. Raises GgufError/PlanError."""
    facts = read_gguf_facts(model_path)
    return float(active_weight_bytes(facts) + sum(kv_bytes_per_layer(facts, ctx, kv_type, kv_type)))


def compute_buffer_estimate(
    facts: GgufFacts, n_ctx: int, n_ubatch: int = 512, flash_attn: bool = False
) -> tuple[int, str]:
    """(bytes, formula) of llama.cpp's compute buffer: logits + a few activation rows per batch
    token + the attention score matrix when flash attention is off."""
    e, ff, v, h = facts.n_embd or 0, facts.n_ff or 0, facts.n_vocab or 0, facts.n_head or 0
    act = n_ubatch * (v + 4 * e + 2 * ff) * 4
    attn = 0 if flash_attn else n_ubatch * n_ctx * h * 4
    formula = f"{n_ubatch} x (n_vocab {v} + 4 x n_embd + 2 x n_ff) x 4 B" + (
        "" if flash_attn else f" + {n_ubatch} x n_ctx x n_head {h} x 4 B (no flash attention)"
    )
    return act + attn, formula


def _flops_per_cycle(flags: set[str]) -> tuple[int, str]:
    if "avx512f" in flags:
        return 64, "AVX-512: 2 FMA units x 16 fp32 x 2"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2: 2 FMA units x 8 fp32 x 2"
    if "asimd" in flags:
        return 16, "NEON: 2 FMA units x 4 fp32 x 2"
    return 8, "scalar/SSE: 8 fp32 FLOP/cycle"


def _gpu_layout(
    facts: GgufFacts, n_gpu_layers: int, n_gpus: int, split: Sequence[float]
) -> list[tuple[list[int], bool]]:
    """For each GPU: (layer indices, holds the output layer). llama.cpp offloads the *last*
    n_gpu_layers layers, the output matrix too when n_gpu_layers > n_layers, and splits the
    offloaded layers across GPUs in proportion to `split`."""
    n_layer = len(facts.layer_bytes)
    ngl = n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)
    layers = list(range(n_layer - min(ngl, n_layer), n_layer))
    total = sum(split) or 1.0
    out: list[tuple[list[int], bool]] = []
    start, acc = 0, 0.0
    for i in range(n_gpus):
        acc += split[i]
        end = len(layers) if i == n_gpus - 1 else int(round(len(layers) * acc / total))
        out.append((layers[start:end], False))
        start = end
    if ngl > n_layer and out:
        out[-1] = (out[-1][0], True)
    return out


def gpu_fits(
    facts: GgufFacts,
    topology: Topology,
    n_gpu_layers: int,
    kv_layers: Sequence[int],
    compute_bytes: int,
    split: Sequence[float] | None = None,
    vram_free: Mapping[int, int] | None = None,
) -> list[GpuFit]:
    gpus = [g for g in topology.gpus if g.memory_total_bytes]
    if not gpus or n_gpu_layers == 0:
        return []
    free = [
        vram_free.get(g.index)
        if vram_free and g.index in vram_free
        else max(0, (g.memory_total_bytes or 0) - CUDA_RESERVE)
        for g in gpus
    ]
    split = list(split) if split and len(split) == len(gpus) else [float(f) for f in free]
    fits: list[GpuFit] = []
    for k, (g, (layers, has_out)) in enumerate(
        zip(gpus, _gpu_layout(facts, n_gpu_layers, len(gpus), split), strict=True)
    ):
        need = sum(
            facts.layer_bytes[i] + (kv_layers[i] if i < len(kv_layers) else 0) for i in layers
        )
        need += (facts.output_bytes if has_out else 0) + (compute_bytes if layers or has_out else 0)
        fits.append(
            GpuFit(
                g.index,
                g.name,
                g.memory_total_bytes,
                free[k],
                len(layers) + has_out,
                need,
                need <= free[k] if free[k] is not None else None,
            )
        )
    return fits


def max_gpu_layers(
    facts: GgufFacts,
    topology: Topology,
    kv_layers: Sequence[int],
    compute_bytes: int,
    split: Sequence[float] | None = None,
    vram_free: Mapping[int, int] | None = None,
) -> int | None:
    """The largest n_gpu_layers whose layers fit every GPU (None without GPUs)."""
    if not [g for g in topology.gpus if g.memory_total_bytes]:
        return None
    for ngl in range(len(facts.layer_bytes) + 1, 0, -1):
        if all(
            f.fits
            for f in gpu_fits(facts, topology, ngl, kv_layers, compute_bytes, split, vram_free)
        ):
            return ngl
    return 0


def _bandwidth(
    topology: Topology, membench: MemBenchResult | None, nodes: Sequence[int] | None
) -> Figure:
    """Bandwidth the CPU side reads weights with: measured (bench cache) else theoretical."""
    where = f"nodes {','.join(map(str, nodes))}" if nodes else "whole machine"
    if membench is not None:
        if nodes:
            vals = [membench.node(n) for n in nodes]
            if all(v is not None and v.read_gbs for v in vals):
                total = sum(v.read_gbs for v in vals)  # type: ignore[union-attr,misc]
                return Figure(total, "measured", f"rigtui bench mem read, {where}", "GB/s")
        elif membench.machine and membench.machine.read_gbs:
            return Figure(
                membench.machine.read_gbs,
                "measured",
                f"rigtui bench mem read, whole machine ({membench.kernel})",
                "GB/s",
            )
    mem = topology.memory
    basis = "estimated" if "platform" in (mem.source or "") else "read"
    if nodes:
        socks = {topology.socket_of_node(n) for n in nodes}
        if socks and None not in socks and all(s in mem.bandwidth_per_socket_gbs for s in socks):
            total = sum(mem.bandwidth_per_socket_gbs[s] for s in socks)  # type: ignore[index]
            return Figure(
                total,
                basis,
                f"theoretical, sockets {sorted(socks)} of {where} "
                f"({mem.source}); run `rigtui bench mem` to measure",
                "GB/s",
            )
    if mem.theoretical_bandwidth_gbs:
        return Figure(
            mem.theoretical_bandwidth_gbs,
            basis,
            f"theoretical: channels x 8 B x "
            f"{mem.speed_mts} MT/s ({mem.source}); run `rigtui bench mem` to measure",
            "GB/s",
        )
    return Figure(
        None,
        "estimated",
        "memory bandwidth unknown: run `rigtui bench mem` (and `sudo rigtui probe` for DIMM data)",
        "GB/s",
    )


def _gib(n: float) -> str:
    """Bytes in the largest unit that keeps a digit before the point."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def make_plan(
    facts: GgufFacts,
    topology: Topology,
    *,
    n_ctx: int | None = None,
    kv_type_k: str = "f16",
    kv_type_v: str = "f16",
    n_gpu_layers: int = 0,
    tensor_split: Sequence[float] | None = None,
    flash_attn: bool = False,
    n_ubatch: int = 512,
    threads: int | None = None,
    nodes: Sequence[int] | None = None,
    membench: MemBenchResult | None = None,
    vram_free: Mapping[int, int] | None = None,
    profile: str | None = None,
) -> Plan:
    """The plan for `facts` on `topology`. `nodes`: the NUMA nodes a profile binds to (None:
    all). Raises PlanError for impossible inputs."""
    ctx = n_ctx or DEFAULT_CTX
    if ctx <= 0:
        raise PlanError(f"--ctx {ctx}: give a positive context length")
    warnings: list[str] = []
    if facts.n_ctx_train and ctx > facts.n_ctx_train:
        warnings.append(f"ctx {ctx} exceeds the {facts.n_ctx_train} the model was trained for")
    kv_layers = kv_bytes_per_layer(facts, ctx, kv_type_k, kv_type_v)
    kv_total = sum(kv_layers)
    kv_detail = (
        f"{ctx} ctx x {len(kv_layers)} layers x n_head_kv {facts.n_head_kv} x "
        f"(K {facts.head_dim_k} {kv_type_k} + V {facts.head_dim_v} {kv_type_v})"
    )
    odd_arch = facts.architecture in ("deepseek2", "gemma2", "gemma3", "mamba", "rwkv6", "jamba")
    if not kv_layers:
        warnings.append("no attention heads in the header: KV cache size unknown")
    compute, compute_formula = compute_buffer_estimate(facts, ctx, n_ubatch, flash_attn)
    active = active_weight_bytes(facts)
    bpt = active + kv_total
    moe = (
        f"; MoE: {facts.n_experts_used} of {facts.n_experts} experts active"
        if facts.n_experts
        else ""
    )

    fits_gpu = gpu_fits(facts, topology, n_gpu_layers, kv_layers, compute, tensor_split, vram_free)
    on_gpu = sum(f.needed_bytes for f in fits_gpu)
    n_layer = len(facts.layer_bytes)
    off = (
        0 if not fits_gpu else (n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1))
    )
    gpu_weight = sum(facts.layer_bytes[n_layer - min(off, n_layer) :]) + (
        facts.output_bytes if off > n_layer else 0
    )
    gpu_kv = sum(kv_layers[n_layer - min(off, n_layer) :]) if kv_layers else 0
    cpu_need = facts.weights_bytes - gpu_weight + kv_total - gpu_kv + compute
    node_fits: list[NodeFit] = []
    for node in topology.nodes:
        if not node.mem_total_bytes:
            continue
        node_fits.append(
            NodeFit(
                f"node {node.id}",
                node.mem_total_bytes,
                node.mem_free_bytes,
                cpu_need,
                cpu_need <= node.mem_total_bytes,
                None if node.mem_free_bytes is None else cpu_need <= node.mem_free_bytes,
            )
        )
    caps = [n.mem_total_bytes for n in topology.nodes if n.mem_total_bytes]
    frees = [n.mem_free_bytes for n in topology.nodes if n.mem_total_bytes]
    if len(caps) > 1:
        free_all = sum(frees) if all(f is not None for f in frees) else None  # type: ignore[misc]
        node_fits.append(
            NodeFit(
                "all nodes (interleave)",
                sum(caps),
                free_all,
                cpu_need,
                cpu_need <= sum(caps),
                None if free_all is None else cpu_need <= free_all,
            )
        )
    total_mem = sum(caps) if caps else topology.memory.total_bytes
    if total_mem and cpu_need > total_mem:
        warnings.append(
            f"too big for this machine: the CPU side needs {_gib(cpu_need)}, the "
            f"machine has {_gib(total_mem)} of memory; llama.cpp would page the "
            "model from disk on every token. Use a smaller quantization or offload "
            "layers to GPUs"
        )
    for f in fits_gpu:
        if f.fits is False:
            warnings.append(
                f"GPU {f.gpu}: {f.layers} layers need {_gib(f.needed_bytes)}, about "
                f"{_gib(f.free_bytes or 0)} usable: lower n_gpu_layers"
            )
    max_ngl = max_gpu_layers(facts, topology, kv_layers, compute, tensor_split, vram_free)

    bw = _bandwidth(topology, membench, nodes)
    full_gpu = bool(fits_gpu) and off > n_layer
    cpu_bytes = bpt - (gpu_weight + gpu_kv if fits_gpu else 0)
    if full_gpu:
        tg = Figure(
            None,
            "estimated",
            "all layers on GPUs: GPU memory bandwidth is not known "
            "to rigtui (tok/s <= VRAM bandwidth / bytes_per_token)",
            "tok/s",
        )
    elif bw.value and cpu_bytes > 0:
        tg = Figure(
            bw.value * GB / cpu_bytes,
            "estimated",
            f"ceiling: {bw.value:.1f} GB/s ({bw.basis}: {bw.detail}) / "
            f"{cpu_bytes / GB:.3f} GB read per token on the CPU side"
            + (" (GPU layers not counted)" if fits_gpu else ""),
            "tok/s",
        )
    else:
        tg = Figure(None, "estimated", bw.detail, "tok/s")

    flags = set(topology.cpu.flags)
    fpc, fpc_what = _flops_per_cycle(flags)
    cpu_ids = [c for n in topology.nodes if not nodes or n.id in nodes for c in n.cpus]
    cores = (
        threads or len(topology.first_thread_per_core(tuple(cpu_ids))) or topology.physical_cores
    )
    mhz = topology.cpu.max_mhz
    active_params = facts.n_params * (active / facts.weights_bytes) if facts.weights_bytes else 0
    if mhz and cores and active_params:
        peak = cores * mhz * 1e6 * fpc
        pp = Figure(
            peak / (2 * active_params),
            "estimated",
            f"peak: {cores} cores x {mhz:.0f} MHz x {fpc} FLOP/cycle ({fpc_what}) = "
            f"{peak / 1e12:.2f} TFLOPS / (2 x {active_params / 1e9:.3f} G active params); "
            "llama.cpp reaches a fraction of peak, GPUs not counted",
            "tok/s",
        )
    else:
        pp = Figure(None, "estimated", "CPU clock or core count unknown", "tok/s")

    suggestion = suggest_profile(facts, topology, ctx, cpu_need, max_ngl, kv_type_k)
    return Plan(
        model=facts, n_ctx=ctx, kv_type_k=kv_type_k, kv_type_v=kv_type_v,
        n_gpu_layers=n_gpu_layers,
        params=Figure(facts.n_params, "read", "sum of tensor element counts in the GGUF index"),
        weights_bytes=Figure(facts.weights_bytes, "read", "sum of tensor data sizes", "B"),
        kv_cache_bytes=Figure(kv_total, "estimated" if odd_arch else "read",
                              kv_detail + (" (this architecture caches differently: rough)"
                                           if odd_arch else ""), "B"),
        compute_buffer_bytes=Figure(compute, "estimated", compute_formula, "B"),
        active_weights_bytes=Figure(active, "read", "weights minus the embedding table (one row "
                                    "read per token)" + moe, "B"),
        bytes_per_token=Figure(bpt, "estimated", f"active weights {_gib(active)} + KV cache at "
                               f"{ctx} tokens {_gib(kv_total)} read once per token", "B"),
        bandwidth_gbs=bw, predicted_tg_tok_s=tg, predicted_pp_tok_s=pp,
        fit={"nodes": node_fits, "gpus": fits_gpu, "cpu_bytes": cpu_need, "gpu_bytes": on_gpu,
             "max_n_gpu_layers": Figure(max_ngl, "estimated",
                                        f"VRAM minus {CUDA_RESERVE // MiB} MiB CUDA reserve per "
                                        "GPU, layer + KV + compute buffer sizes")
             if max_ngl is not None else None},
        suggested_profile=suggestion, warnings=tuple(warnings), profile=profile,
    )  # fmt: skip


def suggest_profile(
    facts: GgufFacts, topology: Topology, ctx: int, cpu_need: int, max_ngl: int | None, kv_type: str
) -> dict[str, Any]:
    """Profile keys (as in a profile TOML) for this model on this machine, with the reasons."""
    reasons: list[str] = []
    cpu_nodes = [n for n in topology.nodes if n.cpus]
    out: dict[str, Any] = {
        "ctx": ctx,
        "cache_type_k": kv_type,
        "cache_type_v": kv_type,
        "threads": topology.physical_cores or None,
    }
    reasons.append("one thread per physical core: SMT siblings add contention")
    if len(cpu_nodes) > 1:
        biggest = max((n.mem_total_bytes or 0) for n in cpu_nodes)
        out.update(numa="distribute", memory_policy="interleave", physical_cores_only=True)
        reasons.append(
            "several NUMA nodes: interleave the weights and spread threads so every "
            "memory channel streams"
            + (" (the model is bigger than one node)" if cpu_need > biggest else "")
        )
    else:
        out.update(numa="disabled", memory_policy="default", physical_cores_only=True)
    if max_ngl:
        n_layer = len(facts.layer_bytes)
        out["gpu_layers"] = -1 if max_ngl > n_layer else max_ngl
        reasons.append(
            "all layers fit the GPUs"
            if max_ngl > n_layer
            else f"{max_ngl} of {n_layer + 1} layers fit the GPUs' memory"
        )
    elif max_ngl == 0:
        out["gpu_layers"] = 0
        reasons.append("no layer fits the GPUs' free memory")
    out["reasons"] = reasons
    return out
