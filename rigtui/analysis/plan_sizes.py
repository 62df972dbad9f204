"""Sizes for `rigtui plan`: KV cache rows per ggml type, active weights, llama.cpp's compute
buffer (estimate), and what a given n_gpu_layers / tensor split puts on each GPU.

All pure functions of GgufFacts and the probed Topology; figures in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rigtui.model.analysis import GgufFacts, GpuFit
from rigtui.model.sample import GpuSample
from rigtui.model.topology import Topology

MiB = 1 << 20
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


def offloaded(n_layer: int, n_gpu_layers: int) -> tuple[range, bool]:
    """(the repeating layers on the GPUs, whether the output layer is): llama.cpp counts the
    output layer as layer n_layer, the last, and offloads the top n_gpu_layers of the n_layer
    + 1 (src/llama-model.cpp: i_gpu_start = n_layer + 1 - n_gpu_layers), so `-ngl 1` is the
    output matrix alone and `-ngl N` the output plus the last N - 1 layers."""
    ngl = n_layer + 1 if n_gpu_layers < 0 else max(0, min(n_gpu_layers, n_layer + 1))
    return range(n_layer + 1 - ngl, n_layer) if ngl > 1 else range(n_layer, n_layer), ngl >= 1


def _gpu_layout(
    facts: GgufFacts, n_gpu_layers: int, n_gpus: int, split: Sequence[float]
) -> list[tuple[list[int], bool]]:
    """For each GPU: (layer indices, holds the output layer), as llama.cpp assigns them: layer
    il of the offloaded ones goes to the first GPU whose cumulative split share exceeds
    (il - first) / count (std::upper_bound over the normalized split points)."""
    from bisect import bisect_right

    n_layer = len(facts.layer_bytes)
    layers, output = offloaded(n_layer, n_gpu_layers)
    first = n_layer + 1 - (len(layers) + output)
    count = len(layers) + output
    total = sum(split) or 1.0
    points, acc = [], 0.0
    for x in split:
        acc += x
        points.append(acc / total)
    out: list[tuple[list[int], bool]] = [([], False) for _ in range(n_gpus)]
    for il in list(layers) + ([n_layer] if output else []):
        g = min(bisect_right(points, (il - first) / count), n_gpus - 1)
        if il == n_layer:
            out[g] = (out[g][0], True)
        else:
            out[g][0].append(il)
    return out


def gpu_fits(
    facts: GgufFacts,
    topology: Topology,
    n_gpu_layers: int,
    kv_layers: Sequence[int],
    compute_bytes: int,
    split: Sequence[float] | None = None,
    vram_free: Mapping[int, int] | None = None,
    cpu_layer_bytes: Mapping[int, int] | None = None,
) -> list[GpuFit]:
    """Per GPU: its layers (llama.cpp's layout) and the bytes they need. `cpu_layer_bytes`:
    bytes of each layer that tensor overrides keep on the CPU (MoE experts)."""
    gpus = [g for g in topology.gpus if g.memory_total_bytes]
    if not gpus or n_gpu_layers == 0:
        return []
    free = _usable(gpus, vram_free)
    split = list(split) if split and len(split) == len(gpus) else [float(f) for f in free]
    fits: list[GpuFit] = []
    for k, (g, (layers, has_out)) in enumerate(
        zip(gpus, _gpu_layout(facts, n_gpu_layers, len(gpus), split), strict=True)
    ):
        need = sum(_on_gpu(facts, i, kv_layers, cpu_layer_bytes) for i in layers)
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


def _on_gpu(facts: GgufFacts, i: int, kv_layers: Sequence[int],
            cpu_layer_bytes: Mapping[int, int] | None) -> int:  # fmt: skip
    """Bytes layer `i` takes on its GPU: its weights but those overrides keep in RAM, its KV."""
    moved = cpu_layer_bytes.get(i, 0) if cpu_layer_bytes else 0
    return facts.layer_bytes[i] - moved + (kv_layers[i] if i < len(kv_layers) else 0)


def _usable(gpus: Sequence[Any], vram_free: Mapping[int, int] | None) -> list[int]:
    """Bytes each GPU can take: free VRAM now (NVML) where known, else total - the reserve."""
    return [vram_free[g.index] if vram_free and g.index in vram_free
            else max(0, (g.memory_total_bytes or 0) - CUDA_RESERVE) for g in gpus]  # fmt: skip


def fill_split(
    facts: GgufFacts,
    topology: Topology,
    n_gpu_layers: int,
    kv_layers: Sequence[int],
    compute_bytes: int,
    vram_free: Mapping[int, int] | None = None,
    cpu_layer_bytes: Mapping[int, int] | None = None,
) -> tuple[int, ...] | None:
    """A `tensor_split` (layer counts per GPU) that fits, filling each GPU in llama.cpp's layer
    order with the offloaded layers' bytes as they really are: llama.cpp's default split goes
    by free memory and cannot see that `--n-cpu-moe` left the first layers light. Counts are
    exact split points for llama.cpp's assignment (see _gpu_layout). None when no split of
    whole layers fits, or with fewer than two GPUs."""
    gpus = [g for g in topology.gpus if g.memory_total_bytes]
    if len(gpus) < 2 or n_gpu_layers == 0:
        return None
    free = _usable(gpus, vram_free)
    n_layer = len(facts.layer_bytes)
    layers, output = offloaded(n_layer, n_gpu_layers)
    cost = [_on_gpu(facts, i, kv_layers, cpu_layer_bytes) for i in layers] + (
        [facts.output_bytes] if output else [])  # fmt: skip
    counts, k, used = [0] * len(gpus), 0, 0
    for c in cost:
        while k < len(gpus) and used + c + compute_bytes > free[k]:
            k, used = k + 1, 0
        if k == len(gpus):
            return None
        counts[k] += 1
        used += c
    return tuple(counts)


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


def free_vram(topology: Topology, samples: Sequence[GpuSample]) -> dict[int, int]:
    """{rigtui GPU index: bytes usable by a new engine} from NVML samples (GpuSample.index is
    the NVML index): total - used now - the CUDA context reserve. GPUs without a reading are
    left out (the plan then uses total VRAM)."""
    by_nvml = {s.index: s for s in samples if s.available}
    out: dict[int, int] = {}
    for g in topology.gpus:
        sample = by_nvml.get(g.nvml_index) if g.nvml_index is not None else None
        if sample and sample.mem_total_bytes is not None and sample.mem_used_bytes is not None:
            out[g.index] = max(0, sample.mem_total_bytes - sample.mem_used_bytes - CUDA_RESERVE)
    return out
