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

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from generation_path import compare_main, run_plain, served_rates  # noqa: E402


def run_served(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    profile = (f'model = "{model}"\nthreads = {threads}\nctx = 1024\nnuma = "disabled"\n'
               'memory_policy = "default"\n')  # fmt: skip
    # the plain side's sampling, sent in the request
    sampling = {"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "seed": 1}
    return served_rates(profile, n_gen, reps, sampling)


if __name__ == "__main__":
    raise SystemExit(compare_main(__doc__, run_served, run_plain, "served (HTTP+SSE)", 0.95))
