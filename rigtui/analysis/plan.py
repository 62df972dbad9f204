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
from rigtui.analysis.plan_sizes import (
    CUDA_RESERVE,
    KV_TYPE_SIZES,
    PlanError,
    active_weight_bytes,
    compute_buffer_estimate,
    free_vram,
    gpu_fits,
    kv_bytes_per_layer,
    kv_row_bytes,
    max_gpu_layers,
    offloaded,
)
from rigtui.model.analysis import Figure, GgufFacts, MemBenchResult, NodeFit, Placement, Plan
from rigtui.model.topology import Topology

# Re-exported: callers import the sizes from here too.
__all__ = [
    "CUDA_RESERVE", "KV_TYPE_SIZES", "PlanError", "active_weight_bytes", "bytes_per_token",
    "cpu_bandwidth",
    "compute_buffer_estimate", "free_vram", "gpu_fits", "kv_bytes_per_layer", "kv_row_bytes",
    "make_plan", "max_gpu_layers", "suggest_profile",
]  # fmt: skip

GB = 1e9
GiB = 1 << 30
MiB = 1 << 20
DEFAULT_CTX = 4096  # llama.cpp's default -c


def bytes_per_token(model_path: str, ctx: int = DEFAULT_CTX, kv_type: str = "f16") -> float:
    """Bytes read per generated token at a context of `ctx` (active weights + full KV cache):
    the figure the UI/telemetry divide measured bandwidth by. Raises GgufError/PlanError."""
    facts = read_gguf_facts(model_path)
    return float(active_weight_bytes(facts) + sum(kv_bytes_per_layer(facts, ctx, kv_type, kv_type)))


def _flops_per_cycle(
    flags: set[str], vendor: str | None = None, family: int | None = None
) -> tuple[int, str]:
    if "avx512f" in flags and vendor == "AuthenticAMD" and family == 0x19:
        # Zen 4 (EPYC 9004, Ryzen 7000, TR 7000) runs AVX-512 on two 256-bit FMA pipes.
        return 32, "Zen 4 AVX-512 on 256-bit units: 2 FMA units x 8 fp32 x 2"
    if "avx512f" in flags:
        return 64, "AVX-512: 2 FMA units x 16 fp32 x 2"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2: 2 FMA units x 8 fp32 x 2"
    if "asimd" in flags:
        return 16, "NEON: 2 FMA units x 4 fp32 x 2"
    return 8, "scalar/SSE: 8 fp32 FLOP/cycle"


def _gpu_seconds(fits: Sequence[Any], gpu_read: float, gpus: Sequence[Any]
                 ) -> tuple[float | None, str]:  # fmt: skip
    """(seconds per token on the GPUs, in words): layer split runs the GPUs one after another,
    so each reads its share (in proportion to the bytes it holds) at its own bandwidth: NVML's
    bus width x memory clock, else rigtui's table (analysis/gpu_specs); None when neither
    knows a GPU."""
    from rigtui.analysis.gpu_specs import vram_bandwidth

    by_index = {g.index: g for g in gpus}
    held = sum(f.needed_bytes for f in fits) or 1
    seconds, parts = 0.0, []
    for f in fits:
        spec = vram_bandwidth(by_index.get(f.gpu)) if f.gpu in by_index else None
        if spec is None:
            return None, (f"GPU {f.gpu} ({f.name or 'unnamed'}): no memory bandwidth from NVML "
                          "nor in rigtui's table")  # fmt: skip
        share = gpu_read * f.needed_bytes / held
        seconds += share / (spec[0] * GB)
        parts.append(f"GPU {f.gpu} {spec[2]}")
    return seconds, ", ".join(parts) + f": {seconds * 1000:.2f} ms one GPU after another"


def _fabric_capped(mem: Any, socks: Any) -> str:
    """", capped by the fabric at ..." where the fabric, not the channels, limits one of
    `socks` (AMD parts with few CCDs: CCDs x 32 B x FCLK, an estimate); else ""."""
    if mem.fabric is None or not any(mem.limited_by.get(s) == "fabric" for s in socks):
        return ""
    return f", capped by the fabric: {mem.fabric.note}"


