"""What the TUI costs the engine while it streams (targets: B/A >= 0.95, C/A >= 0.97).

    .venv/bin/python benchmarks/tui_streaming.py [--rounds 6] [--reps 3] [--n-gen 128]
                                                 [--size 300M] [--served] [--json]

The demo model, the same prompt, the same profile (every CPU this process may use, the profile's
default threads), one fresh engine per side and round:
  A  `rigtui run PROFILE -p PROMPT -n N --json`: the CLI, no UI at all;
  B  `rigtui --launch PROFILE` in a detached tmux pane at 160x50, the Run screen, the prompt typed
     with `tmux send-keys` (the TUI's chat is a client of the engine's endpoint);
  C  the same TUI left on the Dashboard while the official `openai` client streams the prompt from
     the served endpoint (what SillyTavern or an agent does with the dashboard open);
  S  (--served) `rigtui serve PROFILE` and the same client, no UI: the endpoint's own cost, so
     that B/S and C/S are the UI's share alone.

Each side is timed by the engine, not by whoever watches: A from the worker's token stamps,
(tokens - 1) / (last - first); B, C and S from the endpoint's llama-server counters
(`llamacpp:tokens_predicted_total` and `..._seconds_total` before and after each request:
(tokens - 1) / seconds, the same definition). A slower UI shows up only as a slower engine.
The first prompt of every side is a warm-up. Sides alternate A B C, C B A, ... per round so that
drift on a shared machine hits each side first in turn; each round prints its ratios, the end
the median of the per-round ratios. For B and C the TUI process's CPU time (utime + stime from
/proc/PID/stat, its children excluded) over the streaming is printed as a share of one core.
Needs tmux. Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PROMPT = "The memory bandwidth of a dual-socket server"
TARGETS = {"B/A": 0.95, "C/A": 0.97}

from ui_idle_cpu import cpu_seconds, tmux  # noqa: E402 (this folder is on sys.path)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Endpoint:
    """The engine's endpoint on 127.0.0.1:port, read with the same key the app uses."""

    def __init__(self, port: int) -> None:
        from rigtui.engine.access import client_key

        self.base = f"http://127.0.0.1:{port}"
        self.key = client_key()

    def _get(self, path: str, timeout: float = 5.0) -> str:
        req = urllib.request.Request(self.base + path,
                                     headers={"Authorization": f"Bearer {self.key}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read().decode()

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._get("/health", 2.0)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.base} never answered /health")

    def counters(self) -> tuple[float, float]:
        """(tokens predicted, seconds predicting) so far."""
        values = {}
        for line in self._get("/metrics").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition(" ")
                values[name] = float(value)
        return (values["llamacpp:tokens_predicted_total"],
                values["llamacpp:tokens_predicted_seconds_total"])  # fmt: skip

    def wait_request(self, before: tuple[float, float], timeout: float = 300.0) -> float | None:
        """Wait for a request started after `before` to end; its rate, (tokens - 1) / s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.counters()
            if now[0] > before[0]:
                tokens, seconds = now[0] - before[0], now[1] - before[1]
                return (tokens - 1) / seconds if tokens >= 2 and seconds > 0 else None
            time.sleep(0.1)
        raise RuntimeError("the request never finished")

    def stream(self, n_gen: int) -> None:
        import openai

        client = openai.OpenAI(base_url=self.base + "/v1", api_key=self.key, timeout=600)
        for _ in client.completions.create(model="bench", prompt=PROMPT, max_tokens=n_gen,
                                           stream=True):  # fmt: skip
            pass


def write_profile(tmp: Path, size: str, n_gen: int, port: int) -> Path:
    prof = tmp / f"tui-bench-{port}.toml"
    prof.write_text(
        f'model = "demo:{size}"\nctx = 1024\nlisten = "127.0.0.1:{port}"\n'
        f"[sampling]\nmax_tokens = {n_gen}\ntemperature = 0.8\n"
    )
    return prof


def side_cli(rigtui: str, tmp: Path, args: argparse.Namespace) -> tuple[list[float], None]:
    """A: one `rigtui run --json` per prompt, rate from its token stamps."""
    prof = write_profile(tmp, args.size, args.n_gen, free_port())
    rates = []
    for rep in range(args.reps + 1):
        out = subprocess.run([rigtui, "run", str(prof), "-p", PROMPT, "-n", str(args.n_gen),
                              "--json"], capture_output=True, text=True, check=True)  # fmt: skip
        stamps = [ev["t"] for ev in map(json.loads, out.stdout.splitlines())
                  if ev.get("event") == "token"]  # fmt: skip
        if rep > 0 and len(stamps) >= 2:
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return rates, None


def side_tui(rigtui: str, tmp: Path, args: argparse.Namespace, screen: str
             ) -> tuple[list[float], float]:  # fmt: skip
    """B (screen "run": the prompt typed into the Run screen) or C ("dashboard": the client
    streams from the endpoint). Returns the rates and the TUI's CPU share while streaming."""
    port = free_port()
    prof = write_profile(tmp, args.size, args.n_gen, port)
    session = f"rigtui-tuibench-{os.getpid()}-{port}"
    cmd = f"exec {shlex.quote(rigtui)} --launch {shlex.quote(str(prof))}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", cmd)
    try:
        pid = int(tmux("display", "-p", "-t", session, "#{pane_pid}").strip())
        ep = Endpoint(port)
        ep.wait_ready()
        time.sleep(1.0)  # the app has seen the engine ready
        if screen == "run":
            tmux("send-keys", "-t", session, "r")
            time.sleep(0.5)
        rates, busy_cpu, busy_wall = [], 0.0, 0.0
        for rep in range(args.reps + 1):
            before = ep.counters()
            c0, w0 = cpu_seconds(pid), time.monotonic()
            if screen == "run":
                tmux("send-keys", "-t", session, "-l", PROMPT)
                tmux("send-keys", "-t", session, "Enter")
            else:
                ep.stream(args.n_gen)
            rate = ep.wait_request(before)
            c1, w1 = cpu_seconds(pid), time.monotonic()
            if rep > 0 and rate is not None:
                rates.append(rate)
                busy_cpu += c1 - c0
                busy_wall += w1 - w0
            time.sleep(0.3)  # the reply's last redraw
        return rates, busy_cpu / busy_wall if busy_wall else 0.0
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
            if alive.returncode:
                break
            time.sleep(0.2)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def side_served(rigtui: str, tmp: Path, args: argparse.Namespace) -> tuple[list[float], None]:
    """S: `rigtui serve PROFILE`, the client streams, no UI."""
    port = free_port()
    prof = write_profile(tmp, args.size, args.n_gen, port)
    proc = subprocess.Popen([rigtui, "serve", str(prof)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        ep = Endpoint(port)
        ep.wait_ready()
        rates = []
        for rep in range(args.reps + 1):
            before = ep.counters()
            ep.stream(args.n_gen)
            rate = ep.wait_request(before)
            if rep > 0 and rate is not None:
                rates.append(rate)
        return rates, None
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3, help="prompts per side and round (+1 warm-up)")
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--size", default="300M", help="demo model size (default 300M, the demo's)")
    ap.add_argument("--served", action="store_true", help="also S: rigtui serve, no UI")
    ap.add_argument("--sides", default="ABC", help="which sides to run (default ABC; A is the base)")
    ap.add_argument("--rigtui", default=str(REPO / ".venv" / "bin" / "rigtui"))
    ap.add_argument("--json", action="store_true", help="end with one JSON object")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("needs tmux", file=sys.stderr)
        return 2
    from rigtui.engine.demo_model import ensure_demo_model

    model = ensure_demo_model(args.size)
    print(f"model {model.name}, {args.n_gen} tokens x {args.reps} prompts x {args.rounds} rounds, "
          f"CPUs {len(os.sched_getaffinity(0))}")  # fmt: skip
    sides = {"A": lambda tmp: side_cli(args.rigtui, tmp, args),
             "B": lambda tmp: side_tui(args.rigtui, tmp, args, "run"),
             "C": lambda tmp: side_tui(args.rigtui, tmp, args, "dashboard")}  # fmt: skip
    if args.served:
        sides["S"] = lambda tmp: side_served(args.rigtui, tmp, args)
    sides = {k: v for k, v in sides.items() if k in args.sides.upper() + ("S" if args.served else "")}
    order = list(sides)
    ratio_names = [n for n in ["B/A", "C/A", "B/S", "C/S", "S/A"]
                   if n[0] in sides and n[2] in sides]  # fmt: skip
    ratios: dict[str, list[float]] = {name: [] for name in ratio_names}
    cpu: dict[str, list[float]] = {"B": [], "C": []}
    rates_all: dict[str, list[float]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for rnd in range(args.rounds):
            t0 = time.monotonic()
            med: dict[str, float] = {}
            for side in order if rnd % 2 == 0 else order[::-1]:
                rates, share = sides[side](tmp)
                if not rates:
                    raise RuntimeError(f"side {side} produced no rate")
                med[side] = statistics.median(rates)
                rates_all[side] += rates
                if share is not None:
                    cpu[side].append(share)
            for name in ratio_names:
                num, den = name.split("/")
                ratios[name].append(med[num] / med[den])
            print(f"round {rnd + 1}: " + "  ".join(f"{s} {med[s]:6.1f}" for s in order) + " tok/s   "
                  + "  ".join(f"{n} {ratios[n][-1]:.3f}" for n in ratio_names) + "   TUI CPU"
                  + "".join(f" {s} {cpu[s][-1]:.0%}" for s in ("B", "C") if cpu[s])
                  + f"   ({time.monotonic() - t0:.0f} s)")  # fmt: skip
    result = {name: statistics.median(vals) for name, vals in ratios.items()}
    cpu = {s: v for s, v in cpu.items() if v}
    print("median of per-round ratios: " + "  ".join(
        f"{n} {v:.3f}" + (f" (target >= {TARGETS[n]})" if n in TARGETS else "")
        for n, v in result.items()))  # fmt: skip
    print("median tok/s: " + "  ".join(f"{s} {statistics.median(v):.1f}" for s, v in rates_all.items())
          + "; TUI CPU while streaming (share of one core):"
          + "".join(f" {s} {statistics.median(v):.0%}" for s, v in cpu.items()))  # fmt: skip
    if args.json:
        print(json.dumps({"ratios": result, "tok_s": {s: statistics.median(v) for s, v in rates_all.items()},
                          "tui_cpu": {s: statistics.median(v) for s, v in cpu.items()}}))  # fmt: skip
    return 0 if all(result[n] >= t for n, t in TARGETS.items() if n in result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
