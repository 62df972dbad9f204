"""`rigtui bench mem`: memory bandwidth per NUMA node, per socket, the local/remote matrix and the
whole machine, beside the theoretical figure from the probe; and the idle-latency matrix.

How a run works (Intel MLC's method, STREAM's arithmetic): one Python thread per physical core of
the CPU node(s), each pinned to its CPU (`sched_setaffinity(0)` pins the calling thread), binds
its memory policy to the memory node (`set_mempolicy(MPOL_BIND)`), first-touches its own arrays
(so the pages land there; `move_pages` confirms it) and then all threads run the kernel together
between barriers. A rep's bandwidth is bytes moved by all threads / (last finish - first start);
the best rep counts, as in STREAM. Three read:write mixes: read 1:0 (8 B per element), triad 2:1
(24 B) and copy 1:1 (16 B), STREAM's counts (no write-allocate). Shell equivalent:
`numactl --cpunodebind=N --membind=M stream`, `mlc --bandwidth_matrix`.

Latency (`mlc --latency_matrix`): per memory node, one buffer well past the L3 is bound there and
chained into one random cycle of its cache lines; a thread on each CPU node then follows the chain
alone, every load waiting for the one before, and ns per load is the idle latency.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rigtui.analysis.membench_notes import latency_notes, matrix_notes
from rigtui.analysis.membw_kernel import Kernel, load_kernel
from rigtui.model.analysis import LatencyCell, MemBandwidth, MemBenchResult
from rigtui.model.topology import Topology
from rigtui.syscalls import numa, pages

GB = 1e9
MiB = 1 << 20
Progress = Callable[[int, int, str], None]  # (step done, steps, what is running)
_MADV_HUGEPAGE = 14  # include/uapi/asm-generic/mman-common.h
MIXES = ("read", "triad", "copy")  # read:write 1:0, 2:1, 1:1
LINE = 64  # bytes per link of the latency chain: one cache line


class MemBenchError(Exception):
    """A bench that cannot run here (no CPUs allowed, no memory node...): the message says why."""


@dataclass(frozen=True)
class RunSpec:
    label: str
    cpus: tuple[int, ...]  # one thread each
    mem_node_of_cpu: tuple[int | None, ...]  # memory node each thread binds to (None: no bind)
    cpu_nodes: tuple[int, ...]
    mem_nodes: tuple[int, ...]
    bytes_per_thread: int
    ops: tuple[str, ...]  # "read", "triad", "copy"
    theoretical_gbs: float | None
    theoretical_basis: str | None
    note: str | None = None
    interleave: tuple[int, ...] = ()  # every thread's memory interleaved over these nodes


# -- one run ---------------------------------------------------------------------------------
class _Buffer:
    """Anonymous private mapping (munmap'd on close): three arrays a, b, c of n doubles."""

    def __init__(self, n: int, huge_pages: bool = True) -> None:
        self.n = n
        self.size = 3 * n * 8
        lib = pages.libc()
        addr = lib.mmap(None, self.size, 0x1 | 0x2, 0x02 | 0x20, -1, 0)  # RW, PRIVATE|ANON
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise MemBenchError(
                f"cannot map {self.size / MiB:.0f} MiB: {os.strerror(ctypes.get_errno())}"
            )
        self.addr = int(addr)
        if huge_pages:
            # 2 MiB pages take TLB misses out of the figure (4 KiB pages measured 25-35% lower
            # in a VM, where a miss is a nested page walk); a no-op when THP is "never".
            lib.madvise(ctypes.c_void_p(self.addr), self.size, _MADV_HUGEPAGE)

    def arrays(self) -> tuple[int, int, int]:
        return self.addr, self.addr + self.n * 8, self.addr + 2 * self.n * 8

    def close(self) -> None:
        pages.libc().munmap(ctypes.c_void_p(self.addr), self.size)


def _sampled_nodes(buf: _Buffer) -> list[int]:
    """The node of 64 pages spread over `buf` (move_pages; raises OSError)."""
    npg = buf.size // pages.PAGE_SIZE
    step = max(1, npg // 64)
    return pages.node_of_pages([buf.addr + i * pages.PAGE_SIZE for i in range(0, npg, step)])


def _placement_ok(bufs: Sequence[_Buffer], want: Sequence[int | None]) -> bool | None:
    """Sample 64 pages of each buffer with move_pages: all on the node bound to?"""
    try:
        for buf, node in zip(bufs, want, strict=True):
            if node is not None and any(s != node for s in _sampled_nodes(buf)):
                return False
        return True
    except OSError:
        return None


def _interleave_ok(bufs: Sequence[_Buffer], nodes: Sequence[int]) -> bool | None:
    """Sample 64 pages of each buffer: only on `nodes`, and on every one of them?"""
    try:
        seen = {s for buf in bufs for s in _sampled_nodes(buf)}
        return seen == set(nodes)
    except OSError:
        return None


def run_one(
    spec: RunSpec, kernel: Kernel, reps: int = 5, bind: bool = True, huge_pages: bool = True
) -> MemBandwidth:
    """Run `spec`: every op `reps` times after one warm-up, best rep kept."""
    n = max(1024, spec.bytes_per_thread // 24)  # elements per array (3 arrays)
    nthreads = len(spec.cpus)
    ready = threading.Barrier(nthreads + 1)
    go = threading.Barrier(nthreads + 1)
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    bufs: list[_Buffer | None] = [None] * nthreads
    errors: list[str] = []
    lock = threading.Lock()
    schedule = [(op, r) for op in spec.ops for r in range(reps + 1)]

    def worker(i: int) -> None:
        cpu, node = spec.cpus[i], spec.mem_node_of_cpu[i]
        try:
            os.sched_setaffinity(0, {cpu})
            if bind and spec.interleave:
                numa.set_mempolicy("interleave", list(spec.interleave))
            elif bind and node is not None:
                numa.set_mempolicy("bind", [node])
            buf = _Buffer(n, huge_pages)
            bufs[i] = buf
            a, b, c = buf.arrays()
            for addr in (a, b, c):
                kernel.fill(addr, n, 1.0)
            if bind and (node is not None or spec.interleave):
                numa.set_mempolicy("default")
        except (OSError, ValueError, MemBenchError) as exc:
            with lock:
                errors.append(f"CPU {cpu}: {exc}")
        ready.wait()
        for key in schedule:
            go.wait()
            if errors:
                continue
            t0 = time.perf_counter()
            if key[0] == "read":
                kernel.read(a, 3 * n)
            elif key[0] == "copy":
                kernel.copy(a, b, n)
            else:
                kernel.triad(a, b, c, 3.0, n)
            t1 = time.perf_counter()
            with lock:
                times.setdefault(key, []).append((t0, t1))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in threads:
        t.start()
    ready.wait()
    if not bind or errors:
        placement = None
    elif spec.interleave:
        placement = _interleave_ok([b for b in bufs if b], spec.interleave)
    else:
        placement = _placement_ok(
            [b for b in bufs if b], [spec.mem_node_of_cpu[i] for i, b in enumerate(bufs) if b]
        )
    for _ in schedule:
        go.wait()
    for t in threads:
        t.join()
    for b in bufs:
        if b is not None:
            b.close()
    if errors:
        raise MemBenchError("; ".join(errors))

    def best(op: str, bytes_per_elem: int) -> float | None:
        if op not in spec.ops:
            return None
        rates = []
        for r in range(1, reps + 1):  # rep 0 is the warm-up
            spans = times.get((op, r), [])
            wall = max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans)
            rates.append(nthreads * n * bytes_per_elem / wall / GB if wall > 0 else 0.0)
        return max(rates)

    return MemBandwidth(
        label=spec.label, cpu_nodes=spec.cpu_nodes, mem_nodes=spec.mem_nodes, threads=nthreads,
        bytes_per_thread=3 * n * 8, read_gbs=best("read", 24), triad_gbs=best("triad", 24),
        theoretical_gbs=spec.theoretical_gbs, theoretical_basis=spec.theoretical_basis,
        placement_ok=placement, note=spec.note, copy_gbs=best("copy", 16),
    )  # fmt: skip


# -- idle latency ----------------------------------------------------------------------------
def _pinned(cpu: int, fn: Callable[[], Any]) -> Any:
    """fn() in a new thread pinned to `cpu` (the caller's own affinity is left alone)."""
    box: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            box.append((True, fn()))
        except BaseException as exc:  # raised again on the caller's thread
            box.append((False, exc))

    t = threading.Thread(target=target, name=f"membench-cpu{cpu}", daemon=True)
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


def _chase_ns(kernel: Kernel, start: int, n_lines: int, seconds: float) -> tuple[float, int]:
    """(ns per load, loads timed): a warm-up stretch, then chunks of the chain until `seconds`."""
    chunk = 20_000
    p = kernel.chase(start, min(n_lines, 4 * chunk))  # TLB and page walks warmed
    hops = 0
    t0 = time.perf_counter()
    while True:
        p = kernel.chase(p, chunk)
        hops += chunk
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and hops >= 2 * chunk:
            return elapsed / hops * 1e9, hops


def measure_latency(
    kernel: Kernel, mem_node: int, chain_cpu: int, chase_cpus: Mapping[int, int], size: int,
    *, bind: bool = True, huge_pages: bool = True, seconds: float = 0.25,
) -> list[LatencyCell]:  # fmt: skip
    """One chain of `size` bytes bound to `mem_node` (built from `chain_cpu`, near it), chased
    from each CPU node's CPU in `chase_cpus` (node -> cpu) in turn, alone."""
    n_lines = max(1024, size // LINE)
    n = n_lines * LINE // 24 + 1  # _Buffer's three arrays of doubles cover the lines

    def build() -> _Buffer:
        if bind:
            numa.set_mempolicy("bind", [mem_node])
        try:
            buf = _Buffer(n, huge_pages)
            try:
                kernel.chain(buf.addr, n_lines, 0x9E3779B97F4A7C15 ^ mem_node)
            except BaseException:
                buf.close()
                raise
            return buf
        finally:
            if bind:
                numa.set_mempolicy("default")

    buf = _pinned(chain_cpu, build)
    try:
        placed = _placement_ok([buf], [mem_node]) if bind else None
        out = []
        for cpu_node, cpu in sorted(chase_cpus.items()):
            ns, hops = _pinned(cpu, lambda c=cpu: _chase_ns(kernel, buf.addr, n_lines, seconds))
            out.append(LatencyCell(cpu_node, mem_node, cpu, round(ns, 2), n_lines * LINE, hops,
                                   placed))  # fmt: skip
        return out
    finally:
        buf.close()


def _distance(top: Topology, a: int, b: int) -> int:
    node = top.node(a)
    return (node.distances.get(b, 255) if node else 255) if a != b else 0


def default_latency_bytes(top: Topology) -> int:
    """The chain: 4x the largest L3 and at least 256 MiB (so nearly every load misses the
    caches), at most a quarter of the smallest node's free memory."""
    l3 = max((d.size_bytes or 0 for d in top.l3_domains), default=0)
    size = max(256 * MiB, 4 * l3)
    frees = [n.mem_free_bytes for n in top.nodes if n.mem_free_bytes]
    if frees:
        size = min(size, min(frees) // 4)
    return max(16 * MiB, size)


# -- planning the runs -----------------------------------------------------------------------
def _node_theoretical(top: Topology, node_id: int) -> tuple[float | None, str | None]:
    """A node's share of its socket's theoretical bandwidth (even split across the socket's
    nodes with memory: what NPS/SNC do with the channels)."""
    mem = top.memory
    node = top.node(node_id)
    sock = node.socket if node else None
    if sock is None or sock not in mem.bandwidth_per_socket_gbs:
        return None, None
    siblings = [
        n
        for n in top.nodes
        if n.socket == sock and n.kind == "cpu" and (n.mem_total_bytes or 0) > 0
    ]
    k = max(1, len(siblings))
    what = "fabric cap (estimated)" if mem.limited_by.get(sock) == "fabric" else mem.source
    basis = f"{what}: socket {sock} {mem.bandwidth_per_socket_gbs[sock]:.1f} GB/s"
    return mem.bandwidth_per_socket_gbs[sock] / k, basis + (f" / {k} nodes" if k > 1 else "")


def plan_runs(
    top: Topology,
    bytes_per_thread: int,
    threads_per_node: int | None = None,
    matrix: bool = True,
    allowed: set[int] | None = None,
) -> tuple[list[RunSpec], list[RunSpec], list[RunSpec], RunSpec | None, list[str]]:
    """(per-node, per-socket, matrix, machine, notes) run specs for `top` (the live machine)."""
    notes: list[str] = []
    allowed = allowed if allowed is not None else set(os.sched_getaffinity(0))
    mem_nodes = [n.id for n in top.nodes if (n.mem_total_bytes or 0) > 0]
    threads: dict[int, tuple[int, ...]] = {}
    for node in top.nodes:
        cpus = [c for c in top.first_thread_per_core(node.cpus) if c in allowed]
        if not cpus and node.cpus:
            notes.append(
                f"node {node.id}: none of its CPUs may be used by this process "
                f"(cpuset/affinity); not measured from there"
            )
        if cpus:
            threads[node.id] = tuple(cpus[:threads_per_node] if threads_per_node else cpus)
        if not node.cpus:
            notes.append(
                f"node {node.id} has no CPUs (memory-only: CXL, HBM or a GPU's memory): "
                "it appears only as a memory target in the matrix"
            )
    if not threads:
        raise MemBenchError(
            "no NUMA node has a CPU this process may run on "
            "(check `taskset -p $$` and the cgroup cpuset)"
        )
    if not mem_nodes:
        raise MemBenchError("no NUMA node reports memory (sys/devices/system/node/node*/meminfo)")

    def nearest_mem(node_id: int) -> int:
        node = top.node(node_id)
        dist = node.distances if node else {}
        return min(mem_nodes, key=lambda m: (dist.get(m, 255), m))

    def spec(label, cpu_nodes, mem_of, ops, theo, basis, note=None) -> RunSpec:
        cpus = tuple(c for nid in cpu_nodes for c in threads[nid])
        binds = tuple(mem_of[nid] for nid in cpu_nodes for _ in threads[nid])
        return RunSpec(
            label,
            cpus,
            binds,
            tuple(cpu_nodes),
            tuple(sorted(set(binds))),
            bytes_per_thread,
            ops,
            theo,
            basis,
            note,
        )

    local = {nid: (nid if nid in mem_nodes else nearest_mem(nid)) for nid in threads}
    per_node: list[RunSpec] = []
    for nid in sorted(threads):
        note = None
        if local[nid] != nid:
            note = f"node {nid} has no memory: its CPUs read node {local[nid]} (nearest)"
            notes.append(note)
        theo, basis = _node_theoretical(top, local[nid])
        per_node.append(spec(f"node {nid}", [nid], local, MIXES, theo, basis, note))

    sockets: list[RunSpec] = []
    for sock in top.sockets:
        nids = [n for n in sock.nodes if n in threads]
        if len(nids) > 1:
            theo = top.memory.bandwidth_per_socket_gbs.get(sock.id)
            sockets.append(
                spec(
                    f"socket {sock.id}",
                    nids,
                    local,
                    MIXES,
                    theo,
                    top.memory.source if theo else None,
                )
            )

    cells: list[RunSpec] = []
    if matrix and (len(threads) > 1 or len(mem_nodes) > 1):
        for cn in sorted(threads):
            for mn in mem_nodes:
                if mn == local[cn]:
                    continue  # the diagonal is the per-node run
                theo, basis = _node_theoretical(top, mn)
                cells.append(
                    spec(f"node {cn} -> node {mn}", [cn], {cn: mn}, ("read",), theo, basis)
                )

    extra: list[RunSpec] = []
    cpu_mem = sorted(n for n in threads if n in mem_nodes)
    if len(cpu_mem) > 1:
        # one model interleaved over the nodes (memory_policy = "interleave"): on two sockets
        # half of every thread's reads cross the socket link
        inter = spec("interleaved", sorted(threads), {n: None for n in threads},
                     MIXES, top.memory.theoretical_bandwidth_gbs,
                     top.memory.source if top.memory.theoretical_bandwidth_gbs else None,
                     f"memory interleaved over nodes {','.join(map(str, cpu_mem))}")  # fmt: skip
        extra.append(replace(inter, interleave=tuple(cpu_mem), mem_nodes=tuple(cpu_mem)))
    socket_of = {n: top.socket_of_node(n) for n in threads}
    if len({s for s in socket_of.values() if s is not None}) > 1:
        # every node reads its nearest node on another socket, all at once: the link's figure
        def remote(nid: int) -> int | None:
            node = top.node(nid)
            dist = node.distances if node else {}
            others = [m for m in cpu_mem if socket_of.get(m) not in (None, socket_of[nid])]
            return min(others, key=lambda m: (dist.get(m, 255), m)) if others else None

        far = {n: remote(n) for n in threads}
        if all(v is not None for v in far.values()):
            extra.append(spec("cross-socket", sorted(threads), far, ("read",), None, None,
                              "every node reads its nearest node on another socket"))  # fmt: skip

    machine = None
    if len(threads) > 1:
        theo = top.memory.theoretical_bandwidth_gbs
        machine = spec(
            "machine",
            sorted(threads),
            local,
            MIXES,
            theo,
            top.memory.source if theo else None,
        )
    return per_node, sockets, cells, machine, notes, extra


def default_bytes_per_thread(top: Topology, threads: int) -> int:
    """Working set: at least 4x the machine's L3 and 1 GiB per node, split over the threads of a
    node; capped at a quarter of the smallest node's free memory."""
    l3 = sum(d.size_bytes or 0 for d in top.l3_domains)
    nodes = max(1, len(top.nodes))
    per_node = max(1 << 30, 4 * l3 // nodes)
    frees = [n.mem_free_bytes for n in top.nodes if n.mem_free_bytes]
    if frees:
        per_node = min(per_node, min(frees) // 4)
    return max(8 * MiB, per_node // max(1, threads))


def run_membench(
    top: Topology,
    *,
    bytes_per_thread: int | None = None,
    reps: int = 5,
    threads_per_node: int | None = None,
    matrix: bool = True,
    kernel: Kernel | None = None,
    progress: Progress | None = None,
    huge_pages: bool = True,
    latency: bool = True,
    latency_bytes: int | None = None,
    latency_seconds: float = 0.25,
) -> MemBenchResult:
    """Measure the live machine described by `top`. Raises MemBenchError with a clear reason.
    `huge_pages`: ask for 2 MiB pages (MADV_HUGEPAGE), the hardware's figure without TLB misses.
    `latency`: also the idle-latency matrix (a chain of `latency_bytes` per memory node)."""
    started = time.time()
    kernel = kernel or load_kernel()
    probe_threads = max((len(top.first_thread_per_core(n.cpus)) for n in top.nodes), default=1)
    size = bytes_per_thread or default_bytes_per_thread(
        top, min(threads_per_node or probe_threads, probe_threads) or 1
    )
    per_node, per_socket, cells, machine, notes, extra = plan_runs(
        top, size, threads_per_node, matrix
    )
    bind = len(top.nodes) > 1  # one node: nothing to bind, and set_mempolicy may be blocked
    chase_cpus = {s.cpu_nodes[0]: s.cpus[0] for s in per_node}
    mem_nodes = [n.id for n in top.nodes if (n.mem_total_bytes or 0) > 0] if latency else []
    latency_note = None
    if latency and not kernel.can_chase:
        latency_note = f"no latency matrix: the {kernel.name} kernel cannot chase pointers"
        mem_nodes = []
    steps = (len(per_node) + len(per_socket) + len(cells) + (1 if machine else 0) + len(extra)
             + len(mem_nodes))  # fmt: skip
    done = 0

    def go(s: RunSpec) -> MemBandwidth:
        nonlocal done
        if progress:
            progress(done, steps, s.label)
        out = run_one(s, kernel, reps=reps, bind=bind, huge_pages=huge_pages)
        done += 1
        if progress:
            progress(done, steps, s.label)
        return out

    nodes = tuple(go(s) for s in per_node)
    sockets_out = tuple(go(s) for s in per_socket)
    matrix_out = tuple(go(s) for s in cells)
    machine_out = go(machine) if machine else None
    extra_out = {s.label: go(s) for s in extra}
    lat: list[LatencyCell] = []
    lat_size = latency_bytes or default_latency_bytes(top)
    for mn in mem_nodes:
        if progress:
            progress(done, steps, f"latency -> node {mn}")
        near = min(chase_cpus, key=lambda cn: (_distance(top, cn, mn), cn))
        lat += measure_latency(kernel, mn, chase_cpus[near], chase_cpus, lat_size, bind=bind,
                               huge_pages=huge_pages, seconds=latency_seconds)  # fmt: skip
        done += 1
        if progress:
            progress(done, steps, f"latency -> node {mn}")
    if lat:
        latency_note = (f"idle latency: one thread chasing a random cycle of 64 B lines in "
                        f"{lat_size / MiB:.0f} MiB per memory node, ns per load")  # fmt: skip
    notes += matrix_notes(nodes, matrix_out, top)
    notes += latency_notes(lat, top)
    if machine_out is None and len(nodes) == 1:
        only = nodes[0]
        theo = top.memory.theoretical_bandwidth_gbs
        machine_out = MemBandwidth(
            "machine",
            only.cpu_nodes,
            only.mem_nodes,
            only.threads,
            only.bytes_per_thread,
            only.read_gbs,
            only.triad_gbs,
            theo,
            top.memory.source if theo else None,
            only.placement_ok,
            "one NUMA node: the machine figure is the node figure",
            copy_gbs=only.copy_gbs,
        )
    return MemBenchResult(
        t=started,
        kernel=kernel.name + ("; 2 MiB pages (MADV_HUGEPAGE)" if huge_pages else "; 4 KiB pages"),
        fingerprint=top.fingerprint(),
        nodes=nodes,
        sockets=sockets_out,
        matrix=matrix_out,
        machine=machine_out,
        notes=tuple(notes),
        seconds=time.time() - started,
        interleaved=extra_out.get("interleaved"),
        cross_socket=extra_out.get("cross-socket"),
        latency=tuple(lat),
        latency_note=latency_note,
    )
