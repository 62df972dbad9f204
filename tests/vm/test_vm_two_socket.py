"""Claims proven on a real kernel with 2 sockets / 2 NUMA nodes (see conftest.two_socket)."""

from __future__ import annotations

from pathlib import Path

import pytest
import vm_harness as harness

from rigtui.model.cpulist import parse_cpulist

pytestmark = pytest.mark.timeout(2400)
TOPO = harness.TWO_SOCKETS
MIB = 1 << 20


def _ok(result: dict, name: str) -> dict:
    value = result.get(name)
    assert value is not None, f"scenario {name} gave no result:\n{result.get('_stdout')}"
    assert "crashed" not in value, value
    return value


def _shares(placement: dict) -> dict[int, float]:
    pages = {int(k): v for k, v in placement["model_file_bytes_per_node"].items()}
    total = sum(pages.values())
    assert total > 4 * MIB, placement
    return {n: b / total for n, b in pages.items()}


def test_probe_matches_the_booted_topology(two_socket):
    r = _ok(two_socket, "probe")
    assert r["rc"] == 0, r["stderr"]
    p = r["probe"]
    assert p["cpus"] == TOPO.cpus and p["cores"] == TOPO.cpus
    assert len(p["sockets"]) == TOPO.sockets
    assert [s["cpus"] for s in p["sockets"]] == [[0, 1], [2, 3]]
    nodes = p["nodes"]
    assert [n["id"] for n in nodes] == [0, 1]
    assert [tuple(n["cpus"]) for n in nodes] == list(TOPO.node_cpus)
    assert [n["socket"] for n in nodes] == [0, 1]
    for n in nodes:
        assert n["distances"] == {str(m): TOPO.distance(n["id"], m) for m in (0, 1)}
        booted = TOPO.node_mib[n["id"]] * MIB
        assert 0.85 * booted <= n["mem_total_bytes"] <= booted  # the kernel keeps a little
    assert p["fingerprint"]["nodes"] == 2 and p["fingerprint"]["sockets"] == 2


def test_the_guest_runs_an_engine_built_for_what_tcg_emulates(two_socket):
    """A -march=native llama_cpp from a host with AVX-512 dies of SIGILL here: the harness
    must have put a portable build first, and the guest's CPU must lack what it says."""
    r = _ok(two_socket, "probe")
    lacking = harness.tcg_lacks(harness.cpu_flags(Path("/proc/cpuinfo").read_text()))
    guest = set(r["cpu_flags"])
    assert not guest & set(lacking), sorted(guest & set(lacking))
    assert "avx2" in guest and "fma" in guest  # what the portable build needs
    portable = two_socket["_portable_engine"]
    if lacking:
        assert portable, "the host has " + ", ".join(lacking) + " and no portable engine was made"
    if portable:
        assert r["llama_cpp"].startswith(portable), r["llama_cpp"]


def test_probe_reads_the_smbios_dimm(two_socket):
    mem = _ok(two_socket, "probe")["probe"]["memory"]
    assert mem["source"].startswith("smbios"), mem
    dimms = mem["dimms"]
    assert dimms, mem
    assert {d["part_number"] for d in dimms} == {TOPO.dimm["part"]}
    assert {d["speed_mts"] for d in dimms} == {int(TOPO.dimm["speed"])}
    assert {d["manufacturer"] for d in dimms} == {TOPO.dimm["manufacturer"]}


def test_check_flags_numa_balancing(two_socket):
    r = _ok(two_socket, "check")
    checks = {c["id"]: c for c in r["check"]}
    balancing = checks["numa_balancing"]
    if r["numa_balancing"] == "1":
        assert balancing["status"] in ("warn", "fail"), balancing
    else:
        assert balancing["status"] == "pass", balancing
    assert r["rc"] in (1, 2)  # a VM without SMBIOS speeds, THP, governor: not all pass