def cpu_bandwidth(
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
        elif membench.interleaved and membench.interleaved.read_gbs:
            # one model over every node reads interleaved memory, half of it remote on two
            # sockets: the all-local machine figure is what one model *per node* gets in all
            inter = membench.interleaved
            allocal = (f"; the all-local sum {membench.machine.read_gbs:.1f} GB/s is one model "
                       "per node" if membench.machine and membench.machine.read_gbs else "")  # fmt: skip
            return Figure(
                inter.read_gbs,
                "measured",
                f"rigtui bench mem read, memory interleaved over nodes "
                f"{','.join(map(str, inter.mem_nodes))} ({membench.kernel}){allocal}",
                "GB/s",
            )
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
            # NPS/SNC split a socket's channels evenly over its nodes with memory: bound to k of
            # its n nodes, a model reads at k/n of the socket's figure (as the bench splits it).
            def share(s: int) -> tuple[int, int]:
                on = [
                    n.id
                    for n in topology.nodes
                    if n.socket == s and n.kind == "cpu" and (n.mem_total_bytes or 0) > 0
                ]
                n_on = len(on) or 1
                return min(len([n for n in on if n in nodes]) or 1, n_on), n_on

            shares = {s: share(s) for s in socks}  # type: ignore[arg-type]
            total = sum(mem.bandwidth_per_socket_gbs[s] * k / n for s, (k, n) in shares.items())
            split = ", ".join(
                f"socket {s}: {k} of its {n} nodes" for s, (k, n) in sorted(shares.items()) if k < n
            )
            capped = _fabric_capped(mem, socks)
            return Figure(
                total,
                "estimated" if split or capped else basis,
                f"theoretical, sockets {sorted(socks)} of {where} "
                + (f"({split}: channels split evenly by NPS/SNC) " if split else "")
                + f"({mem.source}){capped}; run `rigtui bench mem` to measure",
                "GB/s",
            )
    if mem.theoretical_bandwidth_gbs:
        capped = _fabric_capped(mem, set(mem.bandwidth_per_socket_gbs))
        return Figure(
            mem.theoretical_bandwidth_gbs,
            "estimated" if capped else basis,
            f"theoretical: channels x 8 B x "
            f"{mem.speed_mts} MT/s ({mem.source}){capped}; run `rigtui bench mem` to measure",
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
    override_tensors: Sequence[str] = (),
    n_cpu_moe: int | None = None,
    placements: bool = True,
) -> Plan:
    """The plan for `facts` on `topology`. `nodes`: the NUMA nodes a profile binds to (None:
    all). `placements`: also plan CPU only / full offload / MoE hybrid / partial and suggest
    one (rigtui.analysis.placements). Raises PlanError for impossible inputs."""
    ctx = n_ctx or DEFAULT_CTX
    if ctx <= 0:
        raise PlanError(f"--ctx {ctx}: give a positive context length")
    warnings: list[str] = []
    if kv_type_v not in ("f32", "f16", "bf16") and not flash_attn:
        warnings.append(f"a {kv_type_v} V cache needs flash attention: llama.cpp refuses to "
                        "create the context without it (flash_attn = true in the profile)")  # fmt: skip
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

    from rigtui.analysis.tensor_overrides import layer_expert_bytes, place_tensors

    overrides: list = []
    moved: dict[int, int] = {}
    moved_experts: dict[int, int] = {}
    if override_tensors or n_cpu_moe:
        overrides, moved, moved_experts = place_tensors(facts.tensors, override_tensors, n_cpu_moe)
    fits_gpu = gpu_fits(facts, topology, n_gpu_layers, kv_layers, compute, tensor_split, vram_free,
                        cpu_layer_bytes=moved)  # fmt: skip
    on_gpu = sum(f.needed_bytes for f in fits_gpu)
    n_layer = len(facts.layer_bytes)
    off = (
        0 if not fits_gpu else (n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1))
    )
    on_gpus, output_on_gpu = offloaded(n_layer, off)
    gpu_weight = sum(facts.layer_bytes[i] - moved.get(i, 0) for i in on_gpus) + (
        facts.output_bytes if output_on_gpu else 0
    )
    gpu_kv = sum(kv_layers[i] for i in on_gpus if i < len(kv_layers))
    cpu_need = facts.weights_bytes - gpu_weight + kv_total - gpu_kv + compute
    node_fits: list[NodeFit] = []
    machine_total = topology.memory.total_bytes or 0
    sole = len(topology.nodes) == 1
    for node in topology.nodes:
        if not node.mem_total_bytes:
            continue
        cap, free = node.mem_total_bytes, node.mem_free_bytes
        if sole and machine_total > cap:
            # The only node holds all the memory; its meminfo can miss hot-plugged/ballooned
            # memory (some VMs): /proc/meminfo's MemTotal/MemAvailable are the machine's truth.
            cap = machine_total
            avail = topology.host.mem_available_bytes
            free = max(free or 0, avail) if avail is not None else free
        node_fits.append(
            NodeFit(
                f"node {node.id}",
                cap,
                free,
                cpu_need,
                cpu_need <= cap,
                None if free is None else cpu_need <= free,
            )
        )
    caps = [f.capacity_bytes for f in node_fits]
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
    total_mem = max(sum(caps), machine_total) if caps else topology.memory.total_bytes
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

    bw = cpu_bandwidth(topology, membench, nodes)
    # every layer offloaded and no override keeping a tensor in RAM: nothing read on the CPU
    full_gpu = bool(fits_gpu) and off > n_layer and not any(moved.values())
    # What a token reads on the GPUs, GPU after GPU: their tensors whole, except the routed
    # experts they hold (n_used of n_experts of those), plus their KV. The CPU side reads the
    # rest of the bytes per token: in a MoE hybrid its experts' active share.
    unread = (1 - facts.n_experts_used / facts.n_experts
              if facts.n_experts and facts.n_experts_used else 0.0)  # fmt: skip
    exps = layer_expert_bytes(facts.tensors) if unread else {}
    gpu_experts = sum(exps.get(i, 0) - moved_experts.get(i, 0) for i in on_gpus)
    gpu_read = gpu_weight - gpu_experts * unread + gpu_kv
    cpu_bytes = bpt - (gpu_read if fits_gpu else 0)
    t_gpu, gpu_text = _gpu_seconds(fits_gpu, gpu_read, topology.gpus) if fits_gpu else (0.0, "")
    if full_gpu:
        tg = Figure(
            1 / t_gpu if t_gpu else None,
            "estimated",
            f"all layers on GPUs: {gpu_read / GB:.3f} GB read per token, {gpu_text}"
            if t_gpu else f"all layers on GPUs: {gpu_text} (tok/s <= VRAM bandwidth / bytes "
            "per token)",
            "tok/s",
        )  # fmt: skip
    elif bw.value and cpu_bytes > 0:
        t_cpu = cpu_bytes / (bw.value * GB)
        cpu_text = (f"{bw.value:.1f} GB/s ({bw.basis}: {bw.detail}) / {cpu_bytes / GB:.3f} GB "
                    "read per token on the CPU side")  # fmt: skip
        if fits_gpu and t_gpu:
            tg = Figure(1 / (t_cpu + t_gpu), "estimated",
                        f"hybrid ceiling: CPU side {cpu_text} ({t_cpu * 1000:.1f} ms), then the "
                        f"GPUs' {gpu_read / GB:.3f} GB, {gpu_text}", "tok/s")  # fmt: skip
        else:
            tg = Figure(1 / t_cpu, "estimated", f"ceiling: {cpu_text}"
                        + (f" (GPU layers not counted: {gpu_text})" if fits_gpu else ""), "tok/s")  # fmt: skip
    else:
        tg = Figure(None, "estimated", bw.detail, "tok/s")

    flags = set(topology.cpu.flags)
    fpc, fpc_what = _flops_per_cycle(flags, topology.cpu.vendor, topology.cpu.family)
    cpu_ids = [c for n in topology.nodes if not nodes or n.id in nodes for c in n.cpus]
    cores = (
        threads or len(topology.first_thread_per_core(tuple(cpu_ids))) or topology.physical_cores
    )
    mhz = topology.cpu.max_mhz or max((c.max_mhz or 0 for c in topology.cpus), default=0) or None
    mhz_basis = "max clock (cpufreq)"
    if not mhz and topology.cpu.cpuinfo_mhz:
        # No cpufreq (VMs): the boot-time clock of /proc/cpuinfo, which ignores boost.
        mhz, mhz_basis = topology.cpu.cpuinfo_mhz, "cpu MHz of /proc/cpuinfo, no cpufreq"
    active_params = facts.n_params * (active / facts.weights_bytes) if facts.weights_bytes else 0
    if mhz and cores and active_params:
        peak = cores * mhz * 1e6 * fpc
        pp = Figure(
            peak / (2 * active_params),
            "estimated",
            f"peak: {cores} cores x {mhz:.0f} MHz ({mhz_basis}) x {fpc} FLOP/cycle ({fpc_what}) = "
            f"{peak / 1e12:.2f} TFLOPS / (2 x {active_params / 1e9:.3f} G active params); "
            "llama.cpp reaches a fraction of peak, GPUs not counted",
            "tok/s",
        )
    else:
        pp = Figure(None, "estimated", "CPU clock or core count unknown", "tok/s")

    from rigtui.analysis.use_cases import verdicts

    kv_cpu_share = 1.0 - (gpu_kv / kv_total if kv_total and fits_gpu else 0.0)

    def tg_at(depth: int) -> float | None:
        """Generation speed with `depth` tokens in the context: the KV read grows with it."""
        if not tg.value:
            return None
        kv_d = sum(kv_bytes_per_layer(facts, depth, kv_type_k, kv_type_v)) if kv_layers else 0
        if full_gpu:
            return 1 / ((gpu_read - gpu_kv + kv_d) / gpu_read / tg.value) if gpu_read else None
        if not bw.value:
            return None
        cpu_at = cpu_bytes - (kv_total - gpu_kv) + kv_d * kv_cpu_share
        t = cpu_at / (bw.value * GB) + (t_gpu or 0.0)
        return 1 / t if t > 0 else None

    use_cases = verdicts(pp.value, tg_at, max_ctx=facts.n_ctx_train or None)
    options: tuple[Placement, ...] = ()
    if placements:
        from rigtui.analysis.placements import find_placements

        def plan_for(ngl: int, ot: Sequence[str], ncm: int | None,
                     split: Sequence[float] | None) -> Plan:  # fmt: skip
            return make_plan(facts, topology, n_ctx=ctx, kv_type_k=kv_type_k,
                             kv_type_v=kv_type_v, n_gpu_layers=ngl,
                             tensor_split=split if split is not None else tensor_split,
                             flash_attn=flash_attn, n_ubatch=n_ubatch, threads=threads,
                             nodes=nodes, membench=membench, vram_free=vram_free,
                             override_tensors=ot, n_cpu_moe=ncm, placements=False)  # fmt: skip

        options = find_placements(facts, topology, kv_layers=kv_layers, compute=compute,
                                  split=tensor_split, vram_free=vram_free, plan_for=plan_for,
                                  n_ubatch=n_ubatch)  # fmt: skip
    best = next((p for p in options if p.suggested), None)
    suggestion = suggest_profile(facts, topology, ctx, cpu_need, max_ngl, kv_type_k, best)
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
        bandwidth_gbs=bw, predicted_tg_tok_s=tg, predicted_pp_tok_s=pp, use_cases=use_cases,
        fit={"nodes": node_fits, "gpus": fits_gpu, "cpu_bytes": cpu_need, "gpu_bytes": on_gpu,
             "cpu_weight_bytes": facts.weights_bytes - (gpu_weight if fits_gpu else 0),
             "max_n_gpu_layers": Figure(max_ngl, "estimated",
                                        ("free VRAM now (NVML)" if vram_free else "total VRAM")
                                        + f" minus {CUDA_RESERVE // MiB} MiB CUDA reserve per GPU;"
                                        " layer + KV + compute buffer sizes")
             if max_ngl is not None else None},
        suggested_profile=suggestion, warnings=tuple(warnings), profile=profile,
        tensor_overrides=tuple(overrides), placements=options,
    )  # fmt: skip


def suggest_profile(
    facts: GgufFacts, topology: Topology, ctx: int, cpu_need: int, max_ngl: int | None,
    kv_type: str, placement: Placement | None = None,
) -> dict[str, Any]:
    """Profile keys (as in a profile TOML) for this model on this machine, with the reasons.
    `placement`: the suggested one of the plan's placements (its keys win over max_ngl's)."""
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
        # the largest node that holds memory (CPU nodes may have none: SNC with memory on
        # separate nodes, CXL/HBM)
        biggest = max((n.mem_total_bytes or 0) for n in topology.nodes)
        out.update(numa="distribute", memory_policy="interleave", physical_cores_only=True)
        reasons.append(
            "several NUMA nodes: interleave the weights and spread threads so every "
            "memory channel streams"
            + (" (the model is bigger than one node)" if cpu_need > biggest else "")
        )
    else:
        out.update(numa="disabled", memory_policy="default", physical_cores_only=True)
    if placement is not None and placement.kind != "cpu":
        out.update(placement.profile)
        reasons.append(f"{placement.title}: {placement.why}")
    elif max_ngl:
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
