"""Regression tests for defects found in a code review of rigtui.analysis (one test per bug)."""

from __future__ import annotations

import pytest
from analysis_helpers import epyc

from rigtui.analysis.plan import cpu_bandwidth as _bandwidth


def test_bound_nodes_get_their_share_of_the_socket_bandwidth_under_nps4():
    # NPS4: each node owns 3 of the socket's 12 channels; a model bound to node 0 reads at a
    # quarter of the socket's theoretical figure, not all of it (the bench's per-node figure
    # splits the same way).
    top = epyc(sockets=2, cores_per_socket=8, nodes_per_socket=4)
    sock = top.memory.bandwidth_per_socket_gbs[0]
    one = _bandwidth(top, None, (0,))
    assert one.value == pytest.approx(sock / 4)
    two = _bandwidth(top, None, (0, 1))
    assert two.value == pytest.approx(sock / 2)
    across = _bandwidth(top, None, (0, 4))  # one node on each socket
    assert across.value == pytest.approx(sock / 4 + top.memory.bandwidth_per_socket_gbs[1] / 4)
    whole = _bandwidth(top, None, tuple(range(8)))
    assert whole.value == pytest.approx(top.memory.theoretical_bandwidth_gbs)
    # NPS1: a node is the whole socket
    nps1 = epyc(sockets=2, nodes_per_socket=1)
    assert _bandwidth(nps1, None, (0,)).value == pytest.approx(
        nps1.memory.bandwidth_per_socket_gbs[0]
    )


def _write_gguf(path, head, kv):
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_block_count(4)
    w.add_embedding_length(64)
    w.add_head_count(head)
    w.add_head_count_kv(kv)
    w.add_context_length(256)
    for i in range(4):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_head_dim_from_a_per_layer_head_count_follows_llama_cpp(tmp_path):
    # Without attention.key_length llama.cpp takes n_embd / n_head of layer 0 (n_head() with its
    # default il = 0); the largest count of the array halved the head dim (and the KV estimate).
    from rigtui.analysis.gguf_facts import read_gguf_facts
    from rigtui.analysis.plan_sizes import kv_bytes_per_layer

    path = tmp_path / "perlayer.gguf"
    _write_gguf(path, [4, 4, 8, 8], [0, 2, 2, 4])
    facts = read_gguf_facts(path)
    assert facts.head_dim_k == facts.head_dim_v == 16
    assert facts.n_head_kv_per_layer == (0, 2, 2, 4)
    assert kv_bytes_per_layer(facts, 100) == (
        0,
        2 * 100 * 2 * 32,
        2 * 100 * 2 * 32,
        2 * 100 * 2 * 64,
    )


def test_a_node_share_of_the_socket_bandwidth_is_labelled_an_estimate():
    top = epyc(sockets=2, cores_per_socket=8, nodes_per_socket=4)
    one = _bandwidth(top, None, (0,))
    assert one.basis == "estimated" and "1 of its 4 nodes" in one.detail
    assert _bandwidth(top, None, (0, 1, 2, 3)).basis == "read"
