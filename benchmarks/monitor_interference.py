"""Does watching inference slow it down? Generation tok/s with the dashboard open vs closed.

    .venv/bin/python benchmarks/monitor_interference.py [--size 1G] [--threads N] [--n-gen 64]
                                                        [--reps 3] [--rounds 4] [--monitor tui|sample]

The engine runs next to a monitor on the same cores, as on a rig where llama.cpp keeps every
core busy. In one run this alternates (A B B A ...) between:
  A: an engine generating (`EngineProcess`, the path `rigtui run` and the TUI use) while the
     dashboard runs in a detached tmux pane at its default 1 s refresh (or, with
     `--monitor sample`, `rigtui sample --interval 1` writing NDJSON), and
  B: the same engine generating with no monitor.
Tokens are timed per token in the worker: (tokens - 1) / (last - first). Prints each round, the
monitor's own CPU time, and the median of per-round ratios A/B (1.00 = no cost; target >= 0.97).
Needs tmux for `--monitor tui`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The same prompt and per-token timing as generation_path.py (run as a script: this folder is on
# sys.path).
from generation_path import stream_rate
from ui_idle_cpu import cpu_seconds

REPO = Path(__file__).resolve().parent.parent
SESSION = "rigtui-interference"


class Monitor:
    """The dashboard in tmux, or `rigtui sample`, started and stopped around a measurement."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        rigtui = [sys.executable, "-m", "rigtui"]
        if self.kind == "sample":
            self._proc = subprocess.Popen(
                [*rigtui, "sample", "--interval", "1", "--json"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
            )  # fmt: skip
            self.pid = self._proc.pid
        else:
            cmd = " ".join([*rigtui, "--interval", "1"])
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            made = subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "120", "-y",
                                   "40", cmd], cwd=REPO, capture_output=True, text=True)  # fmt: skip
            if made.returncode != 0:
                raise RuntimeError(f"tmux new-session failed: {made.stderr.strip()}")
            pane_pid = int(subprocess.run(
                ["tmux", "list-panes", "-t", SESSION, "-F", "#{pane_pid}"],
                check=True, capture_output=True, text=True).stdout.split()[0])  # fmt: skip
            self.pid = pane_pid
            # Wait for the first screen, so start-up is not counted against the engine.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", SESSION],
                                        capture_output=True, text=True).stdout  # fmt: skip
                if "Socket" in screen:
                    break
                time.sleep(0.2)
        time.sleep(1.5)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
        elif self.kind == "tui":
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


def generate(engine, n_gen: int, reps: int) -> list[float]:
    rates = (stream_rate(engine, n_gen) for _ in range(reps))
    return [r for r in rates if r is not None]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="1G")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--n-gen", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--monitor", choices=("tui", "sample"), default="tui")
    args = ap.parse_args()
    if args.monitor == "tui" and not shutil.which("tmux"):
        print("needs tmux (apt-get install tmux), or use --monitor sample", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from rigtui.engine.client import EngineProcess
    from rigtui.engine.demo_model import ensure_demo_model
    from rigtui.profiles import load_profile

    model = ensure_demo_model(args.size)
    print(f"model {model.name}, threads {args.threads}, monitor: {args.monitor}, "
          f"{args.n_gen} tokens x {args.reps} reps x {args.rounds} rounds")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp, "interference.toml")
        prof.write_text(f'model = "{model}"\nthreads = {args.threads}\nctx = 1024\n')
        engine = EngineProcess(load_profile(prof), log_events=False)
        engine.start()
        ratios: list[float] = []
        try:
            generate(engine, args.n_gen, 1)  # warm-up: pages faulted in
            for rnd in range(args.rounds):
                monitor = Monitor(args.monitor)
                order = ("with", "without") if rnd % 2 == 0 else ("without", "with")
                got: dict[str, list[float]] = {}
                mon_cpu = 0.0
                for which in order:
                    if which == "with":
                        monitor.start()
                        c0, t0 = cpu_seconds(monitor.pid), time.monotonic()
                        got[which] = generate(engine, args.n_gen, args.reps)
                        mon_cpu = (cpu_seconds(monitor.pid) - c0) / (time.monotonic() - t0)
                        monitor.stop()
                    else:
                        got[which] = generate(engine, args.n_gen, args.reps)
                a, b = statistics.median(got["with"]), statistics.median(got["without"])
                ratios.append(a / b)
                print(f"round {rnd + 1}: with monitor {a:7.2f} tok/s   without {b:7.2f} tok/s   "
                      f"ratio {a / b:.3f}   monitor used {100 * mon_cpu:.1f}% of a core")  # fmt: skip
        finally:
            engine.stop()
    print(f"median of per-round ratios: {statistics.median(ratios):.3f} (1.00 = the monitor costs "
          "inference nothing; target >= 0.97)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
