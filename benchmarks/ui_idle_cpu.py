"""How much the dashboard costs when left open, and how fast it first draws.

Runs `rigtui` (default 1 s refresh, no engine) in a detached tmux pane, then
- time to first screen: from spawning the pane until `tmux capture-pane` shows the host line
  (the dashboard's first row) — includes Python start-up, imports, `detect` and the first draw;
- idle CPU: utime + stime of the rigtui process from /proc/PID/stat over `--seconds` (default
  60) after a short settle, as a percentage of one core (target < 2%).

    .venv/bin/python benchmarks/ui_idle_cpu.py            # 60 s, 120x40
    .venv/bin/python benchmarks/ui_idle_cpu.py --seconds 20 --size 80x24 --json

Needs tmux. Prints the figures; exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SESSION = f"rigtui-bench-{os.getpid()}"


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (fields 14 and 15 of /proc/PID/stat, in clock ticks)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="idle measurement (default 60)")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after first draw (s)")
    ap.add_argument("--size", default="120x40", help="terminal COLSxROWS (default 120x40)")
    ap.add_argument("--rigtui", default=str(REPO / ".venv" / "bin" / "rigtui"))
    ap.add_argument("--args", default="", help="extra rigtui arguments, e.g. '--interval 0.5'")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("ui_idle_cpu: needs tmux (apt-get install tmux)", file=sys.stderr)
        return 2
    cols, rows = args.size.split("x")
    command = f"exec {shlex.quote(args.rigtui)} {args.args}"
    t0 = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", cols, "-y", rows, command)
    try:
        pid = int(tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip())
        first_screen_s = None
        while time.monotonic() - t0 < 15:
            screen = tmux("capture-pane", "-p", "-t", SESSION)
            if "socket" in screen and "Engine" in screen:
                first_screen_s = time.monotonic() - t0
                break
            time.sleep(0.02)
        if first_screen_s is None:
            print("ui_idle_cpu: no dashboard within 15 s:\n" + screen, file=sys.stderr)
            return 1
        time.sleep(args.settle)
        c0, w0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        idle_pct = 100.0 * (c1 - c0) / (w1 - w0)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    result = {
        "first_screen_s": round(first_screen_s, 3),
        "idle_cpu_pct_of_one_core": round(idle_pct, 2),
        "cpu_seconds": round(c1 - c0, 3),
        "wall_seconds": round(w1 - w0, 1),
        "size": args.size,
        "args": args.args,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"time to first screen: {first_screen_s:.2f} s (target < 1 s)")
        print(
            f"idle CPU at the default refresh: {idle_pct:.2f}% of one core "
            f"({c1 - c0:.2f} s CPU over {w1 - w0:.0f} s; target < 2%)"
        )
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
            "(other work slows start-up on a small box)"
        )
    return 0 if idle_pct < 2.0 and first_screen_s < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
