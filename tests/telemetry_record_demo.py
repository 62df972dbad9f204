"""Record tests/data/replay-vm-demo.ndjson: a real telemetry session on the machine running this.

    .venv/bin/python tests/telemetry_record_demo.py [OUT] [--samples 22] [--size 100M]

Launches rigtui's real engine (EngineProcess -> rigtui.engine.worker -> llama-cpp-python) on a
synthetic demo model written for the purpose, samples once a second with the live Sampler while
the engine idles, generates two long answers, and idles again; the engine's EngineStats go into
each sample, and the bytes-per-token figure (rigtui.analysis.plan.bytes_per_token) feeds the
labelled traffic estimate. The header's `recorded` says all of this.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from rigtui.analysis.plan import bytes_per_token
from rigtui.engine.client import EngineProcess
from rigtui.engine.demo_model import write_demo_model
from rigtui.hostfs import HostFS
from rigtui.model.engine import EngineState
from rigtui.probes import detect
from rigtui.profiles import load_profile
from rigtui.telemetry import Sampler
from rigtui.telemetry.record import Recorder

DEFAULT_OUT = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"


def wait_state(eng: EngineProcess, states: set[EngineState], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while eng.stats.state not in states:
        if time.monotonic() > deadline or eng.stats.state == EngineState.FAILED:
            raise SystemExit(f"engine did not reach {states}: {eng.stats}")
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=str(DEFAULT_OUT))
    ap.add_argument("--samples", type=int, default=22)
    ap.add_argument("--size", default="100M")
    args = ap.parse_args()

    fs = HostFS("/")
    topology = detect(fs)
    work = Path(tempfile.mkdtemp(prefix="rigtui-rec-"))
    model = work / f"demo-{args.size}.gguf"
    info = write_demo_model(model, size=args.size)
    ctx = 1024
    bpt = bytes_per_token(str(model), ctx=ctx)
    profile_path = work / "telemetry-demo.toml"
    profile_path.write_text(
        'description = "telemetry demo recording"\n'
        f'model = "{model}"\nctx = {ctx}\n[sampling]\nmax_tokens = 160\ntemperature = 0.8\n'
    )
    profile = load_profile(str(profile_path), topology=topology)
    out = Path(args.out)
    if out.exists():
        out.unlink()
    recorded = (
        f"tests/telemetry_record_demo.py on {platform.node()} ({platform.machine()}, "
        f"{len(topology.cpu.online)} CPUs, {len(topology.nodes)} NUMA node(s), a VM without "
        "memory-controller PMUs, resctrl, sensors or GPUs): rigtui's engine worker "
        f"(llama-cpp-python) running a synthetic demo model of {info.file_bytes} bytes "
        f"({info.n_layers} layers, n_embd {info.n_embd}, f16, mmap), idle, then two prompts of "
        f"160 tokens, then idle; 1 s interval; traffic = estimate from bytes_per_token "
        f"{bpt:.0f} B x live gen tok/s. Recorded {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
    )
    eng = EngineProcess(profile, instance="demo", topology=topology)
    eng.start()
    try:
        wait_state(eng, {EngineState.READY}, 120)
        with (
            Sampler(fs, topology, bytes_per_token=bpt, placement_interval_s=3.0) as sampler,
            Recorder(out, topology, recorded=recorded) as rec,
        ):
            sampler.set_pid(eng.pid)
            sampler.sample((eng.stats,))
            next_t = time.monotonic() + 1.0
            prompts_at = {
                3: "Tell me a long story about a memory controller.",
                12: "Now explain NUMA to a cat.",
            }
            for i in range(args.samples):
                if i in prompts_at:
                    eng.prompt(prompts_at[i], max_tokens=160)
                time.sleep(max(0.0, next_t - time.monotonic()))
                next_t += 1.0
                s = sampler.sample((eng.stats,))
                rec.write(s)
                m = s.memory_traffic[0]
                print(
                    f"{i:2d} {eng.stats.state.value:10s} gen {eng.stats.gen_tok_s or 0:6.1f} tok/s"
                    f"  traffic {m.read_gbs} GB/s [{m.source}]  cost {s.sample_cost_ms:.2f} ms",
                    file=sys.stderr,
                )
    finally:
        eng.stop()
    os.unlink(model)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
