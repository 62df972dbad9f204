"""`rigtui bench (PROFILE | --model PATH) [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-r REPS]`:
llama-bench style prompt-processing (pp) and generation (tg) tests through rigtui's engine.
(`rigtui bench mem` is the memory-bandwidth probe, a different command.)"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_BAD_PROFILE, EXIT_ENGINE, EXIT_OK, EXIT_USAGE, add_root_arg, make_fs

_CSV_FIELDS = ("profile", "model_filename", "model_size", "model_n_params", "test", "n_prompt", "n_gen",
               "n_threads", "n_gpu_layers", "numa", "memory_policy", "cpu_mask", "n_batch", "n_ubatch",
               "type_k", "type_v", "flash_attn", "use_mmap", "n_depth", "test_time", "avg_ns", "stddev_ns",
               "avg_ts", "stddev_ts", "cpus_allowed", "model_bytes_per_node", "energy_j", "tok_per_j",
               "cpu_model", "sockets",
               "nodes", "cores", "channels", "gpus")  # fmt: skip


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a comma list of integers, e.g. 8,16,32"
        ) from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="llama-bench style pp/tg tests of a profile or model (`rigtui bench mem`: memory bandwidth)",
        description="Prompt processing (pp) and token generation (tg) speed, llama-bench style, run "
        "through rigtui's pinned engine: REPS timed repetitions after one warm-up, mean ± stddev. "
        "Lists sweep: -t 8,16,32 -ngl 0,20,-1 --numa disabled,distribute (one engine per point). "
        "For memory bandwidth per NUMA node use `rigtui bench mem`.",
    )  # fmt: skip
    p.add_argument("profile", metavar="PROFILE", nargs="?", help="profile name or path")
    p.add_argument(
        "-m", "--model", metavar="PATH", help="a GGUF file (default settings) instead of a profile"
    )
    p.add_argument(
        "-t", "--threads", type=_int_list, default=[], metavar="LIST", help="threads, e.g. 8,16,32"
    )
    p.add_argument(
        "-p",
        "--n-prompt",
        type=int,
        default=512,
        dest="n_prompt",
        help="pp test tokens (512; 0 skips)",
    )
    p.add_argument(
        "-n", "--n-gen", type=int, default=128, dest="n_gen", help="tg test tokens (128; 0 skips)"
    )
    p.add_argument("-r", "--reps", type=int, default=5, help="timed repetitions (5)")
    p.add_argument("-d", "--n-depth", type=_int_list, default=[0], dest="depths", metavar="LIST",
                   help="tokens already in the context, e.g. 0,4096,16384: speed at depth "
                   "(llama-bench's -d; the KV cache is read every token)")  # fmt: skip
    p.add_argument("-ngl", "--n-gpu-layers", type=_int_list, default=[], dest="gpu_layers", metavar="LIST",
                   help="GPU layers to sweep, e.g. 0,20,-1")  # fmt: skip
    p.add_argument("--numa", default="", metavar="LIST",
                   help="llama.cpp NUMA strategies to sweep: disabled,distribute,isolate,numactl")  # fmt: skip
    p.add_argument("--use-cases", action="store_true",
                   help="time the hardware guide's use cases (prompt, then generation at the "
                   "middle of the answer) and give each its verdict beside rigtui plan's")  # fmt: skip
    together = p.add_mutually_exclusive_group()
    together.add_argument("--per-node", action="store_true",
                          help="one instance per NUMA node (its CPUs, its memory), all at once: "
                          "the total tok/s of one model per node")  # fmt: skip
    together.add_argument("--concurrent", default="", metavar="P2,P3",
                          help="other profiles to run at the same time as PROFILE (total tok/s)")
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help="rows as a JSON list (llama-bench field names; with "
        "--per-node/--concurrent an object of instances and totals)"
    )
    out.add_argument("--csv", action="store_true", help="rows as CSV")
    add_root_arg(p)
    p.set_defaults(func=run)


def _load(args: argparse.Namespace, topology):
    """(profile, None) or (None, exit code) after printing why."""
    import os

    from rigtui.commands._common import load_profile_or_report
    from rigtui.model.profile import Profile
    from rigtui.profiles.checks import check_model

    if args.model:
        path = os.path.abspath(os.path.expanduser(args.model))
        profile = Profile(name=os.path.basename(path).removesuffix(".gguf"), path=None, model=path)
        issues = check_model(profile, topology, lambda key: ("--model", None))
        for issue in issues:
            print(str(issue), file=sys.stderr)
        if any(i.severity == "error" for i in issues):
            return None, EXIT_BAD_PROFILE
        return profile, None
    profile = load_profile_or_report(args.profile, topology)
    if profile is None:
        return None, EXIT_BAD_PROFILE
    if profile.engine != "llama-cpp-python":
        print(f"rigtui bench: profile {profile.name} runs {profile.engine}; rigtui bench measures "
              "the embedded llama-cpp-python engine (for llama.cpp's own binaries use their "
              "llama-bench with the same flags, or benchmarks/llama_server_overhead.py)",
              file=sys.stderr)  # fmt: skip
        return None, EXIT_BAD_PROFILE
    return profile, None


def pages_by_node(per_node: dict[int, int]) -> str:
    """ "N0 50% N1 50%": the share of the model file's resident pages on each node (numa_maps)."""
    total = sum(per_node.values())
    if not total:
        return "?"
    return " ".join(f"N{n} {100 * b / total:.0f}%" for n, b in sorted(per_node.items()))


