"""`rigtui bench mem` for real on this machine (small sizes), the kernels' arithmetic, the run
plan on multi-node shapes (memory-only nodes, nodes without memory), the cache, the CLI, and
`rigtui.syscalls.pages` (mincore + move_pages)."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import GiB, epyc

from rigtui.analysis.membench import MemBenchError, plan_runs, run_membench
from rigtui.analysis.membench_cache import load_cached_membench, save_membench
from rigtui.analysis.membw_kernel import CKernel, NumpyKernel, compile_kernel, load_kernel
from rigtui.hostfs import HostFS
from rigtui.probes import detect
from rigtui.syscalls import pages

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


@pytest.fixture(scope="module")
def live():
    return detect(HostFS("/"))


@pytest.mark.parametrize("kind", ["c", "numpy"])
def test_kernels_compute_the_right_values(kind):
    kern = load_kernel(kind)
    assert isinstance(kern, CKernel if kind == "c" else NumpyKernel)
    n = 10_003
    a, b, c = (np.zeros(n), np.arange(n, dtype=np.float64), np.full(n, 2.0))
    kern.triad(a.ctypes.data, b.ctypes.data, c.ctypes.data, 3.0, n)
    assert np.array_equal(a, b + 6.0)
    kern.fill(c.ctypes.data, n, 7.5)
    assert (c == 7.5).all()
    words = np.arange(n, dtype=np.uint64)
    assert kern.read(words.ctypes.data, n) == n * (n - 1) // 2
    kern.copy(a.ctypes.data, b.ctypes.data, n)  # read:write 1:1
    assert np.array_equal(a, b)
    assert kern.can_chase is (kind == "c")


def test_chain_is_one_random_cycle_through_every_line():
    """The latency chain visits every 64 B line once before it comes back (Sattolo), in an order
    no stride prefetcher follows."""
    kern = load_kernel("c")
    n_lines = 4099
    buf = np.zeros(n_lines * 8, dtype=np.uint64)
    base = buf.ctypes.data
    kern.chain(base, n_lines, 12345)
    seen, p = [], base
    for _ in range(n_lines):
        seen.append((p - base) // 64)
        p = kern.chase(p, 1)
    assert p == base and sorted(seen) == list(range(n_lines))  # one cycle, every line
    steps = np.diff(seen)
    assert len(set(steps.tolist())) > n_lines // 2  # not a fixed stride
    assert kern.chase(base, n_lines) == base and kern.chase(base, 7) == base + 64 * seen[7]


def test_compile_is_cached_per_source(tmp_path):
    so, flags = compile_kernel(tmp_path)
    mtime = so.stat().st_mtime_ns
    again, _ = compile_kernel(tmp_path)
    assert again == so and so.stat().st_mtime_ns == mtime
    assert "-O3" in flags


@pytest.mark.parametrize("kind", ["c", "numpy"])
def test_bench_runs_for_real_here(live, kind):
    res = run_membench(live, bytes_per_thread=24 * MiB, reps=2, kernel=load_kernel(kind))
    assert res.nodes and res.machine is not None
    for b in (*res.nodes, res.machine):
        assert b.read_gbs and b.read_gbs > 0.5, b  # any machine streams more than 0.5 GB/s
        assert b.triad_gbs and b.triad_gbs > 0.5, b
        assert b.threads == len(
            [
                c
                for c in live.first_thread_per_core(
                    tuple(c for n in b.cpu_nodes for c in live.node(n).cpus)
                )
                if c in os.sched_getaffinity(0)
            ]
        )
    assert res.fingerprint == live.fingerprint()
    assert res.nodes[0].copy_gbs and res.nodes[0].copy_gbs > 0.5
    if len(live.nodes) == 1:
        assert res.machine.note and "one NUMA node" in res.machine.note and not res.matrix
        assert res.machine.copy_gbs == res.nodes[0].copy_gbs


def test_latency_matrix_for_real_here(live):
    res = run_membench(live, bytes_per_thread=8 * MiB, reps=1, latency_bytes=32 * MiB,
                       latency_seconds=0.05)  # fmt: skip
    mem = [n.id for n in live.nodes if n.mem_total_bytes]
    cpu = sorted(b.cpu_nodes[0] for b in res.nodes)
    assert sorted((c.cpu_node, c.mem_node) for c in res.latency) == [(c, m) for c in cpu for m in mem]
    for cell in res.latency:
        # DRAM behind 32 MiB of random lines: slower than any cache, faster than a disk
        assert 20 < cell.ns < 20_000, cell
        assert cell.bytes == 32 * MiB and cell.hops >= 40_000
        assert cell.cpu in live.node(cell.cpu_node).cpus
    assert "32 MiB" in res.latency_note and res.latency_ns(cpu[0], mem[0]) == res.latency[0].ns
    numpy = run_membench(live, bytes_per_thread=8 * MiB, reps=1, kernel=load_kernel("numpy"))
    assert numpy.latency == () and "cannot chase pointers" in numpy.latency_note
    none = run_membench(live, bytes_per_thread=8 * MiB, reps=1, latency=False)
    assert none.latency == () and none.latency_note is None


def test_bench_binds_and_places_pages_on_each_node(live):
    """With set_mempolicy(bind) the buffers land on the node asked for (move_pages checks)."""
    node = live.nodes[0].id
    top = replace(live, nodes=(live.nodes[0], replace(live.nodes[0], id=99, cpus=())))
    per_node, _, cells, _, notes, _ = plan_runs(top, 8 * MiB)
    assert [s.mem_nodes for s in per_node] == [(node,)]
    assert any("node 99 has no CPUs" in n for n in notes)
    from rigtui.analysis.membench import run_one

    out = run_one(per_node[0], load_kernel("c"), reps=1, bind=True)
    assert out.placement_ok is True
    # MPOL_INTERLEAVE over the one node there is: the interleaved run's path, for real
    spec = replace(per_node[0], interleave=(node,), mem_node_of_cpu=(None,) * len(per_node[0].cpus))
    out = run_one(spec, load_kernel("c"), reps=1, bind=True)
    assert out.placement_ok is True and out.read_gbs > 0


def test_plan_runs_on_multi_node_shapes():
    top = epyc(cores_per_socket=4, nodes_per_socket=2)  # 4 nodes, 2 cores each
    allowed = set(top.cpu.online)
    per_node, sockets, cells, machine, notes, extra = plan_runs(top, 64 * MiB, allowed=allowed)
    assert [s.label for s in per_node] == ["node 0", "node 1", "node 2", "node 3"]
    # one model interleaved over every CPU node; every node reading across the socket link
    inter, cross = extra
    assert inter.label == "interleaved" and inter.interleave == (0, 1, 2, 3) and len(inter.cpus) == 8
    assert inter.mem_nodes == (0, 1, 2, 3) and set(inter.mem_node_of_cpu) == {None}
    assert cross.label == "cross-socket" and not cross.interleave
    # node 0 and 1 (socket 0) read socket 1's nearest nodes and the other way round
    assert dict(zip(cross.cpus, cross.mem_node_of_cpu, strict=True))[top.nodes[0].cpus[0]] in (2, 3)
    assert all(top.socket_of_node(m) != top.socket_of_node(c_node)
               for c_node, m in zip([n for n in cross.cpu_nodes for _ in range(2)],
                                    cross.mem_node_of_cpu, strict=True))  # fmt: skip
    assert all(len(s.cpus) == 2 for s in per_node)  # one thread per physical core
    assert [s.label for s in sockets] == ["socket 0", "socket 1"]
    assert len(cells) == 4 * 3 and machine is not None and len(machine.cpus) == 8
    assert per_node[0].theoretical_gbs == pytest.approx(460.8 / 2)
    assert machine.theoretical_gbs == pytest.approx(921.6)
    # a node with CPUs but no memory reads its nearest memory node
    nomem = replace(top, nodes=(replace(top.nodes[0], mem_total_bytes=0), *top.nodes[1:]))
    per_node, _, cells, _, notes, _ = plan_runs(nomem, 64 * MiB, allowed=allowed)
    assert per_node[0].mem_nodes == (1,) and "no memory" in (per_node[0].note or "")
    assert any("node 0 has no memory" in n for n in notes)
    # no CPU this process may use
    with pytest.raises(MemBenchError, match="no NUMA node has a CPU"):
        plan_runs(top, 64 * MiB, allowed={4096})
    # no node reports memory
    dry = replace(top, nodes=tuple(replace(n, mem_total_bytes=None) for n in top.nodes))
    with pytest.raises(MemBenchError, match="no NUMA node reports memory"):
        plan_runs(dry, 64 * MiB, allowed=allowed)


def test_matrix_notes_flag_a_cell_far_below_its_row_and_give_remote_local_ratios():
    """The notes' MLC SNC3 matrix: two cells at 28 and 45 GB/s among ~94 GB/s peers."""
    from rigtui.analysis.membench_notes import matrix_notes as _matrix_notes
    from rigtui.model.analysis import MemBandwidth

    def bw(c, m, gbs):
        return MemBandwidth(f"{c}->{m}", (c,), (m,), 1, 1, gbs, None, None, None, True)

    nodes = [bw(k, k, 180.0) for k in range(6)]
    cells = [bw(c, m, 94.0) for c in range(6) for m in range(6) if c != m]
    cells = [bw(0, 4, 28.0) if (x.cpu_nodes, x.mem_nodes) == ((0,), (4,)) else
             bw(1, 5, 45.0) if (x.cpu_nodes, x.mem_nodes) == ((1,), (5,)) else x for x in cells]  # fmt: skip
    notes = _matrix_notes(nodes, cells)
    flagged = [n for n in notes if "far below" in n]
    assert len(flagged) == 2 and flagged[0].startswith("node 0 -> node 4 reads 28.0 GB/s")
    assert "node 1 -> node 5 reads 45.0" in flagged[1] and "DIMMs missing" in flagged[1]
    assert notes[-1].startswith("remote:local read: 0->1 0.52, ") and "0->4 0.16" in notes[-1]


