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

from generation_path import compare_main, served_rates, stream_rates  # noqa: E402

SEED = {"seed": 1}


def _profile_text(model: Path, threads: int) -> str:
    return (f'engine = "llama-server"\nmodel = "{model}"\nthreads = {threads}\nctx = 1024\n'
            'numa = "disabled"\nmemory_policy = "default"\n')  # fmt: skip


def run_rigtui(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    return served_rates(_profile_text(model, threads), n_gen, reps, SEED)


def run_direct(model: Path, threads: int, n_gen: int, reps: int) -> list[float]:
    from rigtui.engine.llama_server import find_binary, server_argv
    from rigtui.model.profile import LaunchPlan
    from rigtui.profiles import load_profile

    binary = find_binary("llama-server").path
    assert binary, "no llama-server: rigtui engines build"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp, "bench.toml")
        prof.write_text(_profile_text(model, threads))
        plan = LaunchPlan(None, threads, threads, "default", (), "disabled")
        argv = server_argv(binary, load_profile(prof), plan, str(model), "127.0.0.1", port)
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
            return stream_rates(f"http://127.0.0.1:{port}/v1", n_gen, reps, SEED)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(compare_main(__doc__, run_rigtui, run_direct, "rigtui serve (llama-server)",
                                  0.97, label_b="llama-server direct"))
