"""`rigtui plan MODEL.gguf [--ctx N] [--profile P] [--json]`: what a model needs, where it fits,
and how fast it can possibly go on this machine (every figure marked measured/read/estimated).

Exit code: 0 planned, 1 the model does not fit this machine's memory (RAM + the GPU layers),
2 bad input (not GGUF, corrupt, bad option).
"""

from __future__ import annotations

import argparse
import os

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
    p.add_argument("--no-llama-fit", action="store_true",
                   help="skip llama.cpp's own estimate (llama-fit-params) beside rigtui's")
    w = p.add_argument_group("what-if sizing (no GGUF: a model and a rig that may not exist yet)")
    w.add_argument("--params", metavar="N", help="parameters, e.g. 405e9 or 405B")
    w.add_argument("--bits", metavar="B", help="bits per weight (6, 4.5) or a quant (Q4_K_M)")
    w.add_argument("--active-params", metavar="N", help="MoE: parameters read per token")
    w.add_argument("--platform", metavar="NAME", help='a platform from rigtui\'s table ("EPYC 9004")')
    w.add_argument("--sockets", type=int, default=1, metavar="N", help="sockets of --platform")
    w.add_argument("--ccds", type=int, metavar="N", help="AMD CCDs per socket (the fabric cap)")
    w.add_argument("--channels", type=int, metavar="N", help="memory channels in all (with --mts)")
    w.add_argument("--mts", type=int, metavar="M", help="memory speed, MT/s (with --channels)")
    w.add_argument("--ram-gb", type=float, metavar="G", help="memory of the rig sized, GB")
    w.add_argument("--gpu", action="append", default=[], metavar="NAME",
                   help='a GPU from rigtui\'s table, "RTX 4090" or "RTX 4090 x2" (repeatable)')
    w.add_argument("--disk-gbs", type=float, default=10.0, metavar="G",
                   help="disk read speed for weights that do not fit (default 10 GB/s)")
    p.set_defaults(func=run)


_WHATIF_ONLY = ("active_params", "platform", "ccds", "channels", "mts", "ram_gb")


def run_what_if(args: argparse.Namespace) -> int:
    from rigtui.analysis.membench_cache import load_cached_membench
    from rigtui.analysis.whatif import (
        WhatIfError,
        parse_bits,
        parse_count,
        parse_gpus,
        rig_bandwidth,
        what_if,
    )  # fmt: skip
    from rigtui.commands._analysis import detect_topology, err, missing_root
    from rigtui.commands._common import print_json

    if args.model or args.profile:
        err("plan: --params sizes a model without a file; give either MODEL.gguf or --params")
        return EXIT_USAGE
    try:
        params = parse_count(args.params)
        if not args.bits:
            raise WhatIfError("--params needs --bits (bits per weight, or a quant like Q4_K_M)")
        bits = parse_bits(args.bits)
        active = parse_count(args.active_params) if args.active_params else None
        gpus = parse_gpus(args.gpu)
        hypothetical = args.platform is not None or args.channels is not None or args.mts is not None
        topology = membench = None
        ram = ram_basis = None
        if not hypothetical:
            fs = make_fs(args)
            if why := missing_root(fs):
                err(why)
                return EXIT_USAGE
            topology = detect_topology(fs)
            membench = load_cached_membench(topology)
            ram, ram_basis = topology.memory.total_bytes, "read"
        if args.ram_gb is not None:
            ram, ram_basis = args.ram_gb * 1e9, "estimated"
        bandwidth, rig, notes = rig_bandwidth(
            topology=topology, membench=membench, platform=args.platform, sockets=args.sockets,
            ccds=args.ccds, channels=args.channels, mts=args.mts)  # fmt: skip
        plan = what_if(params=params, bits=bits, active_params=active, bandwidth=bandwidth,
                       rig=rig, ram_bytes=ram, ram_basis=ram_basis or "estimated", gpus=gpus,
                       disk_gbs=args.disk_gbs, notes=notes)  # fmt: skip
    except WhatIfError as exc:
        err(f"plan: {exc}")
        return EXIT_USAGE
    if args.json:
        print_json(plan)
    else:
        print_what_if(plan)
    return EXIT_FAILURE if plan.fits == "disk" else EXIT_OK