def usage_problem(args: argparse.Namespace, numa: list[str], strategies) -> str | None:
    """The first bad flag, said the way the user typed it, or None."""
    if any(t < 1 for t in args.threads):
        return f"-t {','.join(map(str, args.threads))}: every thread count must be at least 1"
    if any(n < -1 for n in args.gpu_layers):
        return (f"-ngl {','.join(map(str, args.gpu_layers))}: GPU layers must be -1 (all), 0 "
                "(none) or a positive count")  # fmt: skip
    bad = [x for x in numa if x not in strategies]
    if bad:
        return f"--numa {','.join(bad)}: not a llama.cpp NUMA strategy (one of {', '.join(strategies)})"
    if args.reps < 1:
        return f"-r {args.reps}: at least 1 timed repetition"
    if any(d < 0 for d in args.depths):
        return f"-d {','.join(map(str, args.depths))}: a depth is 0 or more tokens"
    if args.n_prompt < 0 or args.n_gen < 0:
        return (
            f"-p {args.n_prompt} -n {args.n_gen}: token counts cannot be negative (0 skips a test)"
        )
    if args.n_prompt == 0 and args.n_gen == 0:
        return "-p 0 -n 0: nothing to measure; give -p (prompt tokens) or -n (generated tokens)"
    return None


