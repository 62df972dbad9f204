"""Which tensors a profile's `override_tensors` (-ot) and `n_cpu_moe` send where (pure).

llama.cpp's rule (src/llama-model-loader.cpp): for each weight it tries the override patterns
in order, `std::regex_search` on the tensor name, and the first match sets the buffer type;
`--n-cpu-moe N` appends the patterns `blk\\.I\\.ffn_(up|down|gate|gate_up)_(ch|)exps` = CPU for
I < N after the `-ot` ones (common/common.h `llm_add_n_cpu_ffn_overrides`). Unmatched tensors
stay where `gpu_layers` puts their layer. Python's `re.search` agrees with ECMAScript regexes
for the patterns people write here (dots, classes, alternations, anchors).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

EXPS_REGEX = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class OverrideGroup:
    """The tensors one override pattern took: where to, how many, how big, a few names."""

    pattern: str
    buffer_type: str
    source: str  # "override_tensors" | "n_cpu_moe"
    tensors: int
    bytes: int
    examples: tuple[str, ...]

    @property
    def to_cpu(self) -> bool:
        return self.buffer_type.upper().startswith("CPU")


def override_patterns(override_tensors: Sequence[str], n_cpu_moe: int | None
                      ) -> list[tuple[str, str, str]]:  # fmt: skip
    """(pattern, buffer type, source) in the order llama.cpp tries them."""
    out = []
    for entry in override_tensors:
        pattern, _, buft = entry.rpartition("=")
        out.append((pattern, buft, "override_tensors"))
    for i in range(n_cpu_moe or 0):
        out.append((rf"blk\.{i}{EXPS_REGEX}", "CPU", "n_cpu_moe"))
    return out


def is_routed_expert(name: str) -> bool:
    """A routed-expert tensor (`blk.N.ffn_up_exps.weight`): only n_used of n_experts of it is
    read per token. Shared experts (`_shexp`) and the router (`ffn_gate_inp`) are read whole.
    The same test as GgufFacts.expert_bytes."""
    return "_exps." in name


def layer_expert_bytes(tensors: Sequence[tuple[str, int]]) -> dict[int, int]:
    """{layer: bytes of its routed experts}, only layers that have some."""
    out: dict[int, int] = {}
    for name, nbytes in tensors:
        m = _LAYER_RE.match(name)
        if m and is_routed_expert(name):
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + nbytes
    return out


def place_tensors(tensors: Sequence[tuple[str, int]], override_tensors: Sequence[str],
                  n_cpu_moe: int | None = None
                  ) -> tuple[list[OverrideGroup], dict[int, int], dict[int, int]]:  # fmt: skip
    """(the groups each pattern took, {layer: bytes an override moved to the CPU}, {layer: the
    routed-expert part of those bytes})."""
    patterns = [(re.compile(p), p, b, s) for p, b, s in override_patterns(override_tensors, n_cpu_moe)]
    counts: dict[int, list] = {i: [0, 0, []] for i in range(len(patterns))}
    to_cpu: dict[int, int] = {}
    experts: dict[int, int] = {}
    for name, nbytes in tensors:
        for i, (rx, _, buft, _) in enumerate(patterns):
            if rx.search(name):
                c = counts[i]
                c[0] += 1
                c[1] += nbytes
                if len(c[2]) < 3:
                    c[2].append(name)
                m = _LAYER_RE.match(name)
                if m and buft.upper().startswith("CPU"):
                    layer = int(m.group(1))
                    to_cpu[layer] = to_cpu.get(layer, 0) + nbytes
                    if is_routed_expert(name):
                        experts[layer] = experts.get(layer, 0) + nbytes
                break
    groups = []
    for i, (_, pattern, buft, source) in enumerate(patterns):
        n, b, names = counts[i]
        if source == "n_cpu_moe" and n == 0:
            continue  # a layer without experts (dense first layers of some MoE models)
        groups.append(OverrideGroup(pattern, buft, source, n, b, tuple(names)))
    if n_cpu_moe:  # the n_cpu_moe patterns read as one group, not one per layer
        moe = [g for g in groups if g.source == "n_cpu_moe"]
        rest = [g for g in groups if g.source != "n_cpu_moe"]
        if moe:
            names = tuple(n for g in moe for n in g.examples)[:3]
            rest.append(OverrideGroup(f"blk.0..{n_cpu_moe - 1} experts ({EXPS_REGEX})", "CPU",
                                      "n_cpu_moe", sum(g.tensors for g in moe),
                                      sum(g.bytes for g in moe), names))  # fmt: skip
        groups = rest
    return groups, to_cpu, experts