def print_what_if(plan) -> None:
    import textwrap

    from rich.console import Console
    from rich.markup import escape

    con = Console(highlight=False, soft_wrap=True)
    width = max(40, con.width)
    from rigtui.analysis.whatif import count_text

    moe = f", {count_text(plan.active_params)} active" if plan.active_params < plan.params else ""
    con.print(f"[bold]What if[/]: {count_text(plan.params)} params at {plan.bits:g} bits{moe} on "
              f"{escape(plan.rig)}")  # fmt: skip
    if plan.gpus:
        names: dict[str, int] = {}
        for n, *_ in plan.gpus:
            names[n] = names.get(n, 0) + 1
        con.print("  GPUs: " + ", ".join(f"{n} x{k}" if k > 1 else n for n, k in names.items()))

    def gb(v: float) -> str:
        return f"{v / 1e9:.1f} GB"

    def fig(label: str, f, fmt) -> None:
        val = "?" if f.value is None else fmt(f.value)
        con.print(f"  {label:<22}{val:>14}  {f.basis}")
        for line in textwrap.wrap(f.detail or "", width=width, initial_indent=" " * 6,
                                  subsequent_indent=" " * 6, break_on_hyphens=False):  # fmt: skip
            con.print(f"[dim]{escape(line)}[/]")

    fig("weights", plan.weights_bytes, gb)
    fig("read per token", plan.bytes_per_token, gb)
    fig("memory", plan.ram_bytes, gb)
    if plan.gpus:
        fig("usable VRAM", plan.vram_bytes, gb)
    fit = {"vram": "in the GPUs' VRAM", "ram": "in RAM", "ram+vram": "in RAM and VRAM together",
           "disk": "NOT in RAM and VRAM: streamed from the disk", "unknown": "unknown (no RAM size: --ram-gb)"}  # fmt: skip
    con.print(f"  fits                  {fit[plan.fits]}")
    con.print("\n[bold]Ceilings[/]")
    fig("memory bandwidth", plan.bandwidth_gbs, lambda v: f"{v:.1f} GB/s")
    fig("CPU only", plan.cpu_only_tok_s, lambda v: f"{v:.2f} tok/s")
    if plan.gpus:
        fig("full offload", plan.full_offload_tok_s, lambda v: f"{v:.2f} tok/s")
        fig("hybrid", plan.hybrid_tok_s, lambda v: f"{v:.2f} tok/s")
    fig("streamed from disk", plan.disk_s_per_token, lambda v: f"{v:g} s/token")
    for n in plan.notes:
        for line in textwrap.wrap(f"note: {n}", width=width, initial_indent="  ",
                                  subsequent_indent="    "):  # fmt: skip
            con.print(f"[yellow]{escape(line)}[/]")