def test_latency_notes_flag_a_slow_pair_and_name_the_likely_cause():
    """MLC's latency matrix on the notes' 2 x 6980P: 130.7 ns local, ~449 ns remote; one pair far
    slower than its row's others names the link, a node short of memory its DIMMs."""
    from rigtui.analysis.membench_notes import latency_notes as _latency_notes
    from rigtui.analysis.membench_notes import link_cause as _link_cause
    from rigtui.model.analysis import LatencyCell

    top = epyc(cores_per_socket=8, nodes_per_socket=2)  # 4 nodes: 0, 1 on socket 0; 2, 3 on 1

    def grid(slow):
        return [LatencyCell(c, m, 0, slow.get((c, m), 130.7 if c == m else 449.2), 1 << 28, 1)
                for c in range(4) for m in range(4)]  # fmt: skip

    notes = _latency_notes(grid({(0, 3): 900.0}), top)
    flagged = [n for n in notes if "far above" in n]
    assert len(flagged) == 1 and flagged[0].startswith("node 0 -> node 3 takes 900 ns")
    assert "xGMI" in flagged[0]  # an AMD part across sockets: the socket link
    assert notes[-1].startswith("remote:local latency: 0->1 3.44, ") and "0->3 6.89" in notes[-1]
    assert _latency_notes(grid({}), top) == [notes[-1].replace("0->3 6.89", "0->3 3.44")]
    intel = replace(top, cpu=replace(top.cpu, vendor="GenuineIntel"))
    assert "UPI" in _link_cause(intel, 0, 2)
    assert "inside socket 0" in _link_cause(top, 0, 1)  # two nodes of one socket
    short = replace(top, nodes=tuple(replace(n, mem_total_bytes=64 * GiB) if n.id == 3 else n
                                     for n in top.nodes))  # fmt: skip
    assert _link_cause(short, 0, 3).startswith("node 3 holds 64 GiB where the other nodes hold ~192")
    assert "DIMMs missing" in _link_cause(None, 0, 3)


