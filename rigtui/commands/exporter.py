"""`rigtui exporter [--listen 127.0.0.1:9101] [--interval S]`: this rig's telemetry for Prometheus.

A sampling thread takes one `Sample` per interval (the sampler's cost, < 2 ms, whatever the
scrape rate) and integrates memory traffic into byte counters; a scrape renders the latest
sample (telemetry/metrics.py) through prometheus_client (extra `prometheus`). Loopback unless
told: the metrics are read-only, but say what the machine runs. `--replay FILE` serves a
recording instead (deterministic values, for dashboards and tests); `--engine URL` follows a
served engine's tok/s, TTFT and requests as `rigtui sample --engine` does.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from rigtui.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_app_cpus_arg, add_root_arg, make_fs

DEFAULT_LISTEN = "127.0.0.1:9101"
CHECKS_EVERY_S = 300.0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "exporter", help="serve this rig's telemetry to Prometheus (/metrics)",
        description="Serve per-socket memory traffic against the channel ceiling, model pages per "
        "NUMA node, CPU load per socket, temperatures, GPUs, engine tok/s and the checks as "
        "Prometheus metrics on /metrics. Needs the `prometheus` extra (prometheus-client).",
    )  # fmt: skip
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks one)")  # fmt: skip
    p.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help="seconds between samples (default 5; Prometheus scrapes read the latest)")  # fmt: skip
    p.add_argument("--replay", metavar="FILE", help="serve a recording (rigtui sample --record)")
    p.add_argument("--engine", action="append", default=[], metavar="URL",
                   help="a served engine to follow (repeatable); API key: $RIGTUI_API_KEY, else "
                   "your key file")  # fmt: skip
    p.add_argument("--bytes-per-token", type=float, metavar="B",
                   help="bytes of weights read per generated token (the model's active weights): "
                   "adds each engine's roofline tok/s")  # fmt: skip
    p.add_argument("--no-checks", action="store_true", help="do not run `rigtui check`'s checks")
    p.add_argument("--no-nvml", action="store_true", help="do not query NVIDIA GPUs")
    add_app_cpus_arg(p)
    add_root_arg(p)
    p.set_defaults(func=run)


class Exporter:
    """The latest sample and the counters, kept by the sampling thread, read by scrapes."""

    def __init__(self, topology: Any, version: str, bytes_per_token: float | None = None) -> None:
        from rigtui.telemetry.metrics import Counters

        self.topology = topology
        self.version = version
        self.bytes_per_token = bytes_per_token
        self.counters = Counters()
        self.latest: Any = None
        self.measured: dict[int, float] = {}
        self.checks: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()  # a replay has served its last sample

    def add(self, sample: Any) -> None:
        with self.lock:
            self.counters.update(sample)
            self.latest = sample

    def collect(self) -> Any:
        """prometheus_client's collector protocol: the families of the latest sample."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        from rigtui.telemetry.metrics import families

        with self.lock:
            fams = families(self.latest, self.topology, self.counters, self.measured,
                            self.checks, self.version, self.bytes_per_token)  # fmt: skip
            n = self.counters.samples
        for f in fams:
            names = [k for k, _ in f.samples[0][0]] if f.samples else []
            if f.kind == "info":
                m: Any = InfoMetricFamily(f.name, f.help)  # exposed as NAME_info
                for labels, _ in f.samples:
                    m.add_metric([], dict(labels))
                yield m
                continue
            cls = CounterMetricFamily if f.kind == "counter" else GaugeMetricFamily
            name = f.name[: -len("_total")] if f.kind == "counter" else f.name
            m = cls(name, f.help, labels=names)
            for labels, value in f.samples:
                m.add_metric([v for _, v in labels], value)
            yield m
        c = CounterMetricFamily("rigtui_exporter_samples", "samples taken (or replayed) so far")
        c.add_metric([], n)
        yield c


