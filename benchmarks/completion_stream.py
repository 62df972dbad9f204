"""llama-cpp-python's streaming completion (what the embedded endpoint runs per request) with and
without rigtui's PieceCache, each against the plain `Llama.generate` loop, in one process.

    .venv/bin/python benchmarks/completion_stream.py [--size 8M] [--threads N] [--n-gen 256]
                                                     [--reps 3] [--rounds 4]

`create_completion(stream=True)` detokenizes every token generated so far for each new one
(stop strings, UTF-8 splits): a ctypes call per token per step, a cost that grows with the
answer. serve_embedded.PieceCache looks each token's piece up once. A: create_completion with
the cache (as `rigtui serve` runs it), B: plain generate; then the same with A uncached. A small
model makes the per-token Python cost visible: on a big one it is the same microseconds out of
a longer token. No HTTP, no client: benchmarks/serve_overhead.py measures the whole path.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from generation_path import PROMPT, abba_rounds, bench_args  # noqa: E402

_LLM: dict[str, object] = {}


def _llm(model: Path, threads: int):
    if "llm" not in _LLM:
        from llama_cpp import Llama

        _LLM["llm"] = Llama(str(model), n_ctx=2048, n_threads=threads, verbose=False, seed=1)
        _LLM["original"] = _LLM["llm"]._model.detokenize
    return _LLM["llm"]


def run_completion(model: Path, threads: int, n_gen: int, reps: int, cached: bool) -> list[float]:
    from rigtui.engine.serve_embedded import PieceCache

    llm = _llm(model, threads)
    llm._model.detokenize = PieceCache(llm._model).detokenize if cached else _LLM["original"]
    out = []
    for _ in range(reps):
        llm.reset()
        stamps = [time.perf_counter() for _ in llm.create_completion(
            PROMPT, max_tokens=n_gen, stream=True, top_k=40, top_p=0.95, min_p=0.05,
            temperature=0.8, repeat_penalty=1.0, seed=1)]  # fmt: skip
        out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return out


def run_generate(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    llm = _llm(model, threads)
    tokens = llm.tokenize(PROMPT.encode())
    out = []
    for _ in range(reps):
        llm.reset()
        stamps = []
        for _tok in llm.generate(tokens, top_k=40, top_p=0.95, min_p=0.05, temp=0.8,
                                 repeat_penalty=1.0):  # fmt: skip
            stamps.append(time.perf_counter())
            if len(stamps) >= n_gen:
                break
        out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return out


def main() -> int:
    args = bench_args(__doc__, size="8M", n_gen=256)
    from rigtui.engine.demo_model import ensure_demo_model

    model = ensure_demo_model(args.size)
    print(f"model {model}, threads {args.threads}, {args.n_gen} tokens x {args.reps} reps x "
          f"{args.rounds} rounds")  # fmt: skip
    side_b = lambda: run_generate(model, args.threads, args.n_gen, args.reps)  # noqa: E731
    for cached in (True, False):
        print(f"-- create_completion {'with' if cached else 'WITHOUT'} PieceCache vs generate")
        abba_rounds(lambda c=cached: run_completion(model, args.threads, args.n_gen, args.reps, c),
                    side_b, args.rounds, "create_completion", 0.95,
                    label_b="plain generate")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
