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
    if len(live.nodes) == 1:
        assert res.machine.note and "one NUMA node" in res.machine.note and not res.matrix


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
    from rigtui.analysis.membench import _matrix_notes
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
    res = run_membench(live, bytes_per_thread=8 * MiB, reps=1)
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
    assert {"read_gbs", "triad_gbs", "theoretical_gbs", "read_pct"} <= set(node)
    assert data["machine"]["read_gbs"] > 0 and "matrix" in data
    assert load_cached_membench(live, tmp_path / "rigtui") is not None
    text = _cli("bench", "mem", "--size", "16", "--reps", "1", "--no-cache", cache=tmp_path)
    assert text.returncode == 0 and "read" in text.stdout and "triad" in text.stdout
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