def run(args: argparse.Namespace) -> int:
    from rigtui.analysis.gguf_facts import GgufError
    from rigtui.analysis.plan import PlanError
    from rigtui.commands._analysis import detect_topology, err, missing_root, resolve_model
    from rigtui.commands._common import print_json

    if args.params is not None:
        return run_what_if(args)
    stray = [f"--{k.replace('_', '-')}" for k in (*_WHATIF_ONLY, "bits") if getattr(args, k, None)]
    if stray or args.gpu:
        err(f"plan: {', '.join(stray + ['--gpu'] * bool(args.gpu))} size a model without a file: "
            "add --params N --bits B")  # fmt: skip
        return EXIT_USAGE
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
        split = tuple(float(x) for x in args.tensor_split.split(",")) if args.tensor_split else None
    except ValueError:
        err(f"--tensor-split {args.tensor_split!r}: write ratios like 3,1")
        return EXIT_USAGE
    topology = detect_topology(fs)
    try:
        plan = plan_model(choice.path, prof, topology, fs, ctx=args.ctx, kv_type=args.kv_type,
                          n_gpu_layers=args.n_gpu_layers, tensor_split=split)  # fmt: skip
    except (GgufError, PlanError) as exc:
        err(str(exc))
        return EXIT_USAGE
    if fs.is_live and not args.no_llama_fit:
        plan = with_llama_fit(plan, choice.path, prof, topology)
    if args.json:
        print_json(plan)
    else:
        print_plan(plan)
    too_big = any(w.startswith("too big") for w in plan.warnings)
    return EXIT_FAILURE if too_big else EXIT_OK


def plan_model(path: str, prof, topology, fs, *, ctx: int | None = None,
               kv_type: str | None = None, n_gpu_layers: int | None = None,
               tensor_split: tuple[float, ...] | None = None):  # fmt: skip
    """The plan of the model at `path` on `topology`, with the profile's keys (`prof` may be
    None) unless an argument overrides one; the measured bandwidth from the bench cache, free
    VRAM from NVML. Raises GgufError (not a GGUF) and PlanError (impossible inputs)."""
    from rigtui.analysis.gguf_facts import read_gguf_facts
    from rigtui.analysis.membench_cache import load_cached_membench
    from rigtui.analysis.plan import make_plan

    facts = read_gguf_facts(path)
    split = tensor_split if tensor_split is not None else (prof.tensor_split if prof else None)
    kv_k = kv_type or (prof.cache_type_k if prof else "f16")
    kv_v = kv_type or (prof.cache_type_v if prof else "f16")
    ngl = n_gpu_layers if n_gpu_layers is not None else (prof.gpu_layers if prof else 0)
    nodes = None
    if prof is not None and prof.memory_policy == "bind":
        nodes = prof.memory_nodes or prof.nodes
    return make_plan(
        facts, topology, n_ctx=ctx or (prof.ctx if prof else None), kv_type_k=kv_k,
        kv_type_v=kv_v, n_gpu_layers=ngl, tensor_split=split,
        flash_attn=bool(prof.flash_attn) if prof else False,
        n_ubatch=prof.ubatch if prof else 512, threads=prof.threads if prof else None,
        nodes=nodes, membench=load_cached_membench(topology),
        vram_free=_vram_free(fs, topology),
        profile=prof.name if prof else None,
        override_tensors=prof.override_tensors if prof else (),
        n_cpu_moe=prof.n_cpu_moe if prof else None,
    )  # fmt: skip


