"""`rigtui plan MODEL.gguf [--ctx N] [--profile P] [--json]`: what a model needs, where it fits,
and how fast it can possibly go on this machine (every figure marked measured/read/estimated).

Exit code: 0 planned, 1 the model does not fit this machine's memory (RAM + the GPU layers),
2 bad input (not GGUF, corrupt, bad option).
"""

from __future__ import annotations

import argparse

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_root_arg, make_fs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan", help="GGUF facts, memory fit and tok/s ceilings for a model on this machine",
        description="Read a GGUF header and plan it on this machine: weights, KV cache, fit per "
        "NUMA node and GPU, bytes per token and the generation/prompt speed ceilings.",
    )  # fmt: skip
    add_root_arg(p)
    p.add_argument("model", nargs="?", metavar="MODEL.gguf", help="the model (or --profile's)")
    p.add_argument("--profile", metavar="P", help="take model, ctx, KV types, GPU layers from P")
    p.add_argument(
        "--ctx", type=int, metavar="N", help="context length (default: profile's, else 4096)"
    )
    p.add_argument("--kv-type", metavar="T", help="KV cache type for K and V (f16, q8_0, q4_0...)")
    p.add_argument(
        "--n-gpu-layers",
        "-ngl",
        type=int,
        metavar="N",
        help="layers to offload (-1: all; default: profile's, else 0)",
    )
    p.add_argument("--tensor-split", metavar="A,B", help="GPU split ratios, e.g. 3,1")
    p.add_argument("--json", action="store_true", help="the plan as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rigtui.analysis.gguf_facts import GgufError, read_gguf_facts
    from rigtui.analysis.membench_cache import load_cached_membench
    from rigtui.analysis.plan import PlanError, make_plan
    from rigtui.commands._analysis import detect_topology, err, missing_root, resolve_model
    from rigtui.commands._common import print_json

    fs = make_fs(args)
    if why := missing_root(fs):
        err(why)
        return EXIT_USAGE
    choice = resolve_model(argparse.Namespace(model=args.model, profile=args.profile))
    if choice.error:
        err(choice.error)
        return EXIT_USAGE
    if not choice.path:
        err("plan: give MODEL.gguf or --profile P")
        return EXIT_USAGE
    prof = choice.profile
    try:
        split = (
            tuple(float(x) for x in args.tensor_split.split(","))
            if args.tensor_split
            else (prof.tensor_split if prof else None)
        )
    except ValueError:
        err(f"--tensor-split {args.tensor_split!r}: write ratios like 3,1")
        return EXIT_USAGE
    try:
        facts = read_gguf_facts(choice.path)
    except GgufError as exc:
        err(str(exc))
        return EXIT_USAGE
    topology = detect_topology(fs)
    kv_k = args.kv_type or (prof.cache_type_k if prof else "f16")
    kv_v = args.kv_type or (prof.cache_type_v if prof else "f16")
    ngl = args.n_gpu_layers if args.n_gpu_layers is not None else (prof.gpu_layers if prof else 0)
    nodes = None
    if prof is not None and prof.memory_policy == "bind":
        nodes = prof.memory_nodes or prof.nodes
    try:
        plan = make_plan(
            facts, topology, n_ctx=args.ctx or (prof.ctx if prof else None), kv_type_k=kv_k,
            kv_type_v=kv_v, n_gpu_layers=ngl, tensor_split=split,
            flash_attn=bool(prof.flash_attn) if prof else False,
            n_ubatch=prof.ubatch if prof else 512, threads=prof.threads if prof else None,
            nodes=nodes, membench=load_cached_membench(topology),
            vram_free=_vram_free(fs, topology),
            profile=prof.name if prof else None,
            override_tensors=prof.override_tensors if prof else (),
            n_cpu_moe=prof.n_cpu_moe if prof else None,
        )  # fmt: skip
    except PlanError as exc:
        err(str(exc))
        return EXIT_USAGE
    if args.json:
        print_json(plan)
    else:
        print_plan(plan)
    too_big = any(w.startswith("too big") for w in plan.warnings)
    return EXIT_FAILURE if too_big else EXIT_OK


def _vram_free(fs, topology) -> dict[int, int] | None:
    """Free VRAM per GPU now, from NVML (live NVIDIA machines only); None otherwise."""
    if not fs.is_live or not any(g.nvml_index is not None for g in topology.gpus):
        return None
    from rigtui.analysis.plan import free_vram
    from rigtui.telemetry.gpu import GpuSource

    source = GpuSource()
    try:
        return free_vram(topology, source.read()) or None
    finally:
        source.close()


def _b(n: float | int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def print_plan(plan) -> None:
    from rich.console import Console
    from rich.markup import escape

    con = Console(highlight=False, soft_wrap=True)
    m = plan.model
    con.print(f"[bold]{escape(m.name or m.path)}[/]  {escape(m.path)}")
    arch = f"{m.architecture}, {m.file_type or '?'}, GGUF v{m.version}, {_b(m.file_bytes)}"
    con.print(f"  {escape(arch)}")
    con.print(
        f"  {m.n_params:,} params, {m.n_layers} layers, n_embd {m.n_embd}, heads "
        f"{m.n_head}/{m.n_head_kv} (KV), trained ctx {m.n_ctx_train}"
        + (f", experts {m.n_experts_used}/{m.n_experts}" if m.n_experts else "")
    )
    mix = ", ".join(f"{s.type} {s.tensors}t {_b(s.bytes)}" for s in m.quant_mix)
    con.print(f"  quantization mix: {escape(mix)}")

    import textwrap

    width = max(40, con.width)

    def fig(label: str, f, fmt) -> None:
        # value and basis on the label's line, the formula wrapped beneath: 80 columns stay tidy
        val = "?" if f.value is None else fmt(f.value)
        con.print(f"  {label:<22}{val:>14}  {f.basis}")
        for line in textwrap.wrap(
            f.detail or "", width=width, initial_indent=" " * 6, subsequent_indent=" " * 6,
            break_on_hyphens=False,
        ):  # fmt: skip
            con.print(f"[dim]{escape(line)}[/]")

    con.print(
        f"\n[bold]Needs[/] (ctx {plan.n_ctx}, KV {plan.kv_type_k}/{plan.kv_type_v}, "
        f"n_gpu_layers {plan.n_gpu_layers})"
    )
    fig("weights", plan.weights_bytes, _b)
    fig("KV cache", plan.kv_cache_bytes, _b)
    fig("compute buffer", plan.compute_buffer_bytes, _b)
    fig("bytes per token", plan.bytes_per_token, _b)
    con.print("\n[bold]Fit[/]")
    for nf in plan.fit["nodes"]:
        ok = "fits" if nf.fits else "DOES NOT FIT"
        con.print(
            f"  {nf.target:<24} needs {_b(nf.needed_bytes)} of {_b(nf.capacity_bytes)} "
            f"({_b(nf.free_bytes)} free): {ok}"
        )
    for gf in plan.fit["gpus"]:
        ok = "fits" if gf.fits else "DOES NOT FIT"
        con.print(
            f"  GPU {gf.gpu} {escape(gf.name or '')}: {gf.layers} layers need "
            f"{_b(gf.needed_bytes)} of ~{_b(gf.free_bytes)} usable: {ok}"
        )
    if plan.fit.get("max_n_gpu_layers") is not None:
        fig("largest n_gpu_layers", plan.fit["max_n_gpu_layers"], str)
    if plan.tensor_overrides:
        con.print("\n[bold]Tensor overrides[/] (first match wins, as llama.cpp applies them)")
        for g in plan.tensor_overrides:
            names = ", ".join(g.examples) + (", ..." if g.tensors > len(g.examples) else "")
            con.print(f"  {escape(g.pattern)} -> {escape(g.buffer_type)}: {g.tensors} tensors, "
                      f"{_b(g.bytes)}" + (f" ({escape(names)})" if names else "")
                      + ("" if g.tensors else "  [yellow]matches no tensor of this model[/]"))  # fmt: skip
    con.print("\n[bold]Ceilings[/]")
    fig("memory bandwidth", plan.bandwidth_gbs, lambda v: f"{v:.1f} GB/s")
    fig("generation", plan.predicted_tg_tok_s, lambda v: f"{v:.1f} tok/s")
    fig("prompt", plan.predicted_pp_tok_s, lambda v: f"{v:.0f} tok/s")
    sugg = {k: v for k, v in plan.suggested_profile.items() if k != "reasons" and v is not None}
    # One `key = value` per line, as a profile file spells it, so the block can be pasted.
    con.print("\n[bold]Suggested profile[/] (profile TOML)")
    for k, v in sugg.items():
        con.print(f"  {k} = {escape(_toml_value(v))}")
    for r in plan.suggested_profile.get("reasons", []):
        for line in textwrap.wrap(f"# {r}", width=width, initial_indent="  ",
                                  subsequent_indent="  # "):  # fmt: skip
            con.print(f"[dim]{escape(line)}[/]")
    for w in plan.warnings:
        for i, line in enumerate(textwrap.wrap(w, width=width - 9, subsequent_indent="  ")):
            con.print(("[yellow]warning:[/] " if i == 0 else "         ") + escape(line))


def _toml_value(v: object) -> str:
    """As the profile file would spell it (true, "interleave", [0, 1]), so it can be pasted."""
    import json

    return json.dumps(v) if isinstance(v, (bool, str, list, tuple)) else str(v)
