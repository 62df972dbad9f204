"""How much the dashboard costs when left open, and how fast it first draws.

Runs `rigtui` (default 1 s refresh, no engine) in a detached tmux pane, then
- time to first screen: from spawning the pane until `tmux capture-pane` shows the host line
  (the dashboard's first row) — includes Python start-up, imports, `detect` and the first draw;
- idle CPU: utime + stime of the rigtui process from /proc/PID/stat over `--seconds` (default
  60) after a short settle, as a percentage of one core (target < 2%).

- with `--btop`: btop (apt install btop) in a second pane of the same size over the same
  window, at the same refresh (`update_ms` in a throw-away config, 1000 by default like
  rigtui's 1 s; `--btop-ms 2000` is btop's own default): the CPU of each and their ratio.
  Both run at once, so the machine's noise falls on both (target: rigtui below btop).

    .venv/bin/python benchmarks/ui_idle_cpu.py            # 60 s, 120x40
    .venv/bin/python benchmarks/ui_idle_cpu.py --seconds 20 --size 80x24 --json
    .venv/bin/python benchmarks/ui_idle_cpu.py --btop --size 160x50

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
import tempfile
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
    ap.add_argument("--btop", action="store_true", help="measure btop beside it, same window")
    ap.add_argument("--btop-ms", type=int, default=1000, help="btop's update_ms (default 1000)")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("ui_idle_cpu: needs tmux (apt-get install tmux)", file=sys.stderr)
        return 2
    if args.btop and shutil.which("btop") is None:
        print("ui_idle_cpu: --btop needs btop (apt-get install btop)", file=sys.stderr)
        return 2
    cols, rows = args.size.split("x")
    command = f"exec {shlex.quote(args.rigtui)} {args.args}"
    btop_pid = None
    conf = tempfile.TemporaryDirectory(prefix="rigtui-btop-")
    if args.btop:  # its own config: the refresh asked for, nothing else changed
        (Path(conf.name) / "btop").mkdir()
        (Path(conf.name) / "btop" / "btop.conf").write_text(f"update_ms = {args.btop_ms}\n")
        tmux("new-session", "-d", "-s", SESSION + "-btop", "-x", cols, "-y", rows,
             f"exec env XDG_CONFIG_HOME={shlex.quote(conf.name)} btop")  # fmt: skip
        btop_pid = int(tmux("display-message", "-p", "-t", SESSION + "-btop",
                            "#{pane_pid}").strip())  # fmt: skip
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
        b0 = cpu_seconds(btop_pid) if btop_pid else 0.0
        c0, w0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        c1, w1 = cpu_seconds(pid), time.monotonic()
        b1 = cpu_seconds(btop_pid) if btop_pid else 0.0
        idle_pct = 100.0 * (c1 - c0) / (w1 - w0)
        btop_pct = 100.0 * (b1 - b0) / (w1 - w0) if btop_pid else None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        subprocess.run(["tmux", "kill-session", "-t", SESSION + "-btop"], capture_output=True)
        conf.cleanup()
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
    if btop_pct is not None:
        result["btop_cpu_pct_of_one_core"] = round(btop_pct, 2)
        result["btop_update_ms"] = args.btop_ms
        result["rigtui_over_btop"] = round(idle_pct / btop_pct, 3) if btop_pct else None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"time to first screen: {first_screen_s:.2f} s (target < 1 s)")
        print(
            f"idle CPU at the default refresh: {idle_pct:.2f}% of one core "
            f"({c1 - c0:.2f} s CPU over {w1 - w0:.0f} s; target < 2%)"
        )
        if btop_pct is not None:
            print(f"btop beside it (update_ms {args.btop_ms}), same window: {btop_pct:.2f}% of "
                  f"one core; rigtui / btop = {idle_pct / btop_pct if btop_pct else float('nan'):.2f}"
                  " (target < 1)")  # fmt: skip
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
            "(other work slows start-up on a small box)"
        )
    under_btop = btop_pct is None or idle_pct < btop_pct
    return 0 if idle_pct < 2.0 and first_screen_s < 1.0 and under_btop else 1


if __name__ == "__main__":
    raise SystemExit(main())