def with_llama_fit(plan, path: str, prof, topology):
    """The plan with llama.cpp's own estimate of the same arguments beside it, where a
    llama-fit-params is found (next to the profile's `binary`, on PATH, rigtui's build); the
    plan unchanged otherwise (`llama_fit` None: nothing to compare with is not a finding)."""
    from dataclasses import replace

    from rigtui.analysis.llama_fit_compare import compare
    from rigtui.engine.llama_fit import llama_fit
    from rigtui.engine.llama_server import find_binary
    from rigtui.engine.server_build import FIT_NAME

    sibling = None
    if prof is not None and prof.binary:
        sibling = os.path.join(os.path.dirname(os.path.expanduser(prof.binary)), FIT_NAME)
    found = find_binary(FIT_NAME, sibling if sibling and os.path.exists(sibling) else None)
    if found.path is None:
        return plan
    fit = llama_fit(found.path, path, ctx=plan.n_ctx, n_gpu_layers=plan.n_gpu_layers,
                    override_tensors=prof.override_tensors if prof else (),
                    n_cpu_moe=prof.n_cpu_moe if prof else None, cache_type_k=plan.kv_type_k,
                    cache_type_v=plan.kv_type_v, ubatch=prof.ubatch if prof else 512,
                    flash_attn=bool(prof.flash_attn) if prof else False,
                    fit_gpu=bool(plan.fit["gpus"] or topology.gpus))  # fmt: skip
    return replace(plan, llama_fit=fit, llama_fit_notes=compare(plan, fit))


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
    if len(plan.placements) > 1:
        print_placements(con, plan.placements, width)
    if plan.use_cases:
        con.print("\n[bold]Use cases[/] (the hardware guide's; at these ceilings, estimated)")
        for u in plan.use_cases:
            ttft = f"{u.ttft_s:.1f} s" if u.ttft_s is not None else "?"
            gen = f"{u.gen_tok_s:.1f} tok/s" if u.gen_tok_s is not None else "?"
            style = {"interactive": "green", "background": "yellow", "offline": "yellow",
                     "non-viable": "red"}.get(u.verdict, "dim")  # fmt: skip
            con.print(f"  {u.id} {u.prompt_tokens:>5} in / {u.gen_tokens:<5} out  prompt {ttft:>8}"
                      f"  gen {gen:>12}  [{style}]{u.verdict}[/]  [dim]{escape(u.what)}[/]")  # fmt: skip
            if u.basis != "estimated":
                con.print(f"      [dim]{escape(u.basis)}[/]")
    if plan.llama_fit is not None:
        fit = plan.llama_fit
        con.print("\n[bold]llama.cpp's own estimate[/] (llama-fit-params, the same arguments)")
        for d in fit.devices:
            con.print(f"  {escape(d.name):<8} weights {_b(d.model_bytes)}, KV {_b(d.context_bytes)}, "
                      f"compute {_b(d.compute_bytes)}")  # fmt: skip
        if fit.fitted:
            con.print(f"  its fit for the GPUs: {escape(fit.fitted)}")
        elif fit.fit_reason:
            con.print(f"  [dim]{escape(fit.fit_reason)}[/]")
        for note in plan.llama_fit_notes:
            for i, line in enumerate(textwrap.wrap(note, width=width - 4, subsequent_indent="  ")):
                con.print(f"  [dim]{escape(line)}[/]" if i else f"  {escape(line)}")
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


def print_placements(con, placements, width: int) -> None:
    """One line per placement (the suggested one starred): fit, bytes on the GPUs and in RAM,
    the generation ceiling; beneath it the llama-server flags that give it."""
    import textwrap

    from rich.markup import escape

    con.print("\n[bold]Placements[/] (generation ceiling of each; * suggested)")
    for p in placements:
        tg = f"{p.tg_tok_s.value:.1f} tok/s" if p.tg_tok_s.value else "? tok/s"
        fit = "[green]fits[/]" if p.fits else "[red]does not fit[/]"
        star = "[bold]*[/]" if p.suggested else " "
        for i, line in enumerate(textwrap.wrap(p.title, width=width - 4, subsequent_indent="  ")):
            con.print(f"  {star if i == 0 else ' '} {escape(line)}")
        con.print(f"      {fit}  GPUs {_b(p.gpu_bytes)}  RAM {_b(p.cpu_bytes)}  {tg}")
        if p.pp_tok_s is not None and p.pp_tok_s.value:
            con.print(f"      prompt <= {p.pp_tok_s.value:,.0f} tok/s (RAM side streamed over PCIe)")
        for line in textwrap.wrap(" ".join(p.flags), width=width, initial_indent=" " * 6,
                                  subsequent_indent=" " * 8, break_on_hyphens=False):  # fmt: skip
            con.print(f"[dim]{escape(line)}[/]")


def _toml_value(v: object) -> str:
    """As the profile file would spell it (true, "interleave", [0, 1]), so it can be pasted."""
    import json

    return json.dumps(v) if isinstance(v, (bool, str, list, tuple)) else str(v)
