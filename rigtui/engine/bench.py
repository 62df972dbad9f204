"""llama-bench's job through rigtui's engine: pp/tg tests, repetitions, sweeps.

Every sweep point (threads x n_gpu_layers x NUMA strategy) runs in its own engine process,
placed exactly as the profile says (a NUMA strategy or a layer count can only be set at load).
Field names follow llama-bench's JSON output where they fit (`n_prompt`, `n_gen`, `avg_ts`,
`stddev_ts`, `samples_ts`, `n_threads`, `n_gpu_layers`, `model_size`, ...); each row also
carries the machine's fingerprint and the profile.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rigtui.engine.client import EngineProcess
from rigtui.model.engine import BenchResult, Error, Exit, Loaded, Placement
from rigtui.model.profile import Profile
from rigtui.model.topology import Topology


class BenchError(RuntimeError):
    """The engine failed during a benchmark (message says which sweep point and why)."""


@dataclass(frozen=True)
class BenchRow:
    profile: str
    model_filename: str
    model_size: int
    model_n_params: int | None
    test: str  # "pp512", "tg128"
    n_prompt: int
    n_gen: int
    n_threads: int
    n_gpu_layers: int
    numa: str
    memory_policy: str
    cpu_mask: str  # the CPU list the engine was pinned to ("" = not pinned)
    n_batch: int
    n_ubatch: int
    type_k: str
    type_v: str
    flash_attn: bool
    use_mmap: bool
    test_time: str
    samples_ts: tuple[float, ...]
    avg_ts: float
    stddev_ts: float
    samples_ns: tuple[int, ...]
    avg_ns: int
    stddev_ns: int
    load_s: float | None
    engine: str = "llama-cpp-python"
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # Where it really ran, read by the worker after the tests: bytes of the model file resident
    # per NUMA node (numa_maps), and its compute threads' CPUs (/proc/self/task/*/status).
    model_bytes_per_node: dict[int, int] = field(default_factory=dict)
    cpus_allowed: str = ""
    # its anonymous memory per node: the weights themselves with mmap = false (+ KV, buffers)
    anon_bytes_per_node: dict[int, int] = field(default_factory=dict)
    # RAPL energy over the timed repetitions (read by the worker around each): the packages'
    # (+ DRAM's where metered) joules, so idle cores and other processes count too
    energy_j: float | None = None
    tok_per_j: float | None = None
    energy: str = ""  # what the joules are ("RAPL via powercap (package-0, dram)") or why none
    n_depth: int = 0  # tokens in the context before the test (llama-bench's n_depth)


def _stats(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def sweep_profiles(profile: Profile, *, threads: Sequence[int] = (), gpu_layers: Sequence[int] = (),
                   numa: Sequence[str] = ()) -> list[Profile]:  # fmt: skip
    """One profile per combination (the profile's own value where a list is empty)."""
    out = []
    for t, ngl, strategy in itertools.product(threads or [profile.threads], gpu_layers or [profile.gpu_layers],
                                              numa or [profile.numa]):  # fmt: skip
        out.append(dataclasses.replace(profile, threads=t, batch_threads=t if t else profile.batch_threads,
                                       gpu_layers=ngl, numa=strategy))  # fmt: skip
    return out


def bench_profile(profile: Profile, topology: Topology, *, n_prompt: int = 512, n_gen: int = 128,
                  reps: int = 5, timeout: float = 3600.0, depths: Sequence[int] = (0,),
                  on_row: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:  # fmt: skip
    """Run pp and tg (at each of `depths`) for one profile in one engine process; raises
    BenchError on failure and ValueError when there is nothing to measure (both tests at 0
    tokens, reps < 1, a negative depth)."""
    (rows,) = bench_together([profile], topology, n_prompt=n_prompt, n_gen=n_gen, reps=reps,
                             timeout=timeout, depths=depths, on_row=on_row)  # fmt: skip
    return rows


def bench_together(profiles: Sequence[Profile], topology: Topology, *, n_prompt: int = 512,
                   n_gen: int = 128, reps: int = 5, timeout: float = 3600.0,
                   depths: Sequence[int] = (0,),
                   tests: Sequence[tuple[int, int, int]] | None = None,
                   on_row: Callable[[BenchRow], None] | None = None) -> list[list[BenchRow]]:  # fmt: skip
    """The same tests in one engine process per profile, all at the same time: every engine
    loads, then all are handed the tests at once (one model per NUMA node, the owners' GNU
    parallel test of NPS modes). `tests`: (n_prompt, n_gen, depth) requests in order, instead
    of n_prompt/n_gen at each of `depths`. Rows per profile, in order. Raises BenchError when
    any fails (every engine is stopped) and ValueError when there is nothing to measure."""
    if tests is None:
        tests = [(n_prompt, n_gen, d) for d in (tuple(depths) or (0,))]
    tests = list(tests)
    if (not tests or reps < 1 or any(p < 0 or g < 0 or p + g == 0 or d < 0 for p, g, d in tests)):
        raise ValueError(f"nothing to measure: tests (n_prompt, n_gen, depth) {tests}, reps {reps}")
    need = max(d + max(p, g + 1) for p, g, d in tests)
    ctx = max(256, -(-need // 256) * 256)
    profiles = [dataclasses.replace(p, ctx=ctx) for p in profiles]
    events: queue.Queue[tuple[int, Any]] = queue.Queue()
    engines = [EngineProcess(p, instance=f"bench-{p.name}" + (f"-{i}" if len(profiles) > 1 else ""),
                             topology=topology, log_events=False,
                             on_event=lambda ev, i=i: events.put((i, ev)))
               for i, p in enumerate(profiles)]  # fmt: skip
    rows: list[list[BenchRow]] = [[] for _ in profiles]
    loaded: list[Loaded | None] = [None] * len(profiles)
    placed = [False] * len(profiles)
    wanted = sum((p > 0) + (g > 0) for p, g, _ in tests)
    deadline = time.monotonic() + timeout

    def where(p: Profile) -> str:
        return f"{p.name} (threads {p.threads}, ngl {p.gpu_layers}, numa {p.numa})"

    try:
        for engine in engines:
            engine.start()
        while not all(placed):
            try:
                i, ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"{', '.join(p.name for p in profiles)}: no result within "
                                 f"{timeout:.0f} s") from None  # fmt: skip
            profile, engine = profiles[i], engines[i]
            if isinstance(ev, Loaded):
                loaded[i] = ev
                if all(loaded):  # together: no engine's tests run beside another's load
                    for e in engines:
                        for p, g, d in tests:  # queued: the worker runs them one after another
                            e.bench(n_prompt=p, n_gen=g, reps=reps, n_depth=d)
            elif isinstance(ev, Error):
                raise BenchError(f"{where(profile)}: {ev.message}")
            elif isinstance(ev, Exit):
                tail = " / ".join(ev.stderr_tail[-3:])
                raise BenchError(f"{profile.name}: the engine {ev.reason} during the benchmark ({tail})")
            elif isinstance(ev, BenchResult) and loaded[i] is not None:
                rows[i].append(_row(profile, engine, loaded[i], ev, topology))  # type: ignore[arg-type]
                if len(rows[i]) == wanted:  # the weights are paged in: where did they land?
                    engine.request_placement()
            elif isinstance(ev, Placement) and len(rows[i]) == wanted and not placed[i]:
                rows[i] = [_placed(r, ev) for r in rows[i]]
                placed[i] = True
    finally:
        for engine in engines:
            engine.stop()
    for group in rows:
        for row in group:
            if on_row:
                on_row(row)
    return rows


@dataclass(frozen=True)
class BenchTotal:
    """One test summed over engines that ran it at the same time (`rigtui bench --per-node`)."""

    test: str
    instances: int
    avg_ts: float  # the sum of the instances' means
    min_ts: float  # the slowest instance
    max_ts: float


def totals(groups: Sequence[Sequence[BenchRow]]) -> list[BenchTotal]:
    """Per test, the instances' tok/s summed: what the machine gives with all of them busy."""
    by_test: dict[str, list[float]] = {}
    for group in groups:
        for row in group:
            by_test.setdefault(row.test, []).append(row.avg_ts)
    return [BenchTotal(t, len(v), sum(v), min(v), max(v)) for t, v in by_test.items()]


def per_node_profiles(profile: Profile, topology: Topology) -> list[Profile]:
    """One copy of `profile` per NUMA node with CPUs and memory: its CPUs, its memory bound
    there, ggml's own NUMA mode off (rigtui pins), and mmap off, so each instance reads the
    weights into its own node's memory (one file's page cache lives on one node only): the
    Genoa notes' `numactl -N n -m n llama-cli --no-mmap --numa numactl`, once per node. A
    `threads` the profile fixes is kept; else one per core of the node."""
    nodes = [n for n in topology.nodes if n.cpus and n.mem_total_bytes]
    return [dataclasses.replace(profile, name=f"{profile.name}@node{n.id}", nodes=(n.id,), cpus=None,
                                memory_policy="bind", memory_nodes=(n.id,), numa="disabled",
                                mmap=False)
            for n in nodes]  # fmt: skip


def _placed(row: BenchRow, pl: Placement) -> BenchRow:
    from rigtui.model.cpulist import format_cpulist

    return dataclasses.replace(
        row,
        model_bytes_per_node={int(k): v for k, v in sorted(pl.model_file_bytes_per_node.items())},
        anon_bytes_per_node={int(k): v for k, v in sorted(pl.anon_bytes_per_node.items())},
        cpus_allowed=format_cpulist(pl.thread_cpus_allowed or pl.cpus_allowed),
    )


def _row(
    profile: Profile, engine: EngineProcess, loaded: Loaded, ev: BenchResult, topology: Topology
) -> BenchRow:
    n = ev.n_prompt if ev.test == "pp" else ev.n_gen
    samples_ts = tuple(n / s for s in ev.samples_s if s > 0)
    avg_ts, sd_ts = _stats(samples_ts) if samples_ts else (0.0, 0.0)
    samples_ns = tuple(int(s * 1e9) for s in ev.samples_s)
    avg_ns, sd_ns = _stats(samples_ns) if samples_ns else (0.0, 0.0)
    plan = engine.plan
    cpu_mask = ",".join(map(str, plan.cpus)) if plan and plan.cpus is not None else ""
    return BenchRow(
        profile=profile.name, model_filename=loaded.model_path, model_size=loaded.model_bytes,
        model_n_params=loaded.n_params,
        test=f"{ev.test}{n}" + (f" @ d{ev.n_depth}" if ev.n_depth else ""),  # llama-bench's name
        n_prompt=ev.n_prompt, n_gen=ev.n_gen, n_depth=ev.n_depth,
        n_threads=ev.n_threads, n_gpu_layers=profile.gpu_layers, numa=profile.numa,
        memory_policy=profile.memory_policy, cpu_mask=cpu_mask, n_batch=profile.batch,
        n_ubatch=profile.ubatch, type_k=profile.cache_type_k, type_v=profile.cache_type_v,
        flash_attn=profile.flash_attn, use_mmap=profile.mmap,
        test_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ev.t)),
        samples_ts=samples_ts, avg_ts=avg_ts, stddev_ts=sd_ts, samples_ns=samples_ns,
        avg_ns=int(avg_ns), stddev_ns=int(sd_ns), load_s=loaded.load_s, fingerprint=topology.fingerprint(),
        energy_j=ev.energy_j, energy=ev.energy,
        tok_per_j=round(n * len(ev.samples_s) / ev.energy_j, 4) if ev.energy_j else None,
    )  # fmt: skip


def run_bench(profile: Profile, topology: Topology, *, threads: Sequence[int] = (),
              gpu_layers: Sequence[int] = (), numa: Sequence[str] = (), n_prompt: int = 512,
              n_gen: int = 128, reps: int = 5, depths: Sequence[int] = (0,),
              on_row: Callable[[BenchRow], None] | None = None) -> list[BenchRow]:  # fmt: skip
    """Every sweep point, in order; rows of the points that ran before a failure are kept in
    the BenchError's `rows` attribute."""
    rows: list[BenchRow] = []
    for variant in sweep_profiles(profile, threads=threads, gpu_layers=gpu_layers, numa=numa):
        try:
            rows += bench_profile(variant, topology, n_prompt=n_prompt, n_gen=n_gen, reps=reps,
                                  depths=depths, on_row=on_row)  # fmt: skip
        except BenchError as exc:
            exc.rows = rows  # type: ignore[attr-defined]
            raise
    return rows
