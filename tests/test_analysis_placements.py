"""The plan's placements: CPU only, full offload, the MoE hybrid (routed experts in RAM, the rest
on the GPUs, --n-cpu-moe N for the smallest N that fits) and a partial offload; the bytes each
side reads per token; the suggestion as llama-server flags and profile keys."""

from __future__ import annotations

import pytest
from analysis_helpers import epyc, gpu

from rigtui.analysis.gguf_facts import read_gguf_facts
from rigtui.analysis.plan import make_plan
from rigtui.analysis.plan_sizes import compute_buffer_estimate, gpu_fits, kv_bytes_per_layer
from rigtui.analysis.tensor_overrides import layer_expert_bytes
from rigtui.commands.plan import print_placements
from rigtui.engine.demo_model import write_demo_model

CTX = 512


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    path = write_demo_model(tmp_path_factory.mktemp("m") / "moe.gguf", size="40M", experts=4).path
    return read_gguf_facts(path)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    return read_gguf_facts(write_demo_model(tmp_path_factory.mktemp("d") / "d.gguf", size="40M").path)


def _plan(facts, free: int | None = None, **kw):
    top = epyc(gpus=(gpu(),))
    return make_plan(facts, top, n_ctx=CTX, vram_free=None if free is None else {0: free}, **kw)


def _need(facts, ngl: int, moved: dict[int, int]) -> int:
    """What GPU 0 needs for `ngl` layers with `moved` bytes per layer kept in RAM."""
    kv = kv_bytes_per_layer(facts, CTX, "f16", "f16")
    compute, _ = compute_buffer_estimate(facts, CTX)
    (f,) = gpu_fits(facts, epyc(gpus=(gpu(),)), ngl, kv, compute, cpu_layer_bytes=moved)
    return f.needed_bytes


def _by_kind(plan):
    return {p.kind: p for p in plan.placements}


def test_a_model_that_fits_the_gpu_is_offloaded_whole(moe):
    plan = _plan(moe)
    kinds = _by_kind(plan)
    assert list(kinds) == ["cpu", "full"]
    assert kinds["full"].suggested and kinds["full"].fits
    assert kinds["full"].flags == ("--n-gpu-layers", "all")
    assert plan.suggested_profile["gpu_layers"] == -1
    assert "engine" not in plan.suggested_profile  # the embedded engine can do this


def test_cpu_only_without_gpus(moe):
    plan = make_plan(moe, epyc(), n_ctx=CTX)
    (only,) = plan.placements
    assert only.kind == "cpu" and only.suggested and only.flags == ("--n-gpu-layers", "0")
    assert "gpu_layers" not in plan.suggested_profile


def test_moe_hybrid_keeps_the_fewest_layers_experts_in_ram(moe):
    exps = layer_expert_bytes(moe.tensors)
    assert sorted(exps) == list(range(moe.n_layers))
    # room for every layer but with the experts of the first two layers in RAM
    free = _need(moe, -1, {i: exps[i] for i in (0, 1)})
    assert free < _need(moe, -1, {0: exps[0]})  # one layer's experts in RAM is not enough
    plan = _plan(moe, free)
    kinds = _by_kind(plan)
    assert not kinds["full"].fits
    hybrid = kinds["moe-hybrid"]
    assert hybrid.n_cpu_moe == 2 and hybrid.fits and hybrid.gpu_layers == -1
    assert hybrid.flags == ("--n-gpu-layers", "all", "--n-cpu-moe", "2")
    assert hybrid.profile == {"engine": "llama-server", "gpu_layers": -1, "n_cpu_moe": 2}
    # the same figures as planning that placement directly
    direct = _plan(moe, free, n_gpu_layers=-1, n_cpu_moe=2, placements=False)
    assert hybrid.tg_tok_s == direct.predicted_tg_tok_s
    assert hybrid.gpu_bytes == direct.fit["gpu_bytes"]
    # whole layers fit fewer of the model's bytes per token on the GPU: the hybrid wins
    partial = kinds["partial"]
    assert partial.fits and partial.gpu_layers < moe.n_layers
    assert hybrid.tg_tok_s.value > partial.tg_tok_s.value > kinds["cpu"].tg_tok_s.value
    assert hybrid.suggested and not partial.suggested
    sugg = plan.suggested_profile
    assert (sugg["engine"], sugg["gpu_layers"], sugg["n_cpu_moe"]) == ("llama-server", -1, 2)
    assert any("MoE hybrid" in r for r in sugg["reasons"])


