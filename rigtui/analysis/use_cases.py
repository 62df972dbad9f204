"""Use-case verdicts: what a model's speed ceilings mean for the work people do with it.

The use cases and the levels are the local-ML hardware guide's (../shared/notes, after the
LocalScore benchmark): a prompt and an answer length per use case, and

- interactive: the prompt is read in under 5 s and the answer comes at more than 10 tok/s;
- background: prompt plus answer within 300 s;
- offline: within a night (12 h here: the guide says "a few hours / overnight");
- non-viable: longer.

Generation slows as the context fills (every token reads the whole KV cache), so each use case
generates at the depth of the middle of its answer: prompt + answer / 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# (id, what, prompt tokens, generated tokens), the guide's table
USE_CASES: tuple[tuple[str, str, int, int], ...] = (
    ("UC1", "classification, sentiment analysis, keyword extraction", 1024, 16),
    ("UC2", "long document Q&A, RAG, short summary of extensive text", 4096, 256),
    ("UC3", "complex reasoning, chain of thought, long-form writing, code", 1280, 3072),
    ("UC4", "prompt expansion, explanation, creative writing, code", 384, 1152),
)
INTERACTIVE_TTFT_S, INTERACTIVE_TOK_S = 5.0, 10.0
BACKGROUND_S, OFFLINE_S = 300.0, 12 * 3600.0


@dataclass(frozen=True)
class UseCaseVerdict:
    id: str
    what: str
    prompt_tokens: int
    gen_tokens: int
    ttft_s: float | None  # prompt tokens / prompt speed
    gen_tok_s: float | None  # generation speed at the middle of the answer
    total_s: float | None
    verdict: str  # "interactive" | "background" | "offline" | "non-viable" | "unknown"
    basis: str = "estimated"


def level(ttft_s: float | None, gen_tok_s: float | None, total_s: float | None) -> str:
    if ttft_s is None or gen_tok_s is None or total_s is None:
        return "unknown"
    if ttft_s < INTERACTIVE_TTFT_S and gen_tok_s > INTERACTIVE_TOK_S:
        return "interactive"
    if total_s <= BACKGROUND_S:
        return "background"
    if total_s <= OFFLINE_S:
        return "offline"
    return "non-viable"


def verdicts(pp_tok_s: float | None, tg_at_depth: Callable[[int], float | None],
             max_ctx: int | None = None) -> tuple[UseCaseVerdict, ...]:  # fmt: skip
    """One verdict per use case from a prompt speed and the generation speed at a depth."""
    out = []
    for uc, what, n_p, n_g in USE_CASES:
        if max_ctx is not None and n_p + n_g > max_ctx:
            out.append(UseCaseVerdict(uc, what, n_p, n_g, None, None, None, "unknown",
                                      f"needs {n_p + n_g} tokens of context, the model was "
                                      f"trained for {max_ctx}"))  # fmt: skip
            continue
        ttft = n_p / pp_tok_s if pp_tok_s else None
        tg = tg_at_depth(n_p + n_g // 2)
        total = ttft + n_g / tg if ttft is not None and tg else None
        out.append(UseCaseVerdict(uc, what, n_p, n_g, ttft, tg, total, level(ttft, tg, total)))
    return tuple(out)


GEN_PROBE = 32  # tokens generated to time an answer's speed (the use cases' answers run to 3072)


def measurement_tests(gen_probe: int = GEN_PROBE) -> list[tuple[str, tuple[int, int, int],
                                                             tuple[int, int, int]]]:  # fmt: skip
    """What `rigtui bench --use-cases` runs per use case: (id, the prompt read from an empty
    context, a short generation at the depth of the middle of its answer), each as a bench
    request (n_prompt, n_gen, depth)."""
    return [(uc, (n_p, 0, 0), (0, min(n_g, gen_probe), n_p + n_g // 2))
            for uc, _what, n_p, n_g in USE_CASES]  # fmt: skip


def measured_verdicts(speeds: dict[str, tuple[float | None, float | None]],
                      detail: Callable[[str], str]) -> tuple[UseCaseVerdict, ...]:  # fmt: skip
    """Verdicts from measured speeds: {id: (prompt tok/s, generation tok/s at mid-answer)};
    `detail(id)` says what was timed."""
    out = []
    for uc, what, n_p, n_g in USE_CASES:
        pp, tg = speeds.get(uc, (None, None))
        ttft = n_p / pp if pp else None
        total = ttft + n_g / tg if ttft is not None and tg else None
        out.append(UseCaseVerdict(uc, what, n_p, n_g, ttft, tg, total, level(ttft, tg, total),
                                  f"measured: {detail(uc)}"))  # fmt: skip
    return tuple(out)