def test_bind_to_node1_places_the_model_there_and_threads_stay(two_socket):
    case = _ok(two_socket, "bind1")
    assert case["rc"] == 0, case["stderr"]
    assert case["policy"]["memory_policy"] == "bind" and case["policy"]["policy_nodes"] == [1]
    last = case["placements"][-1]  # read after generating, not only after load
    assert len(case["placements"]) >= 2
    assert last["fs_type"] == "ext4"  # the virtual disk: pages placed by the reader's policy
    assert _shares(last).get(1, 0.0) >= 0.95, last
    assert set(last["thread_cpus_allowed"]) <= set(TOPO.node_cpus[1]), last
    assert set(last["cpus_allowed"]) <= set(TOPO.node_cpus[1]), last
    assert last["warnings"] == []


def test_interleave_splits_the_model_over_both_nodes(two_socket):
    case = _ok(two_socket, "interleave")
    assert case["rc"] == 0, case["stderr"]
    shares = _shares(case["placements"][-1])
    assert 0.40 <= shares.get(0, 0.0) <= 0.60 and 0.40 <= shares.get(1, 0.0) <= 0.60, shares
    assert case["placements"][-1]["warnings"] == []


def test_preferred_node1(two_socket):
    case = _ok(two_socket, "preferred1")
    assert case["rc"] == 0, case["stderr"]
    assert case["policy"]["memory_policy"] == "preferred"
    assert _shares(case["placements"][-1]).get(1, 0.0) >= 0.95


def test_mmap_false_bind_puts_the_weights_in_node1_memory(two_socket):
    case = _ok(two_socket, "nommap_bind1")
    assert case["rc"] == 0, case["stderr"]
    last = case["placements"][-1]
    anon = {int(k): v for k, v in last["anon_bytes_per_node"].items()}
    assert anon.get(1, 0) >= 60 * MIB, anon  # the 64M model's weights, read into node 1
    assert anon.get(1, 0) / sum(anon.values()) >= 0.75, anon


def test_cached_pages_are_reported_not_hidden(two_socket):
    """The file of the bind-to-node-1 run, now cached on node 1, then asked to interleave."""
    first = _ok(two_socket, "bind1")
    assert first["rc"] == 0, first["stderr"]
    assert _shares(first["placements"][-1]).get(1, 0.0) >= 0.95
    case = _ok(two_socket, "cached")["interleave"]
    assert case["rc"] == 0, case["stderr"]
    assert "WARNING: placement not as asked" in case["stderr"]
    assert "interleave over nodes 0,1" in case["stderr"] and "page cache" in case["stderr"]


def test_two_instances_one_per_node(two_socket):
    r = _ok(two_socket, "two_instances")
    for node in (0, 1):
        inst = r[str(node)]
        assert inst["rc"] == 0, inst["stderr"]
        last = inst["placements"][-1]
        assert _shares(last).get(node, 0.0) >= 0.95, last
        assert set(last["thread_cpus_allowed"]) <= set(TOPO.node_cpus[node]), last
    a, b = r["0"]["gen_window"], r["1"]["gen_window"]
    assert a[0] < b[1] and b[0] < a[1], "the two instances did not generate at the same time"


def test_bench_per_node_runs_one_engine_per_node_and_sums_them(two_socket):
    """The Genoa notes' test of NPS modes: one model per node at once (no mmap, so each reads
    its own copy into its node), the same tests together, the machine's total."""
    r = _ok(two_socket, "bench_per_node")
    assert r["rc"] == 0, r["stderr"]
    rows, totals = r["result"]["instances"], r["result"]["totals"]
    assert sorted({row["profile"] for row in rows}) == ["per_node@node0", "per_node@node1"]
    for row in rows:
        node = int(row["profile"][-1])
        assert set(parse_cpulist(row["cpus_allowed"])) <= set(TOPO.node_cpus[node]), row
        assert not row["use_mmap"] and row["memory_policy"] == "bind"
        anon = {int(k): v for k, v in row["anon_bytes_per_node"].items()}
        # its copy of the weights is on its node; the other holds only what the interpreter
        # had allocated before the worker set its policy (imports: ~9 MB seen)
        assert anon.get(node, 0) >= row["model_size"], row
        assert anon.get(1 - node, 0) < row["model_size"], row
    by_test = {t["test"]: t for t in totals}
    assert set(by_test) == {"pp16", "tg8"} and all(t["instances"] == 2 for t in totals)
    tg = [row["avg_ts"] for row in rows if row["test"] == "tg8"]
    assert by_test["tg8"]["avg_ts"] == pytest.approx(sum(tg))


