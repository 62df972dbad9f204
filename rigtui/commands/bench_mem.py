"""`rigtui bench mem [--json]` (the CLI rewrites it to `bench-mem`): memory bandwidth per NUMA
node, per socket, the local/remote matrix and the whole machine, beside the theoretical figure.
The result is cached per hardware fingerprint for the dashboard and `rigtui plan`.
"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_root_arg, make_fs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-mem", help="rigtui bench mem: memory bandwidth per NUMA node (read, triad, matrix)",
        description="rigtui bench mem: measure read and STREAM-triad bandwidth with threads "
        "pinned to each NUMA node and memory bound to each node in turn.",
    )  # fmt: skip
    add_root_arg(p)
    p.add_argument("--json", action="store_true", help="the result as JSON")
    p.add_argument(
        "--size",
        metavar="MiB",
        type=int,
        help="working set per thread in MiB (default: 4x the L3, at least 1 GiB per node)",
    )
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per figure (best kept)")
    p.add_argument(
        "--threads", type=int, metavar="N", help="threads per node (default: one per physical core)"
    )
    p.add_argument("--no-matrix", action="store_true", help="skip the local/remote matrix")
    p.add_argument("--no-latency", action="store_true", help="skip the idle-latency matrix")
    p.add_argument(
        "--latency-size", metavar="MiB", type=int,
        help="the latency chain's buffer per memory node in MiB (default: 4x the L3, at least 256)",
    )  # fmt: skip
    p.add_argument(
        "--kernel",
        choices=("c", "numpy"),
        default="c",
        help="c (compiled on first use; default) or numpy",
    )
    p.add_argument("--no-cache", action="store_true", help="do not store the result")
    p.add_argument(
        "--small-pages",
        action="store_true",
        help="4 KiB pages instead of 2 MiB (THP): what an mmap'd model file sees",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rigtui.analysis.membench import MemBenchError, run_membench
    from rigtui.analysis.membench_cache import save_membench
    from rigtui.analysis.membw_kernel import load_kernel
    from rigtui.commands._analysis import detect_topology, err
    from rigtui.commands._common import print_json

    fs = make_fs(args)
    if not fs.is_live:
        err("bench mem measures this machine: it cannot run on a captured tree (--root)")
        return EXIT_USAGE
    if (
        args.reps < 1
        or (args.size is not None and args.size < 1)
        or (args.threads is not None and args.threads < 1)
        or (args.latency_size is not None and args.latency_size < 1)
    ):
        err("--reps, --size, --latency-size and --threads take positive numbers")
        return EXIT_USAGE
    topology = detect_topology(fs)
    kernel = load_kernel(args.kernel)
    if args.kernel == "c" and kernel.name.startswith("numpy"):
        print("rigtui: no C compiler: using numpy kernels (triad under-reports)", file=sys.stderr)
    show = sys.stderr.isatty()

    def progress(done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // max(total, 1)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<24}"
        if show:
            sys.stderr.write(line)
            sys.stderr.flush()
        elif done == total:
            sys.stderr.write(f"bench mem: {total} runs done\n")

    try:
        result = run_membench(
            topology, bytes_per_thread=args.size * (1 << 20) if args.size else None,
            reps=args.reps, threads_per_node=args.threads, matrix=not args.no_matrix,
            kernel=kernel, progress=progress, latency=not args.no_latency,
            latency_bytes=args.latency_size * (1 << 20) if args.latency_size else None,
        )  # fmt: skip
    except (MemBenchError, OSError, ValueError) as exc:
        if show:
            sys.stderr.write("\n")
        err(f"bench mem: {exc}")
        return EXIT_FAILURE
    if show:
        sys.stderr.write("\r" + " " * 70 + "\r")
    if not args.no_cache:
        try:
            save_membench(result)
        except OSError as exc:
            err(f"could not cache the result: {exc}")
    if args.json:
        print_json(result)
    else:
        print_result(result)
    return EXIT_OK


def _pct(b) -> str:
    if b.theoretical_gbs is None:
        return "theoretical unknown (no DIMM data: see `rigtui probe`)"
    pct = b.read_pct
    # A platform-table figure is the platform's maximum, not these DIMMs: say which it is.
    of = " (platform max)" if (b.theoretical_basis or "").startswith("platform") else ""
    return f"you get {pct:.0f}% of {b.theoretical_gbs:.1f} GB/s{of}" if pct is not None else ""


def _g(v: float | None) -> str:
    return f"{v:7.1f}" if v is not None else "      -"


def print_result(result) -> None:
    print(f"kernel: {result.kernel}; best of the repetitions; GB/s = 1e9 bytes/s; "
          "read:write read 1:0, triad 2:1, copy 1:1")  # fmt: skip
    for b in result.runs():
        placed = {True: "", False: " (pages NOT where asked)", None: ""}[b.placement_ok]
        pct = _pct(b) if b.label != "cross-socket" else "the socket link, both ways at once"
        print(f"  {b.label:<12} read {_g(b.read_gbs)}  triad {_g(b.triad_gbs)}  copy "
              f"{_g(b.copy_gbs)}  {b.threads:3d} threads  {pct}{placed}")  # fmt: skip
        if b.note:
            print(f"             {b.note}")
    if result.matrix:
        cpu_nodes = sorted({c for b in result.nodes for c in b.cpu_nodes})
        mem_nodes = sorted({m for b in (*result.nodes, *result.matrix) for m in b.mem_nodes})
        print("  read matrix GB/s (rows: CPUs of node, columns: memory of node)")
        _grid(cpu_nodes, mem_nodes, lambda c, m: getattr(result.read_cell(c, m), "read_gbs", None))
    if result.latency:
        cpu_nodes = sorted({c.cpu_node for c in result.latency})
        mem_nodes = sorted({c.mem_node for c in result.latency})
        moved = " (pages NOT where asked)" if any(c.placement_ok is False for c in result.latency) else ""
        print(f"  idle latency matrix ns (rows: CPUs of node, columns: memory of node){moved}")
        _grid(cpu_nodes, mem_nodes, result.latency_ns)
    if result.latency_note:
        print(f"  {result.latency_note}")
    for n in result.notes:
        print(f"  note: {n}")
    if result.seconds is not None:
        print(f"  ({result.seconds:.1f} s)")


def _grid(rows, cols, value) -> None:
    print("           " + "".join(f"{'node ' + str(m):>10}" for m in cols))
    for c in rows:
        cells = [value(c, m) for m in cols]
        print(f"  node {c:<4}" + "".join(f"{v:10.1f}" if v else f"{'-':>10}" for v in cells))
