"""`rigtui` command line: argparse front door; the one place that wires real parts together.

Each subcommand lives in `rigtui/commands/<name>.py`, which defines

    def register(subparsers) -> None   # adds its parser, sets `func=run`
    def run(args) -> int               # the exit code

Command modules keep heavy imports (textual, llama_cpp, numpy, ...) inside `run`, so that
`rigtui probe` starts fast. `rigtui` with no subcommand opens the TUI (`rigtui.commands.tui`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from rigtui import __version__

# Exit codes shared by commands (documented in the README).
EXIT_OK = 0
EXIT_FAILURE = 1  # the thing ran and failed (engine crashed, ...)
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_BAD_PROFILE = 3  # a profile that does not validate
EXIT_ENGINE = 4  # the engine failed to start/load/generate
EXIT_INTERRUPTED = 130


def add_root_arg(parser: argparse.ArgumentParser) -> None:
    """`--root DIR`: read /sys and /proc under DIR (a captured machine). Also RIGTUI_FSROOT."""
    # SUPPRESS: a subcommand's own --root must not overwrite `rigtui --root DIR probe` with None
    # (argparse copies a subparser's defaults over the parent's values).
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="read /sys and /proc under DIR instead of / (a captured tree; env RIGTUI_FSROOT)",
    )


def add_app_cpus_arg(parser: argparse.ArgumentParser) -> None:
    """`--app-cpus LIST`: the housekeeping CPUs a monitor (the dashboard, `sample`, the
    exporter) keeps to while engines run; without it, the CPUs no engine uses."""
    parser.add_argument(
        "--app-cpus", metavar="LIST", default=None,
        help="CPUs the monitor itself runs on while engines run, e.g. 0-1 (default: the CPUs "
        "no engine uses; when the engines use all, it shares them at nice 10)",
    )  # fmt: skip


def app_cpus(args: argparse.Namespace) -> set[int] | None:
    """The --app-cpus set (ValueError with what to write when it does not parse)."""
    text = getattr(args, "app_cpus", None)
    if not text:
        return None
    from rigtui.model.cpulist import parse_cpulist

    try:
        cpus = set(parse_cpulist(text))
    except ValueError as exc:
        raise ValueError(f"--app-cpus {text!r}: {exc} (write a CPU list like 0-3,8)") from exc
    if not cpus:
        raise ValueError(f"--app-cpus {text!r}: no CPU in it (write a CPU list like 0-3,8)")
    return cpus


def make_fs(args: argparse.Namespace):  # -> HostFS
    """A HostFS for `--root`, else RIGTUI_FSROOT, else "/"."""
    from rigtui.hostfs import HostFS, default_root

    return HostFS(getattr(args, "root", None) or default_root())


def build_parser() -> argparse.ArgumentParser:
    import rigtui.commands as commands_pkg

    parser = argparse.ArgumentParser(
        prog="rigtui",
        description="See, launch and check LLM inference on big CPU/GPU rigs. "
        "With no command: the interactive dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"rigtui {__version__}")
    add_root_arg(parser)
    parser.set_defaults(root=None)
    parser.add_argument(
        "--launch", metavar="PROFILE", help="open the dashboard with PROFILE started"
    )
    parser.add_argument("--replay", metavar="FILE", help="open the dashboard on a recorded session")
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="dashboard refresh (seconds)"
    )
    add_app_cpus_arg(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"rigtui.commands.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


_VALUE_OPTIONS = {"--root", "--launch", "--replay", "--interval", "--app-cpus"}


def route_bench_mem(argv: list[str]) -> list[str]:
    """`rigtui bench mem ...` (memory bandwidth, analysis) and `rigtui bench PROFILE ...`
    (engine, llama-bench style) share the word `bench`: rewrite the first to `bench-mem`."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in _VALUE_OPTIONS:
            i += 2
            continue
        if tok.startswith("-"):
            i += 1
            continue
        if tok == "bench" and i + 1 < len(argv) and argv[i + 1] == "mem":
            return [*argv[:i], "bench-mem", *argv[i + 2 :]]
        return argv
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = route_bench_mem(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    try:
        if func is None:
            from rigtui.commands.tui import run_app

            return int(run_app(args) or 0)
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `rigtui probe --json | head`: not an error.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