def test_plan_uses_the_interleaved_figure_for_one_model_over_every_node(live):
    from rigtui.analysis.plan import cpu_bandwidth as _bandwidth
    from rigtui.model.analysis import MemBandwidth, MemBenchResult

    def bw(label, cn, mn, gbs):
        return MemBandwidth(label, cn, mn, 8, 1, gbs, None, None, None, True)

    top = epyc()
    res = MemBenchResult(0.0, "c", top.fingerprint(), (bw("node 0", (0,), (0,), 400.0),
                         bw("node 1", (1,), (1,), 400.0)), (), (), bw("machine", (0, 1), (0, 1), 800.0),
                         interleaved=bw("interleaved", (0, 1), (0, 1), 330.0))  # fmt: skip
    fig = _bandwidth(top, res, None)
    assert fig.value == 330.0 and fig.basis == "measured" and "all-local sum 800.0" in fig.detail
    assert _bandwidth(top, res, (1,)).value == 400.0  # bound to node 1: that node's figure
    old = replace(res, interleaved=None)  # a cache from before the interleaved run
    assert _bandwidth(top, old, None).value == 800.0


def test_cache_round_trip_keyed_by_fingerprint(live, tmp_path):
    res = run_membench(live, bytes_per_thread=8 * MiB, reps=1, latency_bytes=16 * MiB,
                       latency_seconds=0.02)  # fmt: skip
    assert res.latency and res.nodes[0].copy_gbs
    save_membench(res, tmp_path)
    back = load_cached_membench(live, tmp_path)
    assert back == res
    other = replace(
        live, memory=replace(live.memory, total_bytes=(live.memory.total_bytes or 0) + GiB)
    )
    assert load_cached_membench(other, tmp_path) is None
    (tmp_path / "membench.json").write_text("{ not json")
    assert load_cached_membench(live, tmp_path) is None


