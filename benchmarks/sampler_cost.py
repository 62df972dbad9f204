"""CPU cost of one telemetry sample and memory growth over many samples.

    .venv/bin/python benchmarks/sampler_cost.py [--samples 3000] [--pid PID] [--json]

Takes `--samples` samples back to back with the live Sampler (everything except numa_maps, which
is polled every few seconds in real use and measured separately), and prints:
- CPU time per sample (this thread's CPU time, the Sample's own `sample_cost_ms`): median, p95,
  max; target < 5 ms;
- RSS and live Python objects after a warm-up and at the end, the growth per 1000 samples, and
  that growth extrapolated to one hour at one sample per second (3600 samples): target flat;
- the cost of one numa_maps read of PID (default: this process) for reference.
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import os
import statistics
import time

from rigtui.hostfs import HostFS
from rigtui.probes import detect
from rigtui.telemetry import Sampler
from rigtui.telemetry.placement import read_placement

WARMUP = 100


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--pid", type=int, default=None, help="engine PID to follow (threads)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    fs = HostFS("/")
    topology = detect(fs)
    pid = args.pid or os.getpid()
    # placement polled once (first sample, excluded as warm-up), then never: numa_maps apart
    sampler = Sampler(fs, topology, pid=pid, placement_interval_s=float("inf"))
    # preallocated: a growing list of floats would itself add ~32 B per sample to the RSS
    costs = array.array("d", bytes(8 * args.samples))
    checkpoints: list[tuple[int, int]] = []  # (samples taken, RSS) ten times over the run
    every = max(1, args.samples // 10)
    t0 = time.monotonic()
    try:
        for i in range(WARMUP + args.samples):
            s = sampler.sample()
            if i == WARMUP - 1:
                gc.collect()
                rss0, objs0 = rss_bytes(), len(gc.get_objects())
                checkpoints.append((0, rss0))
            elif i >= WARMUP:
                costs[i - WARMUP] = s.sample_cost_ms or 0.0
                if (i - WARMUP + 1) % every == 0:
                    checkpoints.append((i - WARMUP + 1, rss_bytes()))
        wall = time.monotonic() - t0
        gc.collect()
        rss1, objs1 = rss_bytes(), len(gc.get_objects())
    finally:
        sampler.close()

    c0 = time.thread_time()
    p = read_placement(fs, pid)
    numa_ms = (time.thread_time() - c0) * 1000
    costs = sorted(costs)
    n = len(costs)
    growth_per_1000 = (rss1 - rss0) * 1000 / n
    # steady state: the second half of the run (the allocator's first-use growth excluded)
    mid = checkpoints[len(checkpoints) // 2]
    late_per_1000 = (checkpoints[-1][1] - mid[1]) * 1000 / max(1, checkpoints[-1][0] - mid[0])
    result = {
        "cpus": len(topology.cpu.online),
        "samples": n,
        "cost_ms_median": round(statistics.median(costs), 3),
        "cost_ms_p95": round(costs[int(0.95 * (n - 1))], 3),
        "cost_ms_max": round(costs[-1], 3),
        "wall_s": round(wall, 2),
        "rss_start_bytes": rss0,
        "rss_end_bytes": rss1,
        "rss_growth_per_1000_samples_bytes": round(growth_per_1000),
        "rss_growth_second_half_per_1000_samples_bytes": round(late_per_1000),
        "rss_growth_one_hour_1hz_bytes_extrapolated": round(late_per_1000 * 3.6),
        "rss_checkpoints": checkpoints,
        "python_objects_start": objs0,
        "python_objects_end": objs1,
        "numa_maps_read_ms": round(numa_ms, 3),
        "numa_maps_pid": pid,
        "numa_maps_mapped_bytes": sum(p.model_file_bytes_per_node.values())
        + sum(p.anon_bytes_per_node.values()),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"machine: {result['cpus']} online CPUs; {n} samples after {WARMUP} warm-up, "
        f"{result['wall_s']} s wall"
    )
    print(
        f"CPU per sample (ms, excl. numa_maps): median {result['cost_ms_median']}  "
        f"p95 {result['cost_ms_p95']}  max {result['cost_ms_max']}  (target < 5)"
    )
    print(
        f"RSS: {rss0 / 2**20:.2f} MiB -> {rss1 / 2**20:.2f} MiB "
        f"({growth_per_1000 / 1024:+.1f} KiB per 1000 samples overall, "
        f"{late_per_1000 / 1024:+.1f} KiB per 1000 in the second half; one hour at 1 Hz "
        f"extrapolated from the second half: {late_per_1000 * 3.6 / 1024:+.1f} KiB)"
    )
    print(
        "RSS checkpoints (samples: MiB): "
        + ", ".join(f"{k}: {v / 2**20:.2f}" for k, v in checkpoints)
    )
    print(f"live Python objects: {objs0} -> {objs1} ({objs1 - objs0:+d})")
    print(
        f"one numa_maps read of PID {pid}: {numa_ms:.3f} ms CPU "
        f"({result['numa_maps_mapped_bytes'] / 2**20:.1f} MiB resident in its mappings)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
