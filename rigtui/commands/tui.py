"""`rigtui` with no subcommand: the dashboard. Wires the real parts into `Services` for the App.

Modes:
- live (default): HostFS("/"), `detect`, `Sampler`, profiles, the engine, checks, bench;
- `--root DIR`: a captured machine; its files are sampled as they are (static), no engine;
- `--replay FILE`: a recording made with `rigtui sample --record`; no engine.
Heavy imports (textual, the probes) happen here, inside `run_app`, not at CLI start.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, make_fs


def profiles_api() -> Any:
    """The profiles functions the UI calls, from `rigtui.profiles` (or its submodules when the
    package does not re-export them)."""
    import rigtui.profiles as pkg

    names = (
        "list_profiles", "load_profile", "check_profile", "update_profile", "new_profile_text",
        "save_profile_text", "read_profile_file", "duplicate_profile", "delete_profile", "user_profile_dir",
    )  # fmt: skip
    found: dict[str, Any] = {}
    for name in names:
        fn = getattr(pkg, name, None)
        if fn is None:
            for sub in ("store", "loader", "new", "create", "template"):
                try:
                    mod = __import__(f"rigtui.profiles.{sub}", fromlist=[name])
                except ImportError:
                    continue
                fn = getattr(mod, name, None)
                if fn is not None:
                    break
        if fn is not None:
            found[name] = fn
    from rigtui.commands.profiles import check_with_fit  # the same check as `profiles check`

    found["check_profile"] = check_with_fit
    return types.SimpleNamespace(**found)


def _prepare_demo(profile: Any, progress: Callable[[str, float | None], None]) -> None:
    """Generate the demo model on first use, showing it as progress (seconds for 300M)."""
    if not getattr(profile, "is_demo", False):
        return
    from rigtui.engine.demo_model import ensure_profile_demo, profile_demo_path

    size = profile.demo_size or "300M"
    if profile_demo_path(profile).is_file():
        return
    progress(f"generating demo model {size} (first use)", None)
    ensure_profile_demo(profile)
    progress(f"demo model {size} ready", 1.0)


def _engine_factory(topology: Any) -> Callable[[Any, Callable[[Any], None]], Any] | None:
    try:
        from rigtui.engine.client import EngineProcess
    except ImportError:
        return None
    import threading

    counter = iter(range(1, 1_000_000))
    claimed: set[int] = set()
    claim_lock = threading.Lock()  # the supervisor launches profiles from parallel threads

    def make(profile: Any, on_event: Callable[[Any], None]) -> Any:
        from rigtui.commands.serve import free_listen, resolve_listen

        # every launch serves; without a listen key of its own, the first free port from
        # 8080 on, so that several profiles launched from the TUI can run at once
        listen = resolve_listen(None, profile)
        if profile.listen is None:  # skip ports handed out already: their workers may not
            with claim_lock:  # have bound them yet
                listen = free_listen(*listen, taken=claimed)
                claimed.add(listen[1])
        # log_events=False: llama.cpp's log stays in the engine's log_tail (read for the error
        # panel) instead of ~500 Log events per load, each of which would redraw the UI
        port = listen[1] if profile.listen is None else None

        def forward(ev: Any) -> None:
            if port is not None and type(ev).__name__ == "Exit":  # the port is free again
                with claim_lock:
                    claimed.discard(port)
            on_event(ev)

        return EngineProcess(
            profile,
            instance=f"ui-{next(counter)}",
            on_event=forward,
            topology=topology,
            log_events=False,
            listen=listen,
        )

    return make


def _fleet_reader() -> Callable[[], tuple[list[Any], str | None]] | None:
    """The rigs of ~/.config/rigtui/fleet.toml, read as `rigtui fleet` reads them; None without
    prometheus-client (its parser reads the exporters' pages)."""
    import importlib.util

    if importlib.util.find_spec("prometheus_client") is None:
        return None
    from rigtui.commands.fleet import read_fleet
    from rigtui.telemetry.fleet import fleet_file

    def read() -> tuple[list[Any], str | None]:
        rows, why = read_fleet([], None)
        if why:  # the command line's advice does not apply in the TUI
            why = (f"no rigs: list them in {fleet_file()}: [rigs] epyc-1 = \"http://epyc-1:9101\" "
                   "(their `rigtui exporter`), or prometheus = \"http://HOST:9090\"")  # fmt: skip
        return rows, why

    return read


def _checks(fs: Any) -> Callable[[Any], list[Any]] | None:
    """run_checks with the same context `rigtui check` builds (engine facts, PSI, root)."""
    try:
        from rigtui.analysis.checks import run_checks
        from rigtui.analysis.context import build_context
        from rigtui.commands._analysis import engine_facts
    except ImportError:
        return None

    def run(
        topology: Any, *, model_path: str | None = None, profile_threads: int | None = None,
        profile: str | None = None,
    ) -> list[Any]:
        info, offload, reason = engine_facts(fs.is_live)
        loaded = None
        if profile:  # the running engine's profile: numa_mode judges what it runs
            try:
                from rigtui.profiles import load_profile

                loaded = load_profile(profile, topology=topology)
            except Exception:  # noqa: BLE001 - a profile edited since the launch: judge without
                loaded = None
        ctx = build_context(
            fs,
            model_path=model_path,
            model_source="the running engine" if model_path else None,
            profile_threads=profile_threads,
            profile=loaded,
            engine_system_info=info,
            engine_gpu_offload=offload,
            engine_reason=reason,
            topology=topology,
        )
        return list(run_checks(topology, ctx))

    return run


def _membench(topology: Any, live: bool) -> tuple[Any, Any]:
    try:
        from rigtui.analysis.membench_cache import load_cached_membench, save_membench
    except ImportError:
        return None, None

    def load() -> Any:
        return load_cached_membench(topology)

    if not live:
        return load, None

    def measure(progress: Callable[[str], None]) -> Any:
        from rigtui.analysis.membench import run_membench

        result = run_membench(
            topology, progress=lambda done, steps, label: progress(f"{done}/{steps} {label}")
        )
        save_membench(result)
        return result

    return load, measure


def _bytes_per_token() -> Callable[[str, int], float | None] | None:
    try:
        from rigtui.analysis.plan import bytes_per_token
    except ImportError:
        return None

    def get(model_path: str, ctx: int) -> float | None:
        v = bytes_per_token(model_path, ctx)
        return getattr(v, "value", v)  # a Figure or a plain number

    return get


def _app_placement(args: argparse.Namespace) -> Callable[[set[int]], str | None] | None:
    """The app's own threads kept off the engines' CPUs (syscalls/process.StayOff). The thread
    that forks the engines starts first and is left alone: they inherit its CPUs and priority."""
    from rigtui.cli import app_cpus
    from rigtui.engine.client import spawn
    from rigtui.syscalls.process import StayOff, placement_enabled

    housekeeping = app_cpus(args)
    if not placement_enabled():
        return None
    try:
        return StayOff(housekeeping, keep=frozenset({spawn.start()})).update
    except OSError:  # no sched_getaffinity (not Linux)
        return None


def build_services(args: argparse.Namespace) -> Any:
    """Services for the App from the command line (raises SystemExit-worthy ValueError)."""
    from rigtui.probes import detect
    from rigtui.ui.services import ReplaySource, Services

    interval = max(0.2, float(getattr(args, "interval", 1.0) or 1.0))
    replay_path = getattr(args, "replay", None)
    if replay_path:
        from rigtui.model.common import Problem
        from rigtui.telemetry.record import replay

        problems: list[Problem] = []
        topology, samples = replay(replay_path, problems)
        samples = list(samples)
        notes = [f"{p.path}: {p.reason}" for p in problems[:3]]
        if topology is None:
            topology = detect(make_fs(args))
            notes.append("the recording has no topology: showing this machine's")
        return Services(
            topology=topology,
            source=ReplaySource(samples),
            mode="replay",
            mode_detail=os.path.basename(replay_path),
            interval=interval,
            load_membench=None,
            read_fleet=_fleet_reader(),
            notes=notes,
        )
    fs = make_fs(args)
    topology = detect(fs)
    live = fs.is_live
    from rigtui.telemetry import Sampler

    sampler = Sampler(fs, topology)
    load_mb, run_mb = _membench(topology, live)
    services = Services(
        topology=topology,
        source=sampler,
        mode="live" if live else "captured",
        mode_detail="" if live else os.path.basename(fs.root.rstrip("/")) or fs.root,
        interval=interval,
        profiles=profiles_api(),
        run_checks=_checks(fs),
        load_membench=load_mb,
        run_membench=run_mb,
        read_fleet=_fleet_reader(),
        launch=getattr(args, "launch", None),
        plan_profile=_plan_profile(fs, topology),
    )
    if live:
        services.engine_factory = _engine_factory(topology)
        services.place_app = _app_placement(args)
        services.prepare_launch = _prepare_demo
        services.bytes_per_token = _bytes_per_token()
        services.set_pid = getattr(sampler, "set_pid", None)
        services.set_bytes_per_token = getattr(sampler, "set_bytes_per_token", None)
    elif services.launch:
        raise ValueError("--launch needs the live machine: drop --root to start an engine")
    return services


def _plan_profile(fs, topology):
    """The Profiles screen's plan of a loaded profile: `rigtui plan --profile`'s figures."""

    def plan(profile) -> tuple[object, str | None]:
        from rigtui.analysis.gguf_facts import GgufError
        from rigtui.analysis.plan import PlanError
        from rigtui.commands.plan import plan_model

        path = profile.model
        if profile.is_demo:
            from rigtui.engine.demo_model import profile_demo_path

            demo = profile_demo_path(profile)
            if not demo.exists():  # generating it is the launch's job, not a list's
                return None, f"{profile.model} is generated on first launch; plan it then"
            path = str(demo)
        if not os.path.exists(path):
            return None, f"no model file at {path}"
        try:
            return plan_model(path, profile, topology, fs), None
        except (GgufError, PlanError, OSError) as exc:
            return None, str(exc)

    return plan


WEB_PARENT_ENV = "RIGTUI_WEB_PARENT"  # set by `rigtui web` for the apps it runs


def run_app(args: argparse.Namespace) -> int:
    web_parent = os.environ.get(WEB_PARENT_ENV, "")
    if web_parent.isdigit():  # a tab of `rigtui web`: go with the server, however it ends
        from rigtui.syscalls.process import die_with_parent

        if not die_with_parent(int(web_parent)):
            return EXIT_FAILURE
    if getattr(args, "replay", None) and getattr(args, "launch", None):
        print("rigtui: --launch and --replay do not mix (a replay has no engine)", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "replay", None) and not os.path.isfile(args.replay):
        print(f"rigtui: no recording at {args.replay}", file=sys.stderr)
        return EXIT_USAGE
    # Probe the machine while the main thread imports Textual: both are needed before the
    # first frame, and overlapping them shortens time-to-first-screen.
    built: dict[str, Any] = {}

    def build() -> None:
        try:
            built["services"] = build_services(args)
        except Exception as exc:  # reported below, on the main thread
            built["error"] = exc

    worker = threading.Thread(target=build, name="rigtui-probe", daemon=True)
    worker.start()
    from rigtui.ui.app import RigApp

    worker.join()
    if "error" in built:
        exc = built["error"]
        if isinstance(exc, ValueError):
            print(f"rigtui: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise exc
    services = built["services"]

    app = RigApp(services)
    result = app.run()
    if app.return_code not in (None, 0):
        return EXIT_FAILURE
    return int(result or EXIT_OK)
