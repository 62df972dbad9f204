"""`rigtui run PROFILE -p PROMPT [-n MAX_TOKENS] [--json]`: headless launch of a profile.

Text goes to stdout as it is generated, a stats line to stderr. `--json` streams the engine
events (NDJSON) instead. Exit codes: 0 ok, 3 bad profile, 4 engine failed (load, crash, kill).
"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import (
    EXIT_BAD_PROFILE,
    EXIT_ENGINE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_root_arg,
    make_fs,
)

MAX_PROMPT_CHARS = 64 << 20  # 16M tokens' worth: the largest ctx a profile allows (1 << 24)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="launch a profile headless and generate from a prompt",
        description="Launch PROFILE (a name from `rigtui profiles list`, or a .toml path) in its "
        "own pinned engine process, generate from PROMPT, print the text and a stats line. "
        "Exit codes: 0 ok, 3 bad profile, 4 engine failure.",
    )  # fmt: skip
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("-p", "--prompt", required=True, help="the prompt text ('-' reads stdin)")
    p.add_argument("-n", "--max-tokens", type=int, dest="max_tokens",
                   help="tokens to generate (default: the profile's sampling.max_tokens)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="stream engine events as NDJSON on stdout")
    p.add_argument(
        "--log", action="store_true", help="also show llama.cpp's log (stderr / Log events)"
    )
    p.add_argument("--temperature", type=float, help="override the profile's sampling temperature")
    p.add_argument("--seed", type=int, help="override the profile's seed")
    add_root_arg(p)
    p.set_defaults(func=run)


def stats_line(done, loaded_s: float | None) -> str:
    parts = [f"prompt {done.n_prompt} tok" + (f" {done.prompt_tok_s:.1f} tok/s" if done.prompt_tok_s else ""),
             f"gen {done.n_gen} tok" + (f" {done.gen_tok_s:.2f} tok/s" if done.gen_tok_s else "")]  # fmt: skip
    if done.ttft_s is not None:
        parts.append(f"ttft {done.ttft_s * 1000:.0f} ms")
    if loaded_s is not None:
        parts.append(f"load {loaded_s:.2f} s")
    if done.stop_reason != "served":  # llama-server's metrics do not say why a request ended
        parts.append(f"stop: {done.stop_reason}")
    return " | ".join(parts)


def _mib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def placement_line(pl) -> str:
    """Where the engine really ran and where the model's pages sat (/proc/PID/status and
    numa_maps, read by the worker after the answer): the proof that the profile was applied."""
    from rigtui.model.cpulist import format_cpulist

    files = dict(sorted(pl.model_file_bytes_per_node.items()))
    total = sum(files.values())
    landed = ", ".join(f"node{n} {_mib(b)} ({100 * b / total:.0f}%)" for n, b in files.items())
    anon = ", ".join(f"node{n} {_mib(b)}" for n, b in sorted(pl.anon_bytes_per_node.items()))
    # The threads' CPUs are where the work runs; llama.cpp's NUMA strategies may set them apart
    # from the main thread's (see docs/engine.md).
    cpus = format_cpulist(pl.thread_cpus_allowed or pl.cpus_allowed)
    if pl.thread_cpus_allowed and tuple(pl.thread_cpus_allowed) != tuple(pl.cpus_allowed):
        cpus += f" (main thread: {format_cpulist(pl.cpus_allowed)})"
    return (f"placement: CPUs {cpus} | memory nodes "
            f"{format_cpulist(pl.mems_allowed)} | model pages {landed or 'none resident'}"
            + (f" | anon {anon}" if anon else "")
            + (" | weights by llama.cpp: " + ", ".join(f"{k} {_mib(v)}" for k, v in
                                                      pl.model_buffers.items())
               if pl.model_buffers else ""))  # fmt: skip


def exit_message(ev) -> str:
    """What `rigtui run` says when the engine ends before the answer is done: why, what to do,
    and llama.cpp's last log lines."""
    how = f"exit code {ev.code}" if ev.signal is None else f"signal {ev.signal}"
    lines = [
        f"rigtui run: the engine process ended before the answer was done: {ev.reason} ({how})"
    ]
    if ev.signal == 9:
        lines.append("  hint: if nobody killed it, look for the OOM killer: `dmesg | grep -i oom`; "
                     "a smaller model, a smaller ctx or mmap = true needs less memory")  # fmt: skip
    elif ev.code not in (0, 2, 3):
        lines.append("  hint: llama.cpp's last log lines follow; `--log` shows the whole log")
    lines += [f"  | {line}" for line in ev.stderr_tail[-8:]]
    return "\n".join(lines)