def test_prefault_places_a_cold_model_under_the_policy_before_any_request(two_socket):
    """With llama.cpp's NUMA mode on (no prefetch), a cold model is barely read by the load;
    prefault reads all of it at once, interleaved over both nodes as the policy says."""
    r = _ok(two_socket, "prefault")
    cold, warm = r["pf_cold"], r["pf_warm"]
    for case in (cold, warm):
        assert case["rc"] == 0, case["stderr"]
    assert warm["cached"] == warm["size"], warm
    pages = {int(k): v for k, v in warm["per_node"].items()}
    assert min(pages.get(0, 0), pages.get(1, 0)) >= 0.35 * warm["size"], warm
    assert any(w.startswith("prefault: read") for w in warm["policy"]["warnings"]), warm
    assert cold["cached"] < 0.5 * cold["size"], cold  # the load alone left most of it unread


def test_tmpfs_pages_stay_where_the_writer_put_them_and_rigtui_says_so(two_socket):
    """On the disk the reader's policy places the pages (test_bind_to_node1...); on tmpfs the
    writer's did, when the file was written, and binding the reader to node 1 moves nothing."""
    r = _ok(two_socket, "tmpfs")
    case = r["written_on_0"]
    assert case["rc"] == 0, case["stderr"]
    last = case["placements"][-1]
    assert last["fs_type"] == "tmpfs"
    assert _shares(last).get(0, 0.0) >= 0.9, last  # still where `cp` on node 0 wrote them
    # the cause, and the fix for this policy (`rigtui run` prints the same text: test_cached_...)
    assert any("on tmpfs" in w and "numactl --membind=1 cp" in w for w in last["warnings"]), last


def test_tmpfs_written_under_the_policy_as_the_warning_advises(two_socket):
    case = _ok(two_socket, "tmpfs")["written_on_1"]
    assert case["rc"] == 0, case["stderr"]
    last = case["placements"][-1]
    assert _shares(last).get(1, 0.0) >= 0.95, last
    assert last["warnings"] == []


def test_bench_mem_matrix_2x2(two_socket):
    r = _ok(two_socket, "bench_mem")
    assert r["rc"] == 0, r["stderr"]
    res = r["result"]
    per_node = res["nodes"]
    assert [(n["cpu_nodes"], n["mem_nodes"]) for n in per_node] == [([0], [0]), ([1], [1])]
    assert all(n["read_gbs"] > 0 and n["placement_ok"] for n in per_node)
    cells = {(tuple(c["cpu_nodes"]), tuple(c["mem_nodes"])): c for c in res["matrix"]}
    assert {((0,), (1,)), ((1,), (0,))} <= set(cells)  # the remote cells of the 2x2 matrix
    assert all(c["read_gbs"] > 0 and c["placement_ok"] for c in cells.values())
    # the SMBIOS DIMM's speed gives the theoretical figure beside the measured one
    assert per_node[0]["theoretical_gbs"] == 38.4
    # one model interleaved over both nodes, and the socket link. Their placement checks are
    # not asserted: in this TCG guest the runs with a thread per node (the machine run too)
    # came back placement_ok False in one CI run and True in another
    inter = res["interleaved"]
    assert inter["cpu_nodes"] == [0, 1] and inter["mem_nodes"] == [0, 1], inter
    assert inter["read_gbs"] > 0 and inter["placement_ok"] is not None, inter
    cross = res["cross_socket"]
    assert cross["cpu_nodes"] == [0, 1] and cross["mem_nodes"] == [0, 1], cross
    assert cross["read_gbs"] > 0, cross
    assert any(n.startswith("remote:local read: 0->1 ") for n in res["notes"]), res["notes"]
    lat = {(c["cpu_node"], c["mem_node"]): c for c in res["latency"]}
    assert set(lat) == {(0, 0), (0, 1), (1, 0), (1, 1)}, sorted(lat)
    assert all(c["ns"] > 0 and c["placement_ok"] is True for c in lat.values()), lat
    assert [lat[(n, n)]["cpu"] in TOPO.node_cpus[n] for n in (0, 1)] == [True, True], lat
    assert "16 MiB per memory node" in res["latency_note"]


