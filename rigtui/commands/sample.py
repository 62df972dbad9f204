"""`rigtui sample`: live telemetry as text or NDJSON; record and replay sessions.

    rigtui sample [--count N] [--interval SECONDS] [--json] [--record FILE] [--replay FILE]
                  [--pid PID] [--bytes-per-token B] [--no-nvml] [--root DIR]

`--json` prints one object per sample and line with at least `t`, `cpu.per_cpu`,
`memory_traffic` (one per socket: socket, read_gbs, write_gbs, source, available, reason),
`nodes`, `temperatures`, `gpus`, `placement`, `sample_cost_ms` (see docs/telemetry.md).
Live mode takes one priming reading first (rates need two), so `--count 1` takes one interval.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_app_cpus_arg, add_root_arg, make_fs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample", help="live telemetry: CPU, per-socket memory traffic, placement, temps, GPUs",
        description="Sample this machine (or replay a recording): per-CPU load, memory traffic "
        "per socket with its source, memory per node, temperatures, GPUs, model placement.",
    )  # fmt: skip
    add_root_arg(p)
    p.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="stop after N samples (default: until Ctrl-C; a replay: all)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between samples (default 1)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per sample and line")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="also append the samples to FILE (NDJSON "
        "with a header holding the machine's topology)",
    )
    p.add_argument("--replay", metavar="FILE", help="print the samples of a recording instead")
    p.add_argument(
        "--pid",
        type=int,
        metavar="PID",
        help="engine process to follow: per-thread CPU and model placement",
    )
    p.add_argument(
        "--bytes-per-token",
        type=float,
        metavar="B",
        help="model bytes read per token, for the labelled traffic estimate",
    )
    p.add_argument("--no-nvml", action="store_true", help="do not query NVIDIA GPUs")
    add_app_cpus_arg(p)
    p.add_argument("--engine", action="append", default=[], metavar="URL",
                   help="a served engine to follow (rigtui serve's or a llama-server's URL, e.g. "
                   "http://127.0.0.1:8080/v1): its tok/s, TTFT, requests and slots in the engine "
                   "section; repeatable. API key: $RIGTUI_API_KEY, else your key file (rigtui serve's)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        print("rigtui sample: --count must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < args.interval < float("inf"):  # nan fails this too (it never slept)
        print("rigtui sample: --interval must be > 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    if args.record:
        problem = _record_problem(args.record, args.replay)
        if problem:
            print(f"rigtui sample: --record {args.record}: {problem}", file=sys.stderr)
            return EXIT_USAGE
    if args.replay:
        return _replay(args)
    return _live(args)


def _record_problem(record: str, replay: str | None) -> str | None:
    """Why --record cannot write there (None: it can). Recording into the file being replayed
    would read its own lines back forever."""
    folder = os.path.dirname(os.path.abspath(record))
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if os.path.isdir(record):
        return "is a directory"
    if replay and os.path.exists(record) and os.path.exists(replay):
        try:
            if os.path.samefile(record, replay):
                return "is the file being replayed (it would read its own lines back forever)"
        except OSError:
            pass
    return None


def _emit(sample, args, recorder) -> None:
    from rigtui.commands._common import print_ndjson

    if recorder is not None:
        recorder.write(sample)
    if args.json:
        print_ndjson(sample)
    else:
        print(format_sample(sample, _SHOWN_REASONS), flush=True)


def _replay(args: argparse.Namespace) -> int:
    from rigtui.telemetry.record import Recorder, replay

    problems: list = []
    try:
        topology, samples = replay(args.replay, problems)
    except OSError as exc:
        print(f"rigtui sample: cannot read {args.replay}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    recorder = (
        Recorder(args.record, topology, recorded=f"re-recorded from {args.replay}")
        if args.record
        else None
    )
    n = 0
    try:
        for s in samples:
            _emit(s, args, recorder)
            n += 1
            if args.count is not None and n >= args.count:
                break
    finally:
        if recorder is not None:
            recorder.close()
    for p in problems[:5]:
        print(f"rigtui sample: skipped {p.path}: {p.reason}", file=sys.stderr)
    if n == 0:
        print(f"rigtui sample: no samples in {args.replay}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _live(args: argparse.Namespace) -> int:
    from rigtui.commands._common import place_monitor
    from rigtui.probes import detect
    from rigtui.telemetry import Sampler
    from rigtui.telemetry.record import Recorder

    fs = make_fs(args)
    topology = detect(fs)
    if args.pid is not None and not os.path.exists(fs.path(f"proc/{args.pid}")):
        print(f"rigtui sample: no process {args.pid} (under {fs.root}proc)", file=sys.stderr)
        return EXIT_USAGE
    try:
        where = place_monitor(args, args.pid)
    except ValueError as exc:
        print(f"rigtui sample: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if where and (args.pid is not None or args.app_cpus):
        print(f"rigtui sample: {where}", file=sys.stderr)
    sampler = Sampler(
        fs,
        topology,
        pid=args.pid,
        bytes_per_token=args.bytes_per_token,
        nvml=False if args.no_nvml else None,
    )
    from rigtui.engine.access import AccessError, client_key
    from rigtui.engine.server_monitor import EndpointWatch

    try:
        key = client_key() if args.engine else None
    except AccessError as exc:
        print(f"rigtui sample: {exc}", file=sys.stderr)
        return EXIT_USAGE
    recorder = None
    if args.record:
        how = (
            f"rigtui sample on {socket.gethostname()} (root {fs.root}), interval "
            f"{args.interval}s" + (f", pid {args.pid}" if args.pid else "")
        )
        recorder = Recorder(args.record, topology, recorded=how)
    watches = [EndpointWatch(url, key) for url in args.engine]
    for w in watches:
        w.start()
    n = 0
    try:
        sampler.sample()  # priming reading: rates need two
        next_t = time.monotonic() + args.interval
        while args.count is None or n < args.count:
            time.sleep(max(0.0, next_t - time.monotonic()))
            next_t += args.interval
            _emit(sampler.sample(tuple(w.stats for w in watches)), args, recorder)
            n += 1
    finally:
        for w in watches:
            w.stop()
        sampler.close()
        if recorder is not None:
            recorder.close()
    return EXIT_OK


# -- compact text ------------------------------------------------------------------------------
def _gib(b: int | None) -> str:
    return "?" if b is None else f"{b / 2**30:.1f}"


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


# Reasons already printed in this run: a missing source says why once, not every second.
_SHOWN_REASONS: set[str] = set()


def format_sample(s, shown: set[str] | None = None) -> str:
    """A few lines per sample: time, CPU, traffic per socket, nodes, temps, GPUs, placement.
    With `shown`, an unavailable source's reason is printed the first time only."""
    clock = time.strftime("%H:%M:%S", time.localtime(s.t))
    sockets = " ".join(f"s{k} {v:.0f}%" for k, v in s.cpu.per_socket.items())
    lines = [
        f"{clock}  cpu {s.cpu.total:.0f}% ({len(s.cpu.per_cpu)} CPUs; {sockets})"
        + (f"  cost {s.sample_cost_ms:.2f} ms" if s.sample_cost_ms is not None else "")
    ]
    if s.cpu.engine_threads:
        busy = sorted(s.cpu.engine_threads, key=lambda x: -x[1])
        lines.append(
            f"  engine threads: {len(busy)}, busiest "
            + " ".join(f"{tid}:{pct:.0f}%" for tid, pct in busy[:6])
        )
    for m in s.memory_traffic:
        if m.available and (m.read_gbs is not None or m.total_gbs is not None):
            if m.read_gbs is not None and m.write_gbs is not None:
                fig = f"read {_g(m.read_gbs)} write {_g(m.write_gbs)} GB/s"
            elif m.read_gbs is not None:  # the estimate: weights + KV read per token
                fig = f"read ~{_g(m.read_gbs)} GB/s"
            else:  # amd_df, resctrl: reads and writes counted together
                fig = f"read+write {_g(m.total_gbs)} GB/s"
            ceil = f" of {m.ceiling_gbs:.0f}" if m.ceiling_gbs else ""
            lines.append(f"  mem traffic s{m.socket}: {fig}{ceil} [{m.source}]")
        else:
            if shown is not None and m.reason in shown:
                lines.append(f"  mem traffic s{m.socket}: n/a (as above)")
            else:
                lines.append(f"  mem traffic s{m.socket}: n/a ({m.reason})")
                if shown is not None and m.reason:
                    shown.add(m.reason)
    for n in s.nodes:
        lines.append(
            f"  node{n.node}: free {_gib(n.free_bytes)}/{_gib(n.total_bytes)} GiB, "
            f"file {_gib(n.file_bytes)}, anon {_gib(n.anon_bytes)}"
        )
    mem = s.memory
    if mem.swap_total_bytes:
        lines.append(f"  swap used {_gib(mem.swap_used_bytes)}/{_gib(mem.swap_total_bytes)} GiB")
    if mem.psi_some_avg10:
        lines.append(
            f"  memory pressure some {mem.psi_some_avg10:.1f}% full {_g(mem.psi_full_avg10)}%"
        )
    temps = [f"{t.label} {t.temp_c:.0f}C" for t in s.temperatures if t.temp_c is not None]
    if temps:
        lines.append("  temps: " + ", ".join(temps[:8]))
    for g in s.gpus:
        if not g.available:
            lines.append(f"  gpu{g.index}: unavailable ({g.reason})")
            continue
        link = (
            f"PCIe gen{g.pcie_gen}/{g.pcie_gen_max} x{g.pcie_width}/{g.pcie_width_max}"
            if g.pcie_gen is not None
            else "PCIe ?"
        )
        lines.append(
            f"  gpu{g.index} {g.name}: {_g(g.util_pct)}% "
            f"{_gib(g.mem_used_bytes)}/{_gib(g.mem_total_bytes)} GiB "
            f"{_g(g.power_w)}/{_g(g.power_limit_w)} W {_g(g.temp_c)}C {link}"
        )
    p = s.placement
    if p is not None:
        if p.available and p.model_file_bytes_per_node:
            per = " ".join(f"N{k} {_gib(v)}" for k, v in p.model_file_bytes_per_node.items())
            share = ""
            if p.model_file_bytes:
                pct = 100 * sum(p.model_file_bytes_per_node.values()) / p.model_file_bytes
                share = f", {min(pct, 100.0):.0f}% of the file"
            lines.append(f"  model pages (GiB): {per}{share}  [{os.path.basename(p.model_path or '')}]")
        else:
            lines.append(f"  placement: {p.reason}")
    for e in s.engines:
        rate = f", gen {e.gen_tok_s:.1f} tok/s" if e.gen_tok_s is not None else ""
        prompt = f", prompt {e.prompt_tok_s:.0f} tok/s" if e.prompt_tok_s is not None else ""
        ttft = f", TTFT {e.ttft_s * 1000:.0f} ms" if e.ttft_s is not None else ""
        served = (f", {e.requests_total} requests ({e.requests_in_flight} in flight)"
                  if e.url else "")  # fmt: skip
        slots = f", slots {e.slots.busy}/{e.slots.n_slots}" if e.slots is not None else ""
        lines.append(f"  engine {e.instance}: {e.state.value}{rate}{prompt}{ttft}{served}{slots}")
    return "\n".join(lines)