def run(args: argparse.Namespace) -> int:
    from rigtui.engine.bench import BenchError, run_bench
    from rigtui.model.profile import NUMA_STRATEGIES
    from rigtui.probes import detect

    if bool(args.profile) == bool(args.model):
        print("rigtui bench: give a PROFILE or --model PATH (one of them)", file=sys.stderr)
        return EXIT_USAGE
    numa = [x.strip() for x in args.numa.split(",") if x.strip()]
    problem = usage_problem(args, numa, NUMA_STRATEGIES)
    if problem:
        print(f"rigtui bench: {problem}", file=sys.stderr)
        return EXIT_USAGE
    others = [x.strip() for x in args.concurrent.split(",") if x.strip()]
    if (args.per_node or others) and (args.threads or args.gpu_layers or numa):
        print("rigtui bench: --per-node/--concurrent run one configuration per instance; sweep "
              "-t/-ngl/--numa in a separate run", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    topology = detect(make_fs(args), nvml=None)
    profile, code = _load(args, topology)
    if profile is None:
        return code or EXIT_BAD_PROFILE
    if args.use_cases:
        if args.per_node or others or args.threads or args.gpu_layers or numa or args.depths != [0]:
            print("rigtui bench: --use-cases sets its own tests; run it without sweeps, -d or "
                  "--per-node/--concurrent", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        return run_use_cases(args, profile, topology)
    if args.per_node or others:
        return run_together(args, profile, others, topology)
    table = not (args.json or args.csv)
    if table:
        fp = topology.fingerprint()
        print(f"# {fp['cpu_model']} | {fp['sockets']} socket(s), {fp['nodes']} node(s), {fp['cores']} cores, "
              f"{fp['channels'] or '?'} channels | GPUs: {', '.join(fp['gpus']) or 'none'}")  # fmt: skip
        print(f"# profile {profile.name}: {profile.model}")
        print("| threads | ngl | numa | mem policy | CPUs | model pages | test | t/s | tok/J |")
        print("| ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: |")

    def on_row(row) -> None:
        if table:
            print(f"| {row.n_threads} | {row.n_gpu_layers} | {row.numa} | {row.memory_policy} | "
                  f"{row.cpus_allowed or '?'} | {pages_by_node(row.model_bytes_per_node)} | {row.test} | "
                  f"{row.avg_ts:.2f} ± {row.stddev_ts:.2f} | "
                  f"{'–' if row.tok_per_j is None else f'{row.tok_per_j:.2f}'} |", flush=True)  # fmt: skip

    try:
        rows = run_bench(profile, topology, threads=args.threads, gpu_layers=args.gpu_layers, numa=numa,
                         n_prompt=args.n_prompt, n_gen=args.n_gen, reps=args.reps,
                         depths=args.depths, on_row=on_row)  # fmt: skip
        code = EXIT_OK
    except BenchError as exc:
        print(f"rigtui bench: {exc}", file=sys.stderr)
        rows, code = getattr(exc, "rows", []), EXIT_ENGINE
    except (OSError, ValueError) as exc:
        print(f"rigtui bench: cannot start the engine: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    noisy = [
        f"{r.test} t={r.n_threads}"
        for r in rows
        if len(r.samples_ts) > 1 and r.stddev_ts > 0.1 * r.avg_ts
    ]
    no_energy = next((r.energy for r in rows if r.tok_per_j is None and r.energy), None)
    if table and no_energy:
        print(f"# tok/J: {no_energy}")
    elif table and rows and rows[0].energy:
        print(f"# tok/J: {rows[0].energy}; idle cores and other processes count too")
    if table and noisy:
        print(f"# noisy: stddev above 10% of the mean ({', '.join(noisy)}): other load on the "
              "machine, or more threads than free cores; close other work or raise -r")  # fmt: skip
    if args.json:
        from rigtui.commands._common import print_json

        print_json(rows)
    elif args.csv:
        _write_csv(rows)
    return code


def _write_csv(rows) -> None:
    """Bench rows as CSV on stdout: llama-bench's field names, the fingerprint flattened."""
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        d = {**vars(row), **row.fingerprint}
        d["gpus"] = ";".join(d.get("gpus") or [])
        d["model_bytes_per_node"] = ";".join(f"{n}:{b}" for n, b in row.model_bytes_per_node.items())
        writer.writerow(d)


def run_together(args: argparse.Namespace, profile, others: list[str], topology) -> int:
    """--per-node / --concurrent: the instances at once, their rows, then the totals."""
    from rigtui.engine.bench import per_node_profiles, totals

    if args.per_node:
        profiles = per_node_profiles(profile, topology)
        if len(profiles) < 2:
            print(f"rigtui bench: --per-node needs two NUMA nodes with CPUs and memory; this "
                  f"machine has {len(profiles)}", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    else:
        profiles = [profile]
        for name in others:
            other, code = _load(argparse.Namespace(model=None, profile=name), topology)
            if other is None:
                return code or EXIT_BAD_PROFILE
            profiles.append(other)
    table = not (args.json or args.csv)
    if table:
        names = ", ".join(p.name for p in profiles)
        print(f"# {len(profiles)} engines at once: {names}")
        print("| instance | threads | CPUs | model pages | test | t/s |")
        print("| --- | ---: | --- | --- | --- | ---: |")
    groups = _together_or_report(profiles, topology, n_prompt=args.n_prompt, n_gen=args.n_gen,
                                 reps=args.reps, depths=args.depths)  # fmt: skip
    if groups is None:
        return EXIT_ENGINE
    sums = totals(groups)
    rows = [r for g in groups for r in g]
    if args.json:
        from rigtui.commands._common import print_json

        print_json({"instances": rows, "totals": sums})
    elif args.csv:
        _write_csv(rows)
    else:
        for r in rows:
            pages = (pages_by_node(r.model_bytes_per_node) if r.use_mmap
                     else f"no mmap: {pages_by_node(r.anon_bytes_per_node)} of its memory")  # fmt: skip
            print(f"| {r.profile} | {r.n_threads} | {r.cpus_allowed or '?'} | "
                  f"{pages} | {r.test} | {r.avg_ts:.2f} ± {r.stddev_ts:.2f} |")  # fmt: skip
        for t in sums:
            print(f"| **all {t.instances}** | | | | {t.test} | **{t.avg_ts:.2f}** "
                  f"(slowest {t.min_ts:.2f}) |")  # fmt: skip
    return EXIT_OK


def _together_or_report(profiles, topology, **kw):
    """bench_together's rows, or None after printing why the engines failed."""
    from rigtui.engine.bench import BenchError, bench_together

    try:
        return bench_together(profiles, topology, **kw)
    except BenchError as exc:
        print(f"rigtui bench: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"rigtui bench: cannot start the engine: {exc}", file=sys.stderr)
    return None


def run_use_cases(args: argparse.Namespace, profile, topology) -> int:
    """--use-cases: each use case's prompt timed from an empty context and a short generation
    at the middle of its answer; measured verdicts beside the plan's predicted ones."""
    from rigtui.analysis.use_cases import measured_verdicts, measurement_tests

    plan = measurement_tests()
    tests = [t for _, pp, tg in plan for t in (pp, tg)]
    groups = _together_or_report([profile], topology, reps=args.reps, tests=tests)
    if groups is None:
        return EXIT_ENGINE
    (rows,) = groups
    speeds: dict[str, tuple[float | None, float | None]] = {}
    what: dict[str, str] = {}
    it = iter(rows)
    for uc, (n_p, _, _), (_, n_g, depth) in plan:
        pp, tg = next(it), next(it)  # the worker answers in request order, pp then tg
        speeds[uc] = (pp.avg_ts or None, tg.avg_ts or None)
        what[uc] = f"pp{n_p} {pp.avg_ts:.1f} tok/s, tg{n_g} @ d{depth} {tg.avg_ts:.1f} tok/s"
    measured = measured_verdicts(speeds, what.__getitem__)
    predicted = _predicted_use_cases(rows[0].model_filename, profile, topology, args)
    if args.json:
        from rigtui.commands._common import print_json

        print_json({"use_cases": [{"measured": m, "predicted": p}
                                  for m, p in zip(measured, predicted or [None] * len(measured),
                                                  strict=True)],
                    "rows": rows})  # fmt: skip
        return EXIT_OK
    print(f"# profile {profile.name}: {profile.model}; measured with rigtui bench, predicted by "
          "rigtui plan (its ceilings)")  # fmt: skip
    print("| use case | prompt / answer | TTFT | gen t/s | verdict | predicted |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for i, m in enumerate(measured):
        p = predicted[i] if predicted else None
        pred = (f"{p.verdict} ({_s(p.ttft_s)}, {_ts(p.gen_tok_s)})" if p is not None else "?")
        print(f"| {m.id} {m.what} | {m.prompt_tokens} / {m.gen_tokens} | {_s(m.ttft_s)} | "
              f"{_ts(m.gen_tok_s)} | **{m.verdict}** | {pred} |")  # fmt: skip
    return EXIT_OK


def _s(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f} s"


def _ts(v: float | None) -> str:
    return "?" if v is None else f"{v:.1f} tok/s"


def _predicted_use_cases(model_path: str, profile, topology, args):
    """The plan's verdicts for the same model and profile (None when it cannot plan it)."""
    from rigtui.analysis.gguf_facts import GgufError
    from rigtui.analysis.plan import PlanError
    from rigtui.commands.plan import plan_model

    try:
        return plan_model(model_path, profile, topology, make_fs(args)).use_cases
    except (GgufError, PlanError, OSError):
        return None
