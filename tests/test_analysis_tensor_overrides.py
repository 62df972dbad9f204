"""override_tensors / n_cpu_moe in the plan: which tensors each pattern takes (llama.cpp's
first-match rule), and the GPU fit without the experts kept in RAM."""

from __future__ import annotations

import pytest
from analysis_helpers import epyc, gpu

from rigtui.analysis.gguf_facts import read_gguf_facts
from rigtui.analysis.plan import make_plan
from rigtui.analysis.tensor_overrides import place_tensors
from rigtui.engine.demo_model import write_demo_model

TENSORS = [("token_embd.weight", 100), ("blk.0.attn_q.weight", 10), ("blk.0.ffn_gate_exps.weight", 40),
           ("blk.0.ffn_up_exps.weight", 40), ("blk.0.ffn_down_exps.weight", 40),
           ("blk.1.attn_q.weight", 10), ("blk.1.ffn_gate_exps.weight", 40),
           ("blk.10.ffn_up_exps.weight", 40), ("output.weight", 100)]  # fmt: skip


def test_first_match_wins_and_layers_moved_to_the_cpu():
    groups, moved, experts = place_tensors(TENSORS, ["blk\\.1\\.=CUDA0", "exps=CPU"])
    by = {g.pattern: g for g in groups}
    # blk.1's expert matched the first pattern, so "exps" does not take it
    assert by["blk\\.1\\.=CUDA0".rpartition("=")[0]].tensors == 2
    assert by["exps"].tensors == 4 and by["exps"].bytes == 160 and by["exps"].to_cpu
    assert moved == {0: 120, 10: 40}
    assert experts == moved  # every tensor "exps" took is a routed expert


def test_n_cpu_moe_is_llama_cpps_per_layer_patterns():
    groups, moved, _ = place_tensors(TENSORS, [], n_cpu_moe=2)
    (g,) = groups
    assert g.source == "n_cpu_moe" and g.tensors == 4 and g.buffer_type == "CPU"
    assert moved == {0: 120, 1: 40}  # blk.10 is not layer 1: "blk\.1\.ffn" needs the dot


@pytest.fixture(scope="module")
def moe_facts(tmp_path_factory):
    path = write_demo_model(tmp_path_factory.mktemp("m") / "moe.gguf", size="8M", experts=4).path
    return read_gguf_facts(path)


def test_plan_reports_the_groups_and_moves_the_experts_off_the_gpu(moe_facts):
    top = epyc(gpus=(gpu(),))
    full = make_plan(moe_facts, top, n_ctx=512, n_gpu_layers=-1)
    moe = make_plan(moe_facts, top, n_ctx=512, n_gpu_layers=-1, override_tensors=["exps=CPU"])
    (g,) = moe.tensor_overrides
    assert g.tensors == 3 * moe_facts.n_layers and g.bytes == moe_facts.expert_bytes
    assert full.fit["gpus"][0].needed_bytes - moe.fit["gpus"][0].needed_bytes == g.bytes
    assert moe.fit["cpu_bytes"] - full.fit["cpu_bytes"] == g.bytes
    assert full.tensor_overrides == ()
    none = make_plan(moe_facts, top, n_ctx=512, n_gpu_layers=-1, override_tensors=["nothing=CPU"])
    assert none.tensor_overrides[0].tensors == 0
