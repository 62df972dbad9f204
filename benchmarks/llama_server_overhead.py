"""llama-server through `rigtui serve` vs the same binary started directly (target >= 0.97).

    .venv/bin/python benchmarks/llama_server_overhead.py [--size 1G] [--threads N] [--n-gen 64]
                                                         [--reps 3] [--rounds 4]

A: the llama-server backend as `rigtui serve` runs it: the child pins and sets the memory policy,
execs llama-server, and rigtui's monitor polls /slots (4/s while busy) and /metrics. B: the same
binary with the same argv (`server_argv` of the same profile), started directly with no rigtui
around it. The same `openai` client streams from each. Timed per token from the client's
receive times, prompt processing left out: (chunks - 1) / (last - first). Rounds alternate
A B B A ...; each prints its ratio, then the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from generation_path import PROMPT, abba_rounds  # noqa: E402


def stream_rates(url: str, n_gen: int, reps: int) -> list[float]:
    import openai

    client = openai.OpenAI(base_url=url, api_key="unused", timeout=600)
    out: list[float] = []
    for rep in range(reps + 1):
        stamps = []
        stream = client.completions.create(model="bench", prompt=PROMPT, max_tokens=n_gen,
                                           stream=True, temperature=0.8, top_p=0.95, seed=1)  # fmt: skip
        for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                stamps.append(time.perf_counter())
        if rep > 0 and len(stamps) >= 2:  # the first is a warm-up
            out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return out


def _profile(tmp: str, model: Path, threads: int):
    from rigtui.profiles import load_profile

    prof = Path(tmp, "bench.toml")
    prof.write_text(f'engine = "llama-server"\nmodel = "{model}"\nthreads = {threads}\nctx = 1024\n'
                    'numa = "disabled"\nmemory_policy = "default"\n')  # fmt: skip
    return load_profile(prof)


def run_rigtui(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    from rigtui.engine.client import EngineProcess
    from rigtui.model.engine import Exit, Serving

    with tempfile.TemporaryDirectory() as tmp:
        engine = EngineProcess(_profile(tmp, model, threads), log_events=False,
                               listen=("127.0.0.1", 0))  # fmt: skip
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
            return stream_rates(url, n_gen, reps)
        finally:
            engine.stop()


def run_direct(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    from rigtui.engine.llama_server import find_binary, server_argv
    from rigtui.model.profile import LaunchPlan

    binary = find_binary("llama-server").path
    assert binary, "no llama-server: rigtui engines build"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        plan = LaunchPlan(None, threads, threads, "default", (), "disabled")
        argv = server_argv(binary, _profile(tmp, model, threads), plan, str(model), "127.0.0.1", port)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                time.sleep(0.1)
            return stream_rates(f"http://127.0.0.1:{port}/v1", n_gen, reps)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
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
    abba_rounds(lambda: run_rigtui(model, args.threads, args.n_gen, args.reps),
                lambda: run_direct(model, args.threads, args.n_gen, args.reps),
                args.rounds, "rigtui serve (llama-server)", 0.97, label_b="llama-server direct")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
