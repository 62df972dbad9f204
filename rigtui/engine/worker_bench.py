"""The worker's `bench` request: llama-bench's pp and tg tests on the loaded model.

Runs inside the worker child (it is handed the `llama_cpp.Llama` object; it never imports
llama_cpp itself). pp: one batch-evaluated random prompt of n_prompt tokens; tg: n_gen
single-token decodes from an empty context (what llama-bench's tg measures), or from a context
already `n_depth` tokens deep (llama-bench's -d).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from rigtui.model.engine import BenchResult, Error


def bench(
    llm: Any,
    req: dict[str, Any],
    cfg: dict[str, Any],
    cancelled: Callable[[int], bool],
    emit: Callable[..., None],
) -> None:
    """llama-bench's pp and tg tests: random tokens, one untimed warm-up, `reps` timed runs."""
    n_prompt, n_gen, reps = (
        int(req.get("n_prompt", 512)),
        int(req.get("n_gen", 128)),
        int(req.get("reps", 5)),
    )
    depth = max(0, int(req.get("n_depth", 0)))
    n_vocab = llm.n_vocab()
    rng = random.Random(1234)
    need = depth + max(n_prompt, n_gen + 1)
    if need > llm.n_ctx():
        emit(Error, message=f"bench needs a context of {need} tokens, the engine has {llm.n_ctx()}",
             kind="bad-request", hint="raise ctx")  # fmt: skip
        return
    # llama-bench's -d: the context already holds `depth` tokens (a long chat, a document),
    # written untimed in batches, so the test reads that much KV cache per token
    prefix = [rng.randrange(n_vocab) for _ in range(depth)]
    rapl = _rapl()
    for test, n in (("pp", n_prompt), ("tg", n_gen)):
        if n <= 0:
            continue
        samples: list[float] = []
        joules: float | None = 0.0 if rapl is not None and rapl.zones else None
        for rep in range(reps + 1):
            if cancelled(req["seq"]):
                return
            tokens = [rng.randrange(n_vocab) for _ in range(n)]
            llm.reset()
            if prefix:
                llm.eval([llm.token_bos(), *prefix[1:]])
            if test == "tg" and not prefix:
                llm.eval([llm.token_bos()])
            e0 = rapl.read() if rapl is not None and rep > 0 else None
            t0 = time.perf_counter()
            if test == "pp":
                llm.eval(tokens)
            else:
                for tok in tokens:
                    llm.eval([tok])
            dt = time.perf_counter() - t0
            if rep > 0:  # rep 0 warms caches and pages the weights in
                samples.append(dt)
                joules = _add_joules(rapl, joules, e0)
        threads = cfg["plan"]["batch_threads" if test == "pp" else "threads"]
        emit(BenchResult, test=test, n_prompt=n if test == "pp" else 0, n_gen=n if test == "tg" else 0,
             n_threads=threads, samples_s=tuple(samples), n_depth=depth,
             energy_j=round(joules, 4) if joules else None,
             energy=(f"measured: {rapl.describe()}, the whole package(s) over the timed "
                     "repetitions" if joules else (rapl.reason if rapl else "")) or "")  # fmt: skip


def _rapl() -> Any:
    """The machine's RAPL zones (tok/J in the rows); without any, their absence explained."""
    from rigtui.hostfs import HostFS
    from rigtui.probes.rapl import Rapl

    return Rapl(HostFS("/"))  # no zones: `reason` says why, read() gives None


def _add_joules(rapl: Any, total: float | None, e0: Any) -> float | None:
    """`total` plus the joules since `e0`; None once a reading fails (no partial sums)."""
    if rapl is None or total is None or e0 is None:
        return None
    e1 = rapl.read()
    used = rapl.joules(e0, e1) if e1 is not None else None
    return total + sum(used.values()) if used else None
