"""`rigtui demo-model PATH [--size 300M] [--dtype f16|q8_0] [--experts N]`: write a synthetic GGUF model."""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-model",
        help="write a synthetic llama GGUF with random weights (no download needed)",
        description="Write a llama-architecture GGUF model with random weights and a byte-level "
        "vocabulary. Text is gibberish, speeds are real: use it to try profiles, placement and "
        "benchmarks on any machine. Sizes are file bytes: 8M, 100M, 300M, 1G, 4.5G ...",
    )
    p.add_argument("path", metavar="PATH", help="the .gguf file to write (replaced atomically)")
    p.add_argument("--size", default="300M", help="approximate file size (default 300M)")
    p.add_argument(
        "--dtype", choices=("f16", "q8_0"), default="f16", help="weight type (default f16)"
    )
    p.add_argument("--experts", type=int, default=0, metavar="N",
                   help="a mixture-of-experts model with N experts per layer (2 used per token), "
                   "the layout -ot exps=CPU / --n-cpu-moe act on (default 0: dense)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    p.add_argument("--ctx-train", type=int, default=2048, dest="n_ctx_train",
                   help="training context written to the metadata (default 2048)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the model's facts as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from rigtui.commands._common import print_json
    from rigtui.engine.demo_model import demo_model_dims, write_demo_model

    name = Path(args.path).name
    if re.fullmatch(r"\d+(\.\d+)?[KMGT]i?B?", name, re.IGNORECASE) and not Path(args.path).exists():
        # `rigtui demo-model 300M` would write a 300 MB file named "300M" in the current dir.
        print(
            f"rigtui demo-model: PATH {args.path!r} looks like a size; the path comes first: "
            f"rigtui demo-model demo-{name}.gguf --size {name}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        demo_model_dims(args.size, args.dtype, args.experts)
    except ValueError as exc:
        print(f"rigtui demo-model: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        info = write_demo_model(args.path, size=args.size, dtype=args.dtype, seed=args.seed,
                                n_ctx_train=args.n_ctx_train, experts=args.experts)  # fmt: skip
    except OSError as exc:
        print(
            f"rigtui demo-model: cannot write {args.path}: {exc.strerror or exc}", file=sys.stderr
        )
        return EXIT_FAILURE
    if args.json:
        import dataclasses

        print_json({**dataclasses.asdict(info), "path": str(info.path)})
    else:
        print(f"{info.path}: {info.file_bytes / 1e6:.1f} MB, {info.n_params:,} parameters ({info.dtype}), "
              f"{info.n_layers} layers, n_embd {info.n_embd}, {info.n_head} heads / {info.n_head_kv} KV heads, "
              f"n_ff {info.n_ff}" + (f" x {info.n_expert} experts ({info.n_expert_used} used)" if info.n_expert else "")
              + f", vocab {info.n_vocab}, trained context {info.n_ctx_train}")  # fmt: skip
    return EXIT_OK
