"""Does a profile's model with its context fit this machine's memory? For `profiles check`.

The profile layer checks the file (a complete GGUF, smaller than RAM); the KV cache needs the
model's shape (layers, KV heads, head sizes), which the `gguf`-based facts here have. A ctx
whose cache is beyond RAM (plus GPU memory) cannot load: llama.cpp fails to allocate it, or
the kernel's OOM killer ends the load halfway. Say so before, with the ctx that would fit.
"""

from __future__ import annotations

from rigtui.analysis.gguf_facts import GgufError, read_gguf_facts
from rigtui.analysis.plan_sizes import PlanError, kv_bytes_per_layer
from rigtui.model.profile import Profile, ProfileIssue
from rigtui.model.topology import Topology


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def memory_fit_issues(profile: Profile, topology: Topology, file: str,
                      line: int | None) -> list[ProfileIssue]:  # fmt: skip
    """An error when weights + KV cache exceed RAM + GPU memory, a warning when they exceed
    what is available now; `file`/`line` locate the profile's ctx. Demo models are skipped
    (made on first use); an unreadable model is the profile check's to report."""
    if profile.is_demo or not topology.memory.total_bytes:
        return []
    try:
        facts = read_gguf_facts(profile.model)
        n_ctx = profile.ctx or facts.n_ctx_train or 0
        per_layer = kv_bytes_per_layer(facts, 1, profile.cache_type_k, profile.cache_type_v)
    except (GgufError, PlanError, OSError):
        return []
    if not per_layer or n_ctx <= 0:
        return []
    per_cell = sum(per_layer)
    kv = per_cell * n_ctx
    gpu = sum(g.memory_total_bytes or 0 for g in topology.gpus) if profile.gpu_layers else 0
    budget = topology.memory.total_bytes + gpu
    need = facts.file_bytes + kv
    types = (profile.cache_type_k if profile.cache_type_k == profile.cache_type_v
             else f"{profile.cache_type_k}/{profile.cache_type_v}")  # fmt: skip
    what = (f"ctx {n_ctx}{' (the model’s training context: ctx = 0)' if not profile.ctx else ''} "
            f"needs a {types} KV cache of {_gib(kv)}; with the {_gib(facts.file_bytes)} model that "
            f"is {_gib(need)}")  # fmt: skip
    fits = max(0, (budget - facts.file_bytes) // per_cell) // 256 * 256
    hint = (f"lower ctx (up to ~{fits} fits)" if fits >= 256 else "use a smaller model")
    if profile.cache_type_v in ("f16", "f32", "bf16"):
        hint += ', or quantize the cache: cache_type_k = cache_type_v = "q8_0" with flash_attn = true'
    if need > budget:
        room = f"this machine's RAM ({_gib(topology.memory.total_bytes)})"
        if gpu:
            room += f" and GPU memory ({_gib(gpu)})"
        return [ProfileIssue(file, line, "ctx", f"{what}, more than {room}: it cannot load", hint)]
    avail = topology.host.mem_available_bytes
    if avail and not gpu and need > avail:
        return [ProfileIssue(file, line, "ctx", f"{what}, more than the {_gib(avail)} available "
                             "now: pages would be evicted or the load killed", hint, "warning")]  # fmt: skip
    return []
