"""Two sockets with two nodes each (NPS2-like) and a memory-only node (CXL-like), on a real
kernel: the probe must report exactly what the guest was booted with."""

from __future__ import annotations

import pytest
import vm_harness as harness

pytestmark = pytest.mark.timeout(1800)
TOPO = harness.NPS2_CXL
MIB = 1 << 20


def test_probe_nodes_distances_and_the_memory_only_node(nps2_cxl):
    r = nps2_cxl["probe"]
    assert "crashed" not in r and r["rc"] == 0, r
    p = r["probe"]
    assert len(p["sockets"]) == 2 and p["cpus"] == 4
    nodes = {n["id"]: n for n in p["nodes"]}
    assert sorted(nodes) == list(range(len(TOPO.node_mib)))
    for nid, n in nodes.items():
        assert tuple(n["cpus"]) == TOPO.node_cpus[nid], n
        assert n["distances"] == {str(m): TOPO.distance(nid, m) for m in nodes}, n
        assert 0.80 * TOPO.node_mib[nid] * MIB <= n["mem_total_bytes"] <= TOPO.node_mib[nid] * MIB
    cxl = nodes[4]
    assert cxl["kind"] == "memory-only" and cxl["cpus"] == [], cxl
    # two CPU nodes per socket; the memory-only node belongs to the socket nearest to it
    # (distance 20 from socket 0's nodes, 40 from socket 1's), as CXL memory hangs off one
    assert p["sockets"][0]["nodes"] == [0, 1, 4] and p["sockets"][1]["nodes"] == [2, 3]
    assert cxl["socket"] == 0
    # QEMU's CPU is neither AMD's nor Intel's: no NPS/SNC name, the node count per socket
    assert p["sockets"][0]["numa_mode"] == "2 nodes", p["sockets"][0]


def test_bench_mem_matrix_4x4(nps2_cxl):
    r = nps2_cxl["bench_mem"]
    assert "crashed" not in r and r["rc"] == 0, r
    res = r["result"]
    rows = [(tuple(n["cpu_nodes"]), tuple(n["mem_nodes"])) for n in res["nodes"]]
    assert rows == [((k,), (k,)) for k in range(4)], rows  # one local row per node with CPUs
    cells = {(tuple(c["cpu_nodes"]), tuple(c["mem_nodes"])): c for c in res["matrix"]}
    # every remote pair of the 4x4 (the local ones are the rows), and the memory-only node as a
    # memory column for each CPU node
    assert {((a,), (b,)) for a in range(4) for b in range(4) if a != b} <= set(cells), sorted(cells)
    assert {((a,), (4,)) for a in range(4)} <= set(cells), sorted(cells)
    assert all(c["read_gbs"] > 0 and c["placement_ok"] for c in cells.values())
    # interleaved over the four CPU nodes (not the memory-only one). Its placement check is
    # not asserted here: in this TCG guest every 4-thread run (the machine run too, before
    # this) has come back placement_ok False in some CI runs and True in others
    inter = res["interleaved"]
    assert inter["mem_nodes"] == [0, 1, 2, 3] and inter["read_gbs"] > 0, inter
    assert res["cross_socket"]["cpu_nodes"] == [0, 1, 2, 3], res["cross_socket"]
    assert res["cross_socket"]["mem_nodes"] == [0, 2], res["cross_socket"]  # the nearest remote
    # the idle-latency matrix: every CPU node to every memory node (the CXL-like one too), each
    # chain's pages bound where asked (one thread per chain, as the per-node runs)
    lat = {(c["cpu_node"], c["mem_node"]): c for c in res["latency"]}
    assert set(lat) == {(a, b) for a in range(4) for b in range(5)}, sorted(lat)
    assert all(c["ns"] > 0 and c["placement_ok"] is True for c in lat.values()), lat
    assert all(c["cpu"] in TOPO.node_cpus[c["cpu_node"]] for c in lat.values()), lat
    assert any(n.startswith("remote:local latency: 0->1 ") for n in res["notes"]), res["notes"]