def _announce_demo_model(profile, command: str = "run") -> None:
    """The demo model is generated on first use: say so, it takes a few seconds."""
    if not profile.is_demo:
        return
    from rigtui.engine.demo_model import profile_demo_path

    path = profile_demo_path(profile)
    if not path.is_file():
        print(f"rigtui {command}: generating the synthetic demo model ({profile.demo_size or '300M'}, "
              f"first use) into {path} ...", file=sys.stderr)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from rigtui.commands._common import stop_on_signals

    with stop_on_signals():  # SIGTERM/SIGHUP stop the engine as Ctrl-C does
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from rigtui.commands._common import load_profile_or_report, print_ndjson
    from rigtui.engine import EngineProcess
    from rigtui.model.engine import (
        Done,
        Error,
        Exit,
        Loaded,
        Log,
        Placement,
        PolicyApplied,
        PromptDone,
        Serving,
        Text,
        Token,
        event_to_json,
    )
    from rigtui.probes import detect
    from rigtui.profiles.validate import check_value

    if args.max_tokens is not None and args.max_tokens < 1:
        print(f"rigtui run: -n {args.max_tokens}: the number of tokens to generate must be at "
              "least 1 (leave -n out for the profile's sampling.max_tokens)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    for flag, key, value in (("-n", "sampling.max_tokens", args.max_tokens),
                             ("--temperature", "sampling.temperature", args.temperature),
                             ("--seed", "seed", args.seed)):  # fmt: skip
        problem = check_value(key, value) if value is not None else None
        if problem:
            print(f"rigtui run: {flag} {problem[0]}" + (f" ({problem[1]})" if problem[1] else ""),
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    if args.prompt == "-":
        prompt = sys.stdin.read(MAX_PROMPT_CHARS + 1)
        if len(prompt) > MAX_PROMPT_CHARS:
            print(f"rigtui run: the prompt on stdin is over {MAX_PROMPT_CHARS >> 20} Mi characters: "
                  "more than any context holds (a token is ~4 characters)", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
    else:
        prompt = args.prompt
    topology = detect(make_fs(args), nvml=None)
    profile = load_profile_or_report(args.profile, topology)
    if profile is None:
        return EXIT_BAD_PROFILE
    if args.seed is not None:
        profile = dataclasses.replace(profile, seed=args.seed)
    # llama.cpp's load log (hundreds of lines) only travels as events when it is shown.
    engine = EngineProcess(profile, instance=profile.name, topology=topology, log_events=args.log)
    _announce_demo_model(profile)
    try:
        engine.start()
    except (OSError, ValueError) as exc:
        print(f"rigtui run: cannot start the engine: {exc}", file=sys.stderr)
        return EXIT_ENGINE
    sampling = {"temperature": args.temperature} if args.temperature is not None else {}
    max_tokens = args.max_tokens or profile.sampling.max_tokens
    # llama-server takes no prompt on stdin: once it serves, it is asked like any client
    served = not engine.backend.stdin_ops
    if not served:
        engine.prompt(prompt, max_tokens=max_tokens, **sampling)
    load_s, code, done, placement = None, EXIT_ENGINE, None, None
    replied = not served  # the client's stream ended (for the stdin path: Done says it all)
    asked = stopped = False
    try:
        for ev in engine.events():
            if args.json:
                if not isinstance(ev, Log) or args.log:
                    print_ndjson(event_to_json(ev))
            elif isinstance(ev, (Token, Text)):
                sys.stdout.write(ev.text)
                sys.stdout.flush()
            elif isinstance(ev, Log) and args.log:
                print(ev.line, file=sys.stderr)
            elif isinstance(ev, PolicyApplied):
                for w in ev.warnings:
                    print(f"rigtui run: {w}", file=sys.stderr)
            elif isinstance(ev, PromptDone) and ev.asked_tokens is not None:
                print(f"rigtui run: note: generating at most {ev.max_tokens} tokens, not "
                      f"{ev.asked_tokens}: the prompt's {ev.n_tokens} tokens leave no more of "
                      "the context (raise ctx in the profile for more)", file=sys.stderr)  # fmt: skip
            if isinstance(ev, Serving) and served and done is None:
                engine.ask(prompt, max_tokens=max_tokens, **sampling)
            elif isinstance(ev, Text) and ev.final:  # (a failed ask also sent an Error: it stops)
                replied = True
            if isinstance(ev, Placement):
                placement = ev
            elif isinstance(ev, Loaded):
                load_s = ev.load_s
            elif isinstance(ev, Error):
                print(f"rigtui run: {ev.kind + ' error' if ev.kind != 'error' else 'engine'}: {ev.message}" + (f"\n  hint: {ev.hint}" if ev.hint else ""),
                      file=sys.stderr)  # fmt: skip
                if ev.kind == "prompt":
                    engine.stop()
            elif isinstance(ev, Done):
                done, code = ev, EXIT_OK
            elif isinstance(ev, Exit) and done is None:
                if ev.code != 0 or ev.signal is not None:  # a clean exit: the error said why
                    print(exit_message(ev), file=sys.stderr)
                code = EXIT_ENGINE
            # the answer is over once the engine said Done and (llama-server) the client has
            # its last chunk; then where the pages are now, after generating, and only then
            # stop. llama-server's is read here (/proc), queued before stop() is asked; the
            # worker reports its own after its first prompt, and stop() must wait for it: on a
            # big model numa_maps takes seconds to read, longer than stop() gives it
            if done is not None and replied and not asked:
                asked = True
                if served:
                    engine.request_placement()
                    stopped = True
                    engine.stop()
            elif asked and not stopped and isinstance(ev, Placement):
                stopped = True
                engine.stop()
    except KeyboardInterrupt:
        engine.cancel()
        engine.stop(timeout=2.0)
        return EXIT_INTERRUPTED
    finally:
        if engine.running:
            engine.stop(timeout=2.0)
    if done is not None and not args.json:
        sys.stdout.write("\n")
        print(stats_line(done, load_s), file=sys.stderr)
        if placement is not None:
            print(placement_line(placement), file=sys.stderr)
            for w in placement.warnings:
                print(f"rigtui run: WARNING: placement not as asked: {w}", file=sys.stderr)
    return code
