"""`rigtui rpc-server --node N [--listen 127.0.0.1:50052]`: llama.cpp's rpc-server with its CPUs
and its memory on one NUMA node.

This process pins itself to the node's CPUs (sched_setaffinity), binds its memory to the node
(set_mempolicy MPOL_BIND), then *becomes* rpc-server (execve keeps both), so every thread and
every tensor buffer of it lives on node N. A llama-server profile with `rpc = ["HOST:PORT", ...]`
then spreads the model's layers over such servers: one per node of this machine, or per rig.
"""

from __future__ import annotations

import argparse
import os
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_USAGE, add_root_arg, make_fs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rpc-server",
        help="run llama.cpp's rpc-server with its CPUs and memory on one NUMA node",
        description="Run llama.cpp's rpc-server (a remote ggml backend for llama-server's --rpc) "
        "pinned to the CPUs of NUMA node N with its memory bound to that node. Point a "
        'llama-server profile at it with rpc = ["HOST:PORT"]. Runs until interrupted.',
    )
    p.add_argument("--node", type=int, required=True, help="the NUMA node (`rigtui probe`)")
    p.add_argument("--listen", default="127.0.0.1:50052", metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1:50052; rpc-server has no "
                   "authentication: keep it on loopback or a trusted network)")  # fmt: skip
    p.add_argument("--threads", type=int, help="CPU threads (default: the node's physical cores)")
    p.add_argument("--cache", action="store_true", help="rpc-server's local tensor file cache")
    p.add_argument("--binary", metavar="PATH", help="the rpc-server executable")
    p.add_argument("--json", action="store_true", help="print what is applied as one JSON line")
    add_root_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rigtui.commands._common import print_ndjson
    from rigtui.engine.llama_server import RPC_NAME, find_binary, rpc_server_argv
    from rigtui.model.cpulist import format_cpulist
    from rigtui.model.profile import parse_listen
    from rigtui.probes import detect
    from rigtui.syscalls.numa import set_mempolicy

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"rigtui rpc-server: {exc}", file=sys.stderr)
        return EXIT_USAGE
    topology = detect(make_fs(args), nvml=False)
    node = topology.node(args.node)
    if node is None:
        ids = ", ".join(str(n.id) for n in topology.nodes) or "none"
        print(f"rigtui rpc-server: NUMA node {args.node} does not exist (nodes: {ids})", file=sys.stderr)
        return EXIT_USAGE
    if not node.cpus:
        print(f"rigtui rpc-server: node {args.node} has no CPUs (memory-only); run it on a node "
              "with CPUs", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    found = find_binary(RPC_NAME, args.binary)
    if found.path is None:
        print(f"rigtui rpc-server: {found.reason}\n  hint: {found.hint}", file=sys.stderr)
        return EXIT_FAILURE
    cpus = sorted(set(node.cpus) & os.sched_getaffinity(0)) or sorted(node.cpus)
    threads = args.threads or len(topology.first_thread_per_core(tuple(cpus))) or len(cpus)
    argv = rpc_server_argv(found.path, host, port, threads, args.cache)
    try:
        os.sched_setaffinity(0, cpus)
        set_mempolicy("bind", (args.node,))
    except (OSError, ValueError) as exc:
        print(f"rigtui rpc-server: cannot place it on node {args.node}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    facts = {"event": "rpc_server", "node": args.node, "cpus": cpus, "memory_policy": "bind",
             "memory_nodes": [args.node], "threads": threads, "host": host, "port": port,
             "binary": found.path, "argv": argv, "pid": os.getpid()}  # fmt: skip
    if args.json:
        print_ndjson(facts)
    else:
        print(f"rigtui rpc-server: node {args.node}: CPUs {format_cpulist(cpus)}, memory bound to "
              f"node {args.node}, {threads} threads, listening on {host}:{port} ({found.path})",
              file=sys.stderr)  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        print(f"rigtui rpc-server: cannot run {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_FAILURE
