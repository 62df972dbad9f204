"""Streaming generation through rigtui's engine vs plain llama-cpp-python (target ratio >= 0.97).

    .venv/bin/python benchmarks/generation_path.py [--size 1G] [--threads N] [--n-gen 64]
                                                   [--reps 3] [--rounds 3]

`engine_overhead.py` compares `rigtui bench` (timed evals inside the worker) with a plain loop.
This one measures what a user of `rigtui run` or the TUI gets: prompts sent to an
`EngineProcess` (worker child, pinning, sampling chain, one NDJSON `token` event per token,
read by the parent), against a plain llama-cpp-python script doing what its users do
(`Llama.generate` with the same sampling settings), both on the same demo model with the same
threads and context.

Both sides are timed the same way, per token and not per text chunk (the demo model emits invalid
UTF-8, which a text stream holds back): (tokens - 1) / (time of the last token - time of the
first), so prompt processing is left out of both. The two alternate ROUNDS times (A B B A ...)
so that drift on a shared machine hits both alike. Prints each round, the ratio of the medians
over all repetitions and the median of the per-round ratios (the paired figure).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = "The memory bandwidth of a dual-socket server"

PLAIN = r"""
import json, sys, time
import llama_cpp
path, threads, n_gen, reps, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                      n_gpu_layers=0, use_mmap=True, verbose=False, seed=1)
tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
out = []
for rep in range(reps + 1):
    stamps = []
    for tok in llm.generate(tokens, top_k=40, top_p=0.95, min_p=0.05, temp=0.8,
                            repeat_penalty=1.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) >= n_gen:
            break
    if rep > 0:  # the first is a warm-up (pages faulted in)
        out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
print(json.dumps(out))
"""


def run_plain(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    cmd = [sys.executable, "-c", PLAIN, str(model), str(threads), str(n_gen), str(reps), PROMPT]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stream_rate(engine, n_gen: int) -> float | None:
    """Send PROMPT to a started EngineProcess (no on_event) and time its streamed tokens:
    (tokens - 1) / (last - first), stamps taken in the worker when each token was sampled.
    None when fewer than two tokens came back (an early end-of-sequence)."""
    from rigtui.model.engine import Done, Error, Exit, Token

    engine.prompt(PROMPT, max_tokens=n_gen)
    stamps: list[float] = []
    for ev in engine.events(timeout=300):
        if isinstance(ev, Token):
            stamps.append(ev.t)
        elif isinstance(ev, (Error, Exit)):
            raise RuntimeError(f"engine failed: {ev}")
        elif isinstance(ev, Done):
            break
    if len(stamps) < 2:
        return None
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def run_rigtui(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    from rigtui.engine.client import EngineProcess
    from rigtui.profiles import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp, "genpath.toml")
        prof.write_text(
            f'model = "{model}"\nthreads = {threads}\nctx = 1024\nnuma = "disabled"\n'
            'memory_policy = "default"\n[sampling]\ntemperature = 0.8\ntop_k = 40\n'
            "top_p = 0.95\nmin_p = 0.05\nrepeat_penalty = 1.0\n"
        )
        engine = EngineProcess(load_profile(prof), log_events=False)
        engine.start()
        out: list[float] = []
        try:
            for rep in range(reps + 1):
                rate = stream_rate(engine, n_gen)
                if rep > 0 and rate is not None:  # the first is a warm-up
                    out.append(rate)
        finally:
            engine.stop()
    return out


def abba_rounds(side_a, side_b, rounds: int, label_a: str, target: float,
                label_b: str = "plain llama-cpp-python") -> float:
    """Run side A (rigtui's path) and side B (plain llama-cpp-python) ROUNDS times in ABBA
    order, each returning tok/s per repetition; print each round, the ratio of the medians over
    all repetitions and the median of the per-round ratios, which is returned."""
    a_all: list[float] = []
    b_all: list[float] = []
    ratios: list[float] = []
    for rnd in range(rounds):
        t0 = time.monotonic()
        # ABBA order: a drift that slows the machine within a round hits each side first in turn.
        if rnd % 2 == 0:
            a, b = side_a(), side_b()
        else:
            b = side_b()
            a = side_a()
        a_all += a
        b_all += b
        ratio = statistics.median(a) / statistics.median(b)
        ratios.append(ratio)
        print(f"round {rnd + 1}: {label_a} {statistics.median(a):7.2f} tok/s   "
              f"{label_b} {statistics.median(b):7.2f} tok/s   ratio {ratio:.3f}   "
              f"({time.monotonic() - t0:.0f} s)")  # fmt: skip
    print(f"median over all reps: {label_a} {statistics.median(a_all):.2f} tok/s, {label_b} "
          f"{statistics.median(b_all):.2f} tok/s, ratio "
          f"{statistics.median(a_all) / statistics.median(b_all):.3f}")  # fmt: skip
    # The paired figure: each round's two sides ran back to back, so their ratio is the least
    # disturbed by a shared machine changing speed between rounds.
    paired = statistics.median(ratios)
    print(f"median of per-round ratios: {paired:.3f} (target >= {target})")
    return paired


def bench_args(doc: str, *, size: str = "1G", n_gen: int = 64, rounds: int = 4
               ) -> argparse.Namespace:  # fmt: skip
    """The command line every generation benchmark shares: --size --threads --n-gen --reps
    --rounds (the defaults per benchmark)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default=size)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--n-gen", type=int, default=n_gen)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=rounds)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    return args