def _llama_server(two_socket) -> dict:
    r = _ok(two_socket, "llama_server")
    if "skipped" in r:
        import os

        if os.environ.get("CI"):
            pytest.fail(r["skipped"])
        pytest.skip(r["skipped"])
    return r


def test_llama_server_bound_to_node1_runs_and_pages_there(two_socket):
    r = _llama_server(two_socket)["bind1"]
    assert r["rc"] == 0, r["stderr"]
    assert r["answer"]["usage"]["completion_tokens"] == 6
    kinds = [e["event"] for e in r["events"]]
    assert "serving" in kinds and "done" in kinds
    after = [e for e in r["events"] if e["event"] == "placement"][-1]
    assert _shares(after)[1] >= 0.95, after
    node1 = set(TOPO.node_cpus[1])
    assert set(after["cpus_allowed"]) == node1
    assert set(after["thread_cpus_allowed"]) <= node1, after  # every llama-server thread
    assert after["warnings"] == []
    # read independently of rigtui, after generating: llama-server's own threads and policy
    proc = r["proc"]
    assert all(v == "2-3" for v in proc["threads"].values()), proc["threads"]
    assert any(k.startswith("bind:1") for k in proc["policies"]), proc["policies"]


def test_rpc_server_on_node1_takes_the_layers(two_socket):
    r = _llama_server(two_socket)
    said = r["rpc_said"]
    assert said["cpus"] == list(TOPO.node_cpus[1]) and said["memory_nodes"] == [1]
    serve = r["rpc_serve"]
    assert serve["rc"] == 0, serve["stderr"]
    assert serve["answer"]["usage"]["completion_tokens"] == 6
    after = [e for e in serve["events"] if e["event"] == "placement"][-1]
    remote = {k: v for k, v in after["model_buffers"].items() if k.startswith("RPC")}
    assert remote and sum(remote.values()) > 4 * MIB, after["model_buffers"]
    rpc = r["rpc_proc"]
    assert rpc["cpus"] == "2-3" and all(v == "2-3" for v in rpc["threads"].values())
    assert any(k.startswith("bind:1") for k in rpc["policies"]), rpc["policies"]
    # the layers it holds are its own memory, on node 1
    assert int(rpc["anon_bytes"].get("1", 0)) >= sum(remote.values()) * 0.9, rpc["anon_bytes"]


def test_sample_shows_memory_moving_to_node1_as_a_model_loads(two_socket):
    r = _ok(two_socket, "sample_load")
    assert r["t_served"], r["stderr"]
    rows = r["nodes"]
    before = [x for x in rows if x["t"] < r["t_start"]]
    # loaded and still running (the guest stops it 3 s after it serves)
    after = [x for x in rows if r["t_served"] + 0.5 < x["t"] < r["t_served"] + 2.5]
    assert before and after, (len(rows), r["stderr"])

    def used(sample, node):
        n = next(n for n in sample["nodes"] if n["node"] == node)
        return n["total_bytes"] - n["free_bytes"]

    grew1 = used(after[-1], 1) - used(before[-1], 1)
    grew0 = used(after[-1], 0) - used(before[-1], 0)
    model = 64 * 10**6
    assert grew1 >= 0.8 * model, (grew1, grew0)  # the weights, on node 1
    # node 0 gets only the unpinned `rigtui serve` parent's own memory (Python, imports)
    assert grew0 < 0.5 * grew1, (grew1, grew0)
