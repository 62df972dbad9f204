"""Streaming through `rigtui serve`'s endpoint vs plain llama-cpp-python (target ratio >= 0.95).

    .venv/bin/python benchmarks/serve_overhead.py [--size 1G] [--threads N] [--n-gen 64]
                                                  [--reps 3] [--rounds 4]

A: the embedded engine served as `rigtui serve` serves it (worker child, pinning, llama_cpp.server
over HTTP with SSE, rigtui's per-request metering), streamed by the official `openai` client:
what SillyTavern or a script gets. B: a plain llama-cpp-python script calling `Llama.generate`
with the same sampling, model, threads and context (generation_path.py's PLAIN).

Both are timed per token, prompt processing left out: (tokens - 1) / (last - first), A from the
client's receive times of each SSE chunk (the demo model's words are one token and one chunk
each), B from the script's own loop. Rounds alternate A B B A ...; each prints its ratio, then the
median of the per-round ratios (the paired figure) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from generation_path import PROMPT, abba_rounds, run_plain  # noqa: E402


def run_served(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    import openai

    from rigtui.engine.client import EngineProcess
    from rigtui.model.engine import Exit, Serving
    from rigtui.profiles import load_profile

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp, "served.toml")
        prof.write_text(
            f'model = "{model}"\nthreads = {threads}\nctx = 1024\nnuma = "disabled"\n'
            'memory_policy = "default"\n'
        )
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
            client = openai.OpenAI(base_url=url, api_key="unused", timeout=600)
            out: list[float] = []
            for rep in range(reps + 1):
                stamps = []
                stream = client.completions.create(
                    model="served", prompt=PROMPT, max_tokens=n_gen, stream=True,
                    temperature=0.8, top_p=0.95, extra_body={"top_k": 40, "min_p": 0.05,
                                                            "repeat_penalty": 1.0, "seed": 1},
                )  # fmt: skip
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].text:
                        stamps.append(time.perf_counter())
                if rep > 0 and len(stamps) >= 2:  # the first is a warm-up
                    out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
            return out
        finally:
            engine.stop()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="1G")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--n-gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    from rigtui.engine.demo_model import ensure_demo_model

    model = ensure_demo_model(args.size)
    print(f"model {model} ({model.stat().st_size / 1e9:.2f} GB), threads {args.threads}, "
          f"{args.n_gen} tokens x {args.reps} reps x {args.rounds} rounds")  # fmt: skip
    abba_rounds(lambda: run_served(model, args.threads, args.n_gen, args.reps),
                lambda: run_plain(model, args.threads, args.n_gen, args.reps),
                args.rounds, "served (HTTP+SSE)", 0.95)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