def compare_main(doc: str, side_a, side_b, label_a: str, target: float,
                 label_b: str = "plain llama-cpp-python", rounds: int = 4) -> int:
    """bench_args' command line, then side A against side B in ABBA rounds; each side is
    called as side(model, threads, n_gen, reps) -> tok/s per rep."""
    args = bench_args(doc, rounds=rounds)
    from rigtui.engine.demo_model import ensure_demo_model

    model = ensure_demo_model(args.size)
    print(f"model {model} ({model.stat().st_size / 1e9:.2f} GB), threads {args.threads}, "
          f"{args.n_gen} tokens x {args.reps} reps x {args.rounds} rounds")  # fmt: skip
    abba_rounds(lambda: side_a(model, args.threads, args.n_gen, args.reps),
                lambda: side_b(model, args.threads, args.n_gen, args.reps),
                args.rounds, label_a, target, label_b=label_b)  # fmt: skip
    return 0


def stream_rates(url: str, n_gen: int, reps: int, extra_body: dict | None = None) -> list[float]:
    """Streamed completions from an OpenAI-compatible `url` with the official client, timed
    per chunk as it arrives: (chunks - 1) / (last - first), the first repetition a warm-up."""
    import openai

    from rigtui.engine.access import client_key

    client = openai.OpenAI(base_url=url, api_key=client_key(), timeout=600)
    out: list[float] = []
    for rep in range(reps + 1):
        stamps = []
        stream = client.completions.create(model="bench", prompt=PROMPT, max_tokens=n_gen,
                                           stream=True, temperature=0.8, top_p=0.95,
                                           extra_body=extra_body or {})  # fmt: skip
        for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                stamps.append(time.perf_counter())
        if rep > 0 and len(stamps) >= 2:
            out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return out


def served_rates(profile_text: str, n_gen: int, reps: int, extra_body: dict | None = None
                 ) -> list[float]:  # fmt: skip
    """Launch a profile as `rigtui serve` does (EngineProcess on a free loopback port), stream
    from its endpoint, stop it."""
    sys.path.insert(0, str(REPO))
    from rigtui.engine.client import EngineProcess
    from rigtui.model.engine import Exit, Serving
    from rigtui.profiles import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp, "bench.toml")
        prof.write_text(profile_text)
        engine = EngineProcess(load_profile(prof), log_events=False, listen=("127.0.0.1", 0))
        engine.start()
        try:
            url = None
            for ev in engine.events(timeout=300):
                if isinstance(ev, Serving):
                    url = ev.url
                    break
                if isinstance(ev, Exit):
                    raise RuntimeError(f"engine ended: {ev.reason} {ev.stderr_tail[-5:]}")
            assert url, "the engine never served"
            return stream_rates(url, n_gen, reps, extra_body)
        finally:
            engine.stop()


def main() -> int:
    return compare_main(__doc__, run_rigtui, run_plain, "rigtui engine", 0.97, rounds=3)


if __name__ == "__main__":
    raise SystemExit(main())