def _cli(*args, cache: Path):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "rigtui", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env=env,
    )


def test_cli_bench_mem(tmp_path, live):
    proc = _cli("bench", "mem", "--json", "--size", "16", "--reps", "1", cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    node = data["nodes"][0]
    assert {"read_gbs", "triad_gbs", "copy_gbs", "theoretical_gbs", "read_pct"} <= set(node)
    assert data["machine"]["read_gbs"] > 0 and "matrix" in data
    assert data["latency"] and all(c["ns"] > 0 for c in data["latency"])
    assert load_cached_membench(live, tmp_path / "rigtui") is not None
    text = _cli("bench", "mem", "--size", "16", "--reps", "1", "--no-cache", "--latency-size",
                "16", cache=tmp_path)  # fmt: skip
    assert text.returncode == 0 and "read" in text.stdout and "triad" in text.stdout
    assert "copy" in text.stdout and "idle latency matrix ns" in text.stdout
    assert "in 16 MiB per memory node" in text.stdout
    quick = _cli("bench", "mem", "--size", "16", "--reps", "1", "--no-cache", "--no-latency",
                 "--json", cache=tmp_path)  # fmt: skip
    assert quick.returncode == 0 and json.loads(quick.stdout)["latency"] == []
    assert _cli("bench", "mem", "--latency-size", "0", cache=tmp_path).returncode == 2
    root = _cli("bench", "mem", "--root", "/tmp", cache=tmp_path)
    assert root.returncode == 2 and "captured tree" in root.stderr
    assert _cli("bench", "mem", "--reps", "0", cache=tmp_path).returncode == 2


# -- rigtui.syscalls.pages -------------------------------------------------------------------
def test_file_page_placement_of_a_cached_file(tmp_path, live):
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3 * MiB + 100))
    with open(path, "rb") as f:
        f.read()  # in the page cache now
    pl = pages.file_page_placement(path)
    assert pl.pages == (3 * MiB + 100 + pages.PAGE_SIZE - 1) // pages.PAGE_SIZE
    assert pl.resident_pages == pl.pages and not pl.sampled and pl.unplaced_pages == 0
    assert sum(pl.bytes_per_node.values()) == pl.pages * pages.PAGE_SIZE
    assert set(pl.bytes_per_node) <= {n.id for n in live.nodes}
    sampled = pages.file_page_placement(path, max_pages=100)
    assert sampled.sampled and sampled.examined_pages == 100
    assert sum(sampled.bytes_per_node.values()) == pl.pages * pages.PAGE_SIZE
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert pages.file_page_placement(empty).pages == 0
    with pytest.raises(OSError):
        pages.file_page_placement(tmp_path / "missing")


def test_node_of_pages_and_mincore():
    buf = (ctypes.c_char * (4 * pages.PAGE_SIZE))()
    addr = ctypes.addressof(buf)
    base = addr - addr % pages.PAGE_SIZE + pages.PAGE_SIZE  # a page-aligned address inside
    ctypes.memset(base, 1, pages.PAGE_SIZE)
    status = pages.node_of_pages([base, 0])
    assert status[0] >= 0 and status[1] < 0  # address 0 is not mapped: -EFAULT/-ENOENT
    vec = pages.resident_vector(base, 2 * pages.PAGE_SIZE)
    assert len(vec) == 2 and vec[0] & 1
