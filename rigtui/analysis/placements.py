"""Where a model's tensors can go on this machine's CPU and GPUs, and what each choice gives
(pure): CPU only, full offload, the MoE hybrid, a partial offload of whole layers.

The MoE hybrid is what llama-server users run on a GPU too small for the model: every layer
"offloaded" (`--n-gpu-layers all`), so attention, the shared experts, the router and the KV
cache sit in VRAM, while the routed experts of the first N layers stay in RAM
(`--n-cpu-moe N`; `--override-tensor exps=CPU` for all of them). Only n_used of n_experts of
those are read per token, so the CPU side reads little and the GPU does the rest. rigtui picks
the smallest N that fits the VRAM it finds (the most whole layers' experts on the GPUs); where
even all experts in RAM do not fit, the last layers' remainder that fits goes to the GPUs.

With GPUs, llama.cpp processes prompts on them even for the weights kept in RAM, copying those
over PCIe once per ubatch: each placement with GPU layers carries that prompt-speed bound.

Each placement's ceiling comes from the plan itself (`plan_for`), so the figures here are the
ones `rigtui plan -ngl ... --profile` would print for it. Across several GPUs llama.cpp's
default split (layers in proportion to free memory) does not see the experts a placement keeps
in RAM; where it does not fit, the placement carries a split filled in layer order
(plan_sizes.fill_split) that does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rigtui.analysis.plan_sizes import fill_split, gpu_fits
from rigtui.analysis.tensor_overrides import layer_expert_bytes
from rigtui.model.analysis import Figure, GgufFacts, Placement, Plan
from rigtui.model.topology import Topology

ALL_EXPERTS = "exps=CPU"
# when ceilings cannot rank them (a GPU not in rigtui's bandwidth table), prefer in this order
_PREFERENCE = ("full", "moe-hybrid", "partial", "cpu")

# (n_gpu_layers, override_tensors, n_cpu_moe, tensor_split or None for the plan's own) -> Plan
PlanFor = Callable[[int, Sequence[str], int | None, Sequence[float] | None], Plan]


def _gpus_fit(facts: GgufFacts, topology: Topology, ngl: int, moved: Mapping[int, int],
              kv_layers: Sequence[int], compute: int, split: Sequence[float] | None,
              vram_free: Mapping[int, int] | None) -> bool:  # fmt: skip
    fits = gpu_fits(facts, topology, ngl, kv_layers, compute, split, vram_free,
                    cpu_layer_bytes=moved)  # fmt: skip
    return bool(fits) and all(f.fits for f in fits)


def prompt_stream(facts: GgufFacts, topology: Topology, ram_weights: int, n_ubatch: int
                  ) -> Figure:  # fmt: skip
    """Prompt speed bound of a placement with GPUs: llama.cpp runs a batch of >= 32 tokens on
    the GPU even where the weights sit in RAM (ggml's op offload), copying those weights over
    PCIe for every ubatch, so tok/s <= ubatch x PCIe GB/s / the RAM side's weights (the token
    embedding table is read row by row and stays). A larger --ubatch-size amortizes it."""
    from rigtui.analysis.gpu_specs import pcie_bandwidth

    gpus = [g for g in topology.gpus if g.memory_total_bytes]
    streamed = ram_weights - facts.token_embd_bytes
    if streamed <= 0:
        return Figure(None, "estimated", "nothing streamed: every weight is on the GPUs (GPU "
                      "compute bounds the prompt; rigtui has no GPU FLOPS figure)", "tok/s")  # fmt: skip
    link = pcie_bandwidth(gpus[0]) if gpus else None
    if link is None:
        return Figure(None, "estimated", "PCIe link of GPU 0 unknown", "tok/s")
    gbs, words = link
    return Figure(n_ubatch * gbs * 1e9 / streamed, "estimated",
                  f"{n_ubatch}-token ubatches on the GPU, {streamed / 1e9:.2f} GB of RAM-side "
                  f"weights streamed over GPU {gpus[0].index}'s {words} each", "tok/s")  # fmt: skip


def _one(kind: str, title: str, ngl: int, n_cpu_moe: int | None,
         override_tensors: tuple[str, ...], plan_for: PlanFor,
         stream: Callable[[int], Figure] | None = None,
         split: tuple[int, ...] | None = None) -> Placement:  # fmt: skip
    plan = plan_for(ngl, override_tensors, n_cpu_moe, split)
    gpus = plan.fit["gpus"]
    gpu_ok = all(f.fits for f in gpus) if gpus else ngl == 0
    ram_ok = not any(w.startswith("too big") for w in plan.warnings)
    flags = ["--n-gpu-layers", "all" if ngl < 0 else str(ngl)]
    keys: dict[str, Any] = {}
    if override_tensors or n_cpu_moe:
        keys["engine"] = "llama-server"  # the embedded engine has no tensor overrides
    keys["gpu_layers"] = ngl
    for entry in override_tensors:
        flags += ["--override-tensor", entry]
    if override_tensors:
        keys["override_tensors"] = list(override_tensors)
    if n_cpu_moe:
        flags += ["--n-cpu-moe", str(n_cpu_moe)]
        keys["n_cpu_moe"] = n_cpu_moe
    if split is not None:
        flags += ["--tensor-split", ",".join(map(str, split))]
        keys["tensor_split"] = list(split)
    return Placement(kind=kind, title=title, gpu_layers=ngl, n_cpu_moe=n_cpu_moe,
                     override_tensors=override_tensors, fits=gpu_ok and ram_ok,
                     gpu_bytes=plan.fit["gpu_bytes"], cpu_bytes=plan.fit["cpu_bytes"],
                     tg_tok_s=plan.predicted_tg_tok_s, flags=tuple(flags), profile=keys,
                     pp_tok_s=stream(plan.fit["cpu_weight_bytes"]) if stream and ngl else None)  # fmt: skip


def find_placements(
    facts: GgufFacts,
    topology: Topology,
    *,
    kv_layers: Sequence[int],
    compute: int,
    split: Sequence[float] | None,
    vram_free: Mapping[int, int] | None,
    plan_for: PlanFor,
    n_ubatch: int = 512,
) -> tuple[Placement, ...]:
    """The placements worth comparing on this machine, the best fitting one `suggested`."""
    n_layer = len(facts.layer_bytes)
    out = [_one("cpu", "CPU only", 0, None, (), plan_for)]
    gpus = [g for g in topology.gpus if g.memory_total_bytes]
    if not gpus:
        return _suggest(out)

    # several GPUs and no split asked: where llama.cpp's default (by free memory) does not fit,
    # a split filled in layer order may (n_cpu_moe leaves the first layers light)
    tune = len(gpus) > 1 and not split

    def stream(ram_weights: int) -> Figure:
        return prompt_stream(facts, topology, ram_weights, n_ubatch)

    def default_fits(ngl: int, moved: Mapping[int, int]) -> bool:
        return _gpus_fit(facts, topology, ngl, moved, kv_layers, compute, split, vram_free)

    def tuned(ngl: int, moved: Mapping[int, int]) -> tuple[int, ...] | None:
        return fill_split(facts, topology, ngl, kv_layers, compute, vram_free, moved) if tune else None

    def fit(ngl: int, moved: Mapping[int, int]) -> bool:
        return default_fits(ngl, moved) or tuned(ngl, moved) is not None

    def place(kind: str, title: str, ngl: int, ncm: int | None, ot: tuple[str, ...],
              moved: Mapping[int, int]) -> Placement:  # fmt: skip
        sp = None if default_fits(ngl, moved) else tuned(ngl, moved)
        return _one(kind, title, ngl, ncm, ot, plan_for, stream=stream, split=sp)

    full = place("full", "full offload: every layer on the GPUs", -1, None, (), {})
    out.append(full)
    if full.fits:
        return _suggest(out)

    exps = layer_expert_bytes(facts.tensors)
    if exps:
        layers = sorted(exps)
        # the smallest N whose first N layers' experts in RAM let every layer's rest fit
        n = next((k for k in range(1, layers[-1] + 2)
                  if fit(-1, {i: b for i, b in exps.items() if i < k})), None)  # fmt: skip
        if n is not None and n <= layers[-1]:
            held = sum(1 for i in layers if i < n)
            which = f"layer {n - 1}" if n == 1 else f"layers 0-{n - 1}"
            out.append(place(
                "moe-hybrid", f"MoE hybrid: experts of {which} in RAM ({held} of {len(layers)} "
                "MoE layers), the rest on the GPUs", -1, n, (),
                {i: b for i, b in exps.items() if i < n}))  # fmt: skip
        elif n is not None:
            out.append(place(
                "moe-hybrid", "MoE hybrid: all routed experts in RAM, the rest on the GPUs", -1,
                None, (ALL_EXPERTS,), exps))  # fmt: skip
        else:
            k = next((k for k in range(n_layer, 1, -1) if fit(k, exps)), 0)
            if k:
                out.append(place(
                    "moe-hybrid", f"MoE hybrid: all routed experts in RAM, the output and the "
                    f"rest of the last {k - 1} of {n_layer} layers on the GPUs", k, None,
                    (ALL_EXPERTS,), exps))  # fmt: skip
    k = next((k for k in range(n_layer, 0, -1) if fit(k, {})), 0)
    if k:
        what = (f"the output and the last {k - 1} of {n_layer} layers" if k > 1
                else "the output matrix alone")  # fmt: skip
        out.append(place("partial", f"partial offload: {what} on the GPUs", k, None, (), {}))
    return _suggest(out)


def _suggest(options: list[Placement]) -> tuple[Placement, ...]:
    """Mark the fitting placement with the highest generation ceiling; where a ceiling is
    unknown, the one furthest along _PREFERENCE's order."""
    from dataclasses import replace

    fitting = [p for p in options if p.fits]
    if not fitting:
        return tuple(options)
    known = all(p.tg_tok_s.value for p in fitting)
    if known:
        best = max(fitting, key=lambda p: p.tg_tok_s.value or 0.0)
        why = "fits, with the highest generation ceiling of these"
    else:
        best = min(fitting, key=lambda p: _PREFERENCE.index(p.kind))
        why = "fits, with the most of the model on the GPUs (no ceiling to rank by: a GPU " \
              "without a bandwidth figure)"
    if len(options) == 1:
        why = "no GPU with known memory"
    return tuple(replace(p, suggested=True, why=why) if p is best else p for p in options)