def run(args: argparse.Namespace) -> int:
    try:
        import prometheus_client
    except ImportError:
        print("rigtui exporter needs prometheus-client: pip install 'rigtui[prometheus]'",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILURE
    from rigtui import __version__
    from rigtui.commands._common import stop_on_signals
    from rigtui.model.profile import is_loopback, parse_listen

    if not args.interval > 0:  # nan too
        print(f"rigtui exporter: --interval {args.interval}: give a positive number of seconds",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if args.bytes_per_token is not None and not args.bytes_per_token > 0:
        print(f"rigtui exporter: --bytes-per-token {args.bytes_per_token}: give a positive number",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"rigtui exporter: --listen {args.listen}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.replay:
        from rigtui.commands._common import place_monitor

        try:
            where = place_monitor(args)
        except ValueError as exc:
            print(f"rigtui exporter: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if where and args.app_cpus:
            print(f"rigtui exporter: {where}", file=sys.stderr)
    source = _source(args)
    if isinstance(source, int):
        return source
    topology, samples, watches, fs = source
    exp = Exporter(topology, __version__, args.bytes_per_token)
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(exp)  # type: ignore[arg-type]
    try:
        server, thread = prometheus_client.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        print(f"rigtui exporter: cannot listen on {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILURE
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"rigtui exporter: serving http://{shown}:{bound}/metrics"
          + (f" (replaying {args.replay})" if args.replay else "")
          + ("" if is_loopback(host) else
             " — reachable from other machines: the metrics name this rig's hardware and engines"),
          file=sys.stderr, flush=True)  # fmt: skip
    stop = threading.Event()
    worker = threading.Thread(target=_sample_loop, args=(exp, samples, watches, fs, args, stop),
                              name="exporter-sampler", daemon=True)  # fmt: skip
    worker.start()
    with stop_on_signals():
        try:
            while worker.is_alive():
                worker.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            for w in watches:
                w.stop()
            server.shutdown()
    return EXIT_OK


def _source(args: argparse.Namespace) -> Any:
    """(topology, samples iterator or None, engine watches, fs) or an exit code."""
    from rigtui.engine.access import AccessError, client_key
    from rigtui.engine.server_monitor import EndpointWatch

    if args.replay:
        from rigtui.telemetry.record import replay

        try:
            topology, samples = replay(args.replay)
        except OSError as exc:
            print(f"rigtui exporter: cannot replay {args.replay}: {exc.strerror or exc}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        if topology is None:
            print(f"rigtui exporter: {args.replay} has no machine in its header", file=sys.stderr)
            return EXIT_USAGE
        return topology, samples, [], None
    from rigtui.probes import detect

    try:
        key = client_key() if args.engine else None
    except AccessError as exc:
        print(f"rigtui exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fs = make_fs(args)
    topology = detect(fs, nvml=False if args.no_nvml else None)
    watches = [EndpointWatch(url, key) for url in args.engine]
    for w in watches:
        w.start()
    return topology, None, watches, fs


def _sample_loop(exp: Exporter, samples: Any, watches: list[Any], fs: Any,
                 args: argparse.Namespace, stop: threading.Event) -> None:  # fmt: skip
    """One sample per interval into `exp` (or the recording's, one per interval)."""
    if samples is not None:
        for s in samples:
            exp.add(s)
            if stop.wait(args.interval):
                return
        exp.done.set()
        stop.wait()  # keep serving the last sample
        return
    from rigtui.telemetry import Sampler

    sampler = Sampler(fs, exp.topology, nvml=False if args.no_nvml else None)
    _refresh_facts(exp, fs, args)
    last_checks = time.monotonic()
    sampler.sample()  # priming reading: rates need two
    while not stop.wait(args.interval):
        exp.add(sampler.sample(tuple(w.stats for w in watches)))
        if not args.no_checks and time.monotonic() - last_checks > CHECKS_EVERY_S:
            last_checks = time.monotonic()
            _refresh_facts(exp, fs, args)


def _refresh_facts(exp: Exporter, fs: Any, args: argparse.Namespace) -> None:
    """The slow-changing facts: `rigtui bench mem`'s cached figures and the checks."""
    try:
        from rigtui.analysis.membench_cache import load_cached_membench

        result = load_cached_membench(exp.topology)
        if result is not None:
            measured = {b.cpu_nodes[0]: b.read_gbs for b in result.nodes
                        if len(b.cpu_nodes) == 1 and b.read_gbs}  # fmt: skip
            with exp.lock:
                exp.measured = measured
    except Exception as exc:  # a broken cache only means no measured figure
        print(f"rigtui exporter: bench mem cache unreadable: {exc}", file=sys.stderr)
    if args.no_checks:
        return
    from rigtui.commands.tui import _checks

    run_checks = _checks(fs)
    if run_checks is None:
        return
    try:
        checks = [(c.id, c.status) for c in run_checks(exp.topology)]
    except Exception as exc:  # a check that breaks must not stop the metrics
        print(f"rigtui exporter: checks failed: {exc}", file=sys.stderr)
        return
    with exp.lock:
        exp.checks = checks
