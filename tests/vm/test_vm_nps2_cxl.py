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
    assert cxl["kind"] != "cpu" and cxl["cpus"] == [], cxl
    # two nodes per socket: the probe groups them under their socket
    assert sorted(p["sockets"][0]["nodes"]) == [0, 1] and sorted(p["sockets"][1]["nodes"]) == [2, 3]
    assert p["sockets"][0]["numa_mode"] in ("NPS2", "SNC2"), p["sockets"][0]