def test_all_experts_in_ram_is_spelled_exps_cpu(moe):
    exps = layer_expert_bytes(moe.tensors)
    free = _need(moe, -1, exps)  # only with every layer's experts in RAM
    plan = _plan(moe, free)
    hybrid = _by_kind(plan)["moe-hybrid"]
    assert hybrid.override_tensors == ("exps=CPU",) and hybrid.n_cpu_moe is None
    assert hybrid.flags == ("--n-gpu-layers", "all", "--override-tensor", "exps=CPU")
    assert hybrid.profile["override_tensors"] == ["exps=CPU"]


def test_when_even_the_attention_does_not_fit_the_last_layers_rest_goes(moe):
    exps = layer_expert_bytes(moe.tensors)
    free = _need(moe, 2, exps)  # the rest of two layers fits, of all of them not
    assert free < _need(moe, -1, exps)
    hybrid = _by_kind(_plan(moe, free))["moe-hybrid"]
    assert hybrid.gpu_layers == 2 and hybrid.override_tensors == ("exps=CPU",) and hybrid.fits


def test_bytes_read_per_token_split_between_the_sides(moe):
    """Full offload reads the active bytes on the GPU; with every expert in RAM the CPU side
    reads n_used/n_experts of the experts, the GPU everything else, whole."""
    share = moe.n_experts_used / moe.n_experts
    assert 0 < share < 1
    full = _plan(moe, n_gpu_layers=-1, placements=False)
    hyb = _plan(moe, n_gpu_layers=-1, override_tensors=["exps=CPU"], placements=False)
    bpt = full.bytes_per_token.value
    assert f"{bpt / 1e9:.3f} GB read per token" in full.predicted_tg_tok_s.detail
    cpu_read = moe.expert_bytes * share
    assert f"/ {cpu_read / 1e9:.3f} GB read per token on the CPU side" in hyb.predicted_tg_tok_s.detail
    assert f"then the GPUs' {(bpt - cpu_read) / 1e9:.3f} GB" in hyb.predicted_tg_tok_s.detail


def test_a_dense_model_gets_a_partial_offload(dense):
    free = _need(dense, 3, {})
    assert free < _need(dense, 4, {})
    plan = _plan(dense, free)
    kinds = _by_kind(plan)
    assert list(kinds) == ["cpu", "full", "partial"]
    assert kinds["partial"].gpu_layers == 3 and kinds["partial"].suggested
    assert plan.suggested_profile["gpu_layers"] == 3


def test_nothing_on_the_gpu_fits(dense):
    plan = _plan(dense, 1)
    kinds = _by_kind(plan)
    assert list(kinds) == ["cpu", "full"] and kinds["cpu"].suggested
    assert plan.suggested_profile["gpu_layers"] == 0


def test_the_text_lists_each_placement_with_its_flags(moe, capsys):
    from rich.console import Console

    exps = layer_expert_bytes(moe.tensors)
    plan = _plan(moe, _need(moe, -1, {i: exps[i] for i in (0, 1)}))
    print_placements(Console(width=80, highlight=False), plan.placements, 80)
    out = capsys.readouterr().out
    assert "* MoE hybrid: experts of layers 0-1 in RAM (2 of 7 MoE layers)" in out
    assert "--n-gpu-layers all --n-cpu-moe 2" in out
    assert "does not fit" in out  # full offload


def test_the_gpu_ceiling_takes_nvmls_bandwidth_over_the_table(dense):
    from dataclasses import replace

    # an H100 SXM as NVML describes it: 5120-bit HBM3 at 2619 MHz, a name the table lacks
    card = replace(gpu(), name="NVIDIA H100 80GB HBM3 SXM5 custom", memory_bus_width=5120,
                   memory_max_clock_mhz=2619, memory_total_bytes=80 << 30)  # fmt: skip
    plan = make_plan(dense, epyc(gpus=(card,)), n_ctx=CTX, n_gpu_layers=-1, placements=False)
    tg = plan.predicted_tg_tok_s
    assert "NVML: 5120-bit bus x 2619 MHz x 2 = 3352 GB/s" in tg.detail
    assert tg.value == pytest.approx(3352.32e9 / plan.bytes_per_token.value, rel=1e-3)
    unknown = replace(card, name="Mystery Accelerator", memory_bus_width=None)
    plan = make_plan(dense, epyc(gpus=(unknown,)), n_ctx=CTX, n_gpu_layers=-1, placements=False)
    assert plan.predicted_tg_tok_s.value is None
    assert "no memory bandwidth from NVML" in plan.predicted_tg_tok_s.detail


