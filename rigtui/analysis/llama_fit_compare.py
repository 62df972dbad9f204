"""rigtui's plan beside llama.cpp's own estimate of the same arguments (pure).

`llama-fit-params --fit-print on` (rigtui.engine.llama_fit) says what llama.cpp would allocate
per device: model, context (KV cache) and compute buffers, in MiB. rigtui's figures are
formulas over the GGUF header (rigtui.analysis.plan_sizes); where the two differ by more than
`TOLERANCE` (and more than a rounding's worth), the plan says so with both figures, so a user
sizing VRAM to the last GiB knows which to trust: llama.cpp's own is the one it will allocate.
"""

from __future__ import annotations

from rigtui.model.analysis import LlamaFit, Plan

TOLERANCE = 0.10
SLACK = 16 << 20  # whole-MiB printing and padding: below this a difference is noise


def _mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def compare(plan: Plan, fit: LlamaFit) -> tuple[str, ...]:
    """One line per figure where rigtui and llama.cpp disagree, or one saying they agree."""
    if fit.reason or not fit.devices:
        return (fit.reason or "llama-fit-params gave no estimate",)
    gpus = [d for d in fit.devices if d.name != "Host"]
    pairs = [
        ("weights", plan.weights_bytes.value, sum(d.model_bytes for d in fit.devices)),
        ("KV cache", plan.kv_cache_bytes.value, sum(d.context_bytes for d in fit.devices)),
        ("compute buffers", plan.compute_buffer_bytes.value,
         sum(d.compute_bytes for d in fit.devices)),
    ]  # fmt: skip
    if plan.fit.get("gpus"):
        pairs.append(("on the GPUs", plan.fit["gpu_bytes"],
                      sum(d.model_bytes + d.context_bytes + d.compute_bytes for d in gpus)))  # fmt: skip
    notes = []
    for what, ours, theirs in pairs:
        if ours is None:
            continue
        diff = theirs - ours
        if abs(diff) > SLACK and abs(diff) > TOLERANCE * max(ours, theirs):
            pct = 100 * diff / ours if ours else 0.0
            notes.append(f"{what}: llama.cpp {_mib(theirs)}, rigtui {_mib(ours)} "
                         f"({pct:+.0f}%): llama.cpp's is what it will allocate")  # fmt: skip
    if not notes:
        notes.append(f"llama.cpp's own estimate agrees with rigtui's within {TOLERANCE:.0%} "
                     "(weights, KV cache, compute buffers)")  # fmt: skip
    return tuple(notes)
