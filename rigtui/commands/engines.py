"""`rigtui engines [--json]` lists the engines rigtui can launch and what they were built with;
`rigtui engines build [--native] [--cuda] [-j N]` compiles llama-server and rpc-server."""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "engines",
        help="list the engines (llama-cpp-python, llama-server, rpc-server) and their builds",
        description="List the inference engines rigtui can launch: the embedded llama-cpp-python "
        "and llama.cpp's own llama-server / rpc-server (a profile's `binary`, PATH, or rigtui's "
        "own build), with version, commit and what each was built with. `rigtui engines build` "
        "compiles llama-server and rpc-server from the llama.cpp source vendored in "
        "llama-cpp-python's sdist, into the user cache dir.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--binary", metavar="PATH", help="describe this llama-server instead")
    sub = p.add_subparsers(dest="action")
    b = sub.add_parser("build", help="compile llama-server and rpc-server (cached; resumable)",
                       description="Compile llama.cpp's llama-server and rpc-server (the llama.cpp "
                       "of the installed llama-cpp-python) with RPC, into the user cache dir. "
                       "About 30 minutes on 2 cores, once; a second run reuses the build.")  # fmt: skip
    b.add_argument("--native", action="store_true",
                   help="build for this CPU (GGML_NATIVE: AVX-512, AMX, ...); default: portable "
                   "AVX2, like llama-cpp-python's generic wheel")  # fmt: skip
    b.add_argument("--cuda", action="store_true", help="with the CUDA backend (needs nvcc)")
    b.add_argument("-j", "--jobs", type=int, help="parallel compile jobs (default: one per CPU)")
    b.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "build":
        return _build(args)
    from rigtui.commands._common import print_json
    from rigtui.engine import system_info
    from rigtui.engine.llama_server import (
        RPC_NAME,
        SERVER_NAME,
        binary_info,
        find_binary,
        info_json,
    )

    embedded = system_info()
    entries = [{"name": "llama-cpp-python", "found": embedded.available, "ok": embedded.available,
                "version": embedded.version, "path": None, "source": "python package",
                "system_info": embedded.system_info, "gpu_offload": embedded.gpu_offload,
                "reason": embedded.reason,
                "hint": None if embedded.available else "pip install 'llama-cpp-python[server]'"}]  # fmt: skip
    from rigtui.engine.server_build import FIT_NAME

    for name in (SERVER_NAME, RPC_NAME, FIT_NAME):  # llama-fit-params: plan's llama.cpp estimate
        found = find_binary(name, args.binary if name == SERVER_NAME else None)
        info = binary_info(found.path) if found.path and name == SERVER_NAME else None
        entries.append(info_json(found, info))
    if args.json:
        print_json({"engines": entries})
        return EXIT_OK
    for e in entries:
        if not e["found"] or e.get("ok") is False:
            print(f"{e['name']}: not available: {e.get('reason')}")
            if e.get("hint"):
                print(f"  hint: {e['hint']}")
            continue
        version = e.get("version") or "?"
        commit = f" ({e['commit']})" if e.get("commit") else ""
        print(f"{e['name']} {version}{commit}" + (f"  {e['path']} [{e['source']}]" if e["path"] else ""))
        if e.get("system_info"):
            print(f"  built with: {e['system_info'].strip()}")
        if e.get("compiler"):
            print(f"  compiler: {e['compiler']}")
        if e.get("backends"):
            print(f"  backends: {', '.join(e['backends'])}   buffer types (-ot): "
                  f"{', '.join(e['buffer_types'])}   RPC: {'yes' if e.get('rpc') else 'no'}")  # fmt: skip
        flags = e.get("build_flags") or {}
        if flags:
            cpu = "native (this CPU)" if flags.get("GGML_NATIVE") == "ON" else "portable AVX2"
            print(f"  rigtui build: {cpu}" + (", CUDA" if flags.get("GGML_CUDA") == "ON" else ""))
    return EXIT_OK


def _build(args: argparse.Namespace) -> int:
    from rigtui.engine.server_build import BuildError, build

    last = [-1.0]

    def progress(what: str, fraction: float | None) -> None:
        if args.quiet:
            return
        if fraction is None:
            print(f"rigtui engines build: {what}", file=sys.stderr, flush=True)
        elif fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            width = 30
            bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
            end = "\n" if fraction >= 1.0 or not sys.stderr.isatty() else "\r"
            print(f"[{bar}] {fraction:4.0%} {what[:80]:80}", end=end, file=sys.stderr, flush=True)

    try:
        bin_dir = build("native" if args.native else "portable", cuda=args.cuda, jobs=args.jobs,
                        progress=progress)  # fmt: skip
    except BuildError as exc:
        print(f"rigtui engines build: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\nrigtui engines build: interrupted (run it again to continue)", file=sys.stderr)
        return 130
    print(bin_dir)
    return EXIT_OK