def test_prompts_on_a_hybrid_stream_the_ram_side_over_pcie(moe):
    """llama.cpp runs a prompt's ubatches on the GPU and copies the RAM-side weights over PCIe
    each time: ubatch x link GB/s / those bytes (not the token embedding, read row by row)."""
    from dataclasses import replace

    from rigtui.analysis.gpu_specs import pcie_bandwidth

    exps = layer_expert_bytes(moe.tensors)
    plan = _plan(moe, _need(moe, -1, exps), n_ubatch=512)
    hybrid = _by_kind(plan)["moe-hybrid"]
    gbs, words = pcie_bandwidth(gpu())
    assert round(gbs, 2) == 31.51 and words == "PCIe Gen4 x16 31.5 GB/s"
    streamed = moe.expert_bytes  # every routed expert is in RAM, nothing else of the layers
    assert hybrid.pp_tok_s.value == pytest.approx(512 * gbs * 1e9 / streamed)
    assert "streamed over GPU 0's PCIe Gen4 x16" in hybrid.pp_tok_s.detail
    assert _by_kind(plan)["cpu"].pp_tok_s is None
    full = _by_kind(_plan(moe))["full"]
    assert full.pp_tok_s.value is None and "nothing streamed" in full.pp_tok_s.detail
    # a riser trained down to x4 at Gen 3, an idle card reporting Gen 1 but able to do 4
    assert pcie_bandwidth(replace(gpu(), link_width=4, pcie_gen_max=3))[0] == pytest.approx(3.94, 0.01)
    assert pcie_bandwidth(replace(gpu(), pcie_gen=1))[1].startswith("PCIe Gen4 x16")


def test_two_gpus_get_a_split_that_fits_where_llama_cpps_default_does_not(moe):
    """llama.cpp's default split goes by free memory and cannot see that --n-cpu-moe left the
    first layers light: rigtui fills the GPUs in layer order and says so with --tensor-split."""
    from rigtui.analysis.plan_sizes import fill_split

    top = epyc(gpus=(gpu(0), gpu(1)))
    kv = kv_bytes_per_layer(moe, CTX, "f16", "f16")
    compute, _ = compute_buffer_estimate(moe, CTX, 32, True)  # small: the layers decide
    exps = layer_expert_bytes(moe.tensors)
    light = {i: exps[i] for i in range(4)}  # --n-cpu-moe 4
    cost = [moe.layer_bytes[i] - light.get(i, 0) + kv[i] for i in range(moe.n_layers)]
    # GPU 0 holds the four light layers exactly, GPU 1 the three heavy ones and the output
    free = {0: sum(cost[:4]) + compute, 1: sum(cost[4:]) + moe.output_bytes + compute}
    assert fill_split(moe, top, -1, kv, compute, free, light) == (4, 4)
    default = gpu_fits(moe, top, -1, kv, compute, None, free, cpu_layer_bytes=light)
    assert not all(f.fits for f in default)  # by free memory GPU 1 gets too many layers
    small = dict(n_ubatch=32, flash_attn=True)
    plan = make_plan(moe, top, n_ctx=CTX, vram_free=free, **small)
    hybrid = _by_kind(plan)["moe-hybrid"]
    assert hybrid.fits and hybrid.n_cpu_moe <= 4
    assert "--tensor-split" in hybrid.flags and hybrid.profile["tensor_split"]
    split = tuple(hybrid.profile["tensor_split"])
    direct = make_plan(moe, top, n_ctx=CTX, vram_free=free, n_gpu_layers=-1, **small,
                       n_cpu_moe=hybrid.n_cpu_moe, tensor_split=split, placements=False)  # fmt: skip
    assert all(f.fits for f in direct.fit["gpus"])
    assert [f.layers for f in direct.fit["gpus"]] == list(split)
