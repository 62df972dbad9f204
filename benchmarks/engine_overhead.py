"""Generation speed through rigtui's engine vs a plain llama-cpp-python loop (target ratio >= 0.97).

    .venv/bin/python benchmarks/engine_overhead.py [--size 1G] [--threads N] [--n-gen 32]
                                                   [--reps 3] [--rounds 3]

On one demo model (~1 GB f16, so generation is memory-bound) it alternates, in one run:
  A: `rigtui bench --model M -p 0 -n N_GEN -r REPS -t T --json` (worker process, pinning,
     NDJSON events: everything rigtui adds), and
  B: a plain llama-cpp-python script with the same settings and the same measurement (one
     warm-up, then REPS timed runs of N_GEN single-token evals from an empty context),
ROUNDS times (A B A B ...), so drift of a shared machine hits both alike. Prints each run's
tok/s, the medians and the ratio A/B.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from generation_path import bench_args  # noqa: E402

PLAIN = r"""
import json, random, sys, time
import llama_cpp
path, threads, n_gen, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = max(256, -(-(n_gen + 1) // 256) * 256)
llm = llama_cpp.Llama(model_path=path, n_ctx=ctx, n_batch=512, n_ubatch=512, n_threads=threads,
                      n_threads_batch=threads, n_gpu_layers=0, use_mmap=True, verbose=False)
rng = random.Random(1234)
samples = []
for rep in range(reps + 1):
    tokens = [rng.randrange(llm.n_vocab()) for _ in range(n_gen)]
    llm.reset()
    llm.eval([llm.token_bos()])
    t0 = time.perf_counter()
    for tok in tokens:
        llm.eval([tok])
    dt = time.perf_counter() - t0
    if rep > 0:
        samples.append(n_gen / dt)
print(json.dumps(samples))
"""


def run_rigtui(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    cmd = [sys.executable, "-m", "rigtui", "bench", "--model", str(model), "-p", "0", "-n", str(n_gen),
           "-r", str(reps), "-t", str(threads), "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    (row,) = json.loads(out.stdout)
    return list(row["samples_ts"])


def run_plain(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    cmd = [sys.executable, "-c", PLAIN, str(model), str(threads), str(n_gen), str(reps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    args = bench_args(__doc__, n_gen=32, rounds=3)
    from rigtui.engine.demo_model import ensure_demo_model

    t0 = time.monotonic()
    model = ensure_demo_model(args.size)
    print(
        f"model {model} ({model.stat().st_size / 1e9:.2f} GB), ready in {time.monotonic() - t0:.1f} s"
    )
    print(f"threads {args.threads}, n_gen {args.n_gen}, reps {args.reps}, rounds {args.rounds}")
    a_all: list[float] = []
    b_all: list[float] = []
    round_ratios: list[float] = []
    for r in range(args.rounds):
        a = run_rigtui(model, args.threads, args.n_gen, args.reps)
        b = run_plain(model, args.threads, args.n_gen, args.reps)
        a_all += a
        b_all += b
        round_ratios.append(statistics.median(a) / statistics.median(b))
        print(f"round {r + 1}: rigtui bench {statistics.median(a):7.2f} tok/s | "
              f"plain llama-cpp-python {statistics.median(b):7.2f} tok/s | ratio {round_ratios[-1]:.3f}")  # fmt: skip
    a_med, b_med = statistics.median(a_all), statistics.median(b_all)
    ratio = a_med / b_med
    print(f"median: rigtui {a_med:.2f} tok/s, plain {b_med:.2f} tok/s, ratio {ratio:.3f} "
          f"({'meets' if ratio >= 0.97 else 'below'} the 0.97 target); median of per-round ratios "
          f"{statistics.median(round_ratios):.3f}; run-to-run spread of the plain loop "
          f"{min(b_all):.2f}..{max(b_all):.2f} tok/s")  # fmt: skip
    return 0 if ratio >= 0.97 else 1


if __name__ == "__main__":
    raise SystemExit(main())
