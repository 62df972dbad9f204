"""How long `rigtui probe` takes: the CLI as a subprocess (what a user waits for, interpreter start
included), `--json`, and `detect()` in-process. Target: `rigtui probe` under 0.3 s.

    .venv/bin/python benchmarks/probe_time.py [--runs 7] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def time_cmd(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--root", default=None, help="probe a captured tree instead of /")
    args = ap.parse_args()
    root = ["--root", args.root] if args.root else []
    rigtui = [sys.executable, "-m", "rigtui"]
    env_note = f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}"

    rows = []
    for label, cmd in (
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
        ("rigtui probe", [*rigtui, "probe", *root]),
        ("rigtui probe --json", [*rigtui, "probe", "--json", *root]),
    ):
        times = time_cmd(cmd, args.runs)
        rows.append((label, statistics.median(times), min(times), max(times)))

    from rigtui.hostfs import HostFS
    from rigtui.probes import detect

    fs_root = args.root or "/"
    detect(HostFS(fs_root))  # warm the page cache and imports
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        detect(HostFS(fs_root))
        times.append(time.perf_counter() - t0)
    rows.append(("detect() in-process", statistics.median(times), min(times), max(times)))

    print(f"probe timings, {args.runs} runs each, root {fs_root} ({env_note})")
    print(f"{'what':38s} {'median':>9s} {'min':>9s} {'max':>9s}")
    for label, med, lo, hi in rows:
        print(f"{label:38s} {med * 1000:8.1f}ms {lo * 1000:8.1f}ms {hi * 1000:8.1f}ms")
    probe_median = rows[1][1]
    verdict = "OK" if probe_median < 0.3 else "SLOW"
    print(f"target: rigtui probe < 300 ms -> {verdict} ({probe_median * 1000:.0f} ms)")
    return 0 if probe_median < 0.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
