"""`rigtui plan`: exact bytes on demo models (whose sizes are known by construction), KV sizes as
llama.cpp itself allocates them, MoE active weights, GPU fit, and bad input without tracebacks."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import GiB, epyc, gpu

from rigtui.analysis.gguf_facts import GgufError, read_gguf_facts
from rigtui.analysis.plan import (
    PlanError,
    bytes_per_token,
    compute_buffer_estimate,
    gpu_fits,
    kv_bytes_per_layer,
    make_plan,
)
from rigtui.engine.demo_model import write_demo_model
from rigtui.model.analysis import MemBandwidth, MemBenchResult

REPO = Path(__file__).resolve().parent.parent
BPW = {"f16": 2.0, "q8_0": 34 / 32}


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    return {dt: write_demo_model(d / f"demo-{dt}.gguf", size="12M", dtype=dt) for dt in BPW}


def expected(info, ctx: int, kv: str = "f16"):
    """Sizes from the demo model's construction, independent of the GGUF reader."""
    norms = info.n_embd * (2 * info.n_layers + 1)
    bpw = BPW[info.dtype]
    weights = int((info.n_params - norms) * bpw) + norms * 4
    kv_dim = info.n_embd // info.n_head * info.n_head_kv
    kv_elem = {"f16": 2.0, "q8_0": 34 / 32}[kv]
    kv_bytes = int(2 * ctx * info.n_layers * kv_dim * kv_elem)
    embd = int(info.n_vocab * info.n_embd * bpw)
    return weights, kv_bytes, weights - embd + kv_bytes


@pytest.mark.parametrize("dtype", ["f16", "q8_0"])
def test_demo_plan_exact_bytes(demos, dtype):
    info = demos[dtype]
    facts = read_gguf_facts(info.path)
    assert (facts.n_params, facts.n_layers, facts.n_embd, facts.n_head, facts.n_head_kv) == (
        info.n_params,
        info.n_layers,
        info.n_embd,
        info.n_head,
        info.n_head_kv,
    )
    assert facts.n_ctx_train == info.n_ctx_train and facts.file_bytes == info.file_bytes
    assert facts.architecture == "llama" and facts.n_vocab == info.n_vocab
    weights, kv, bpt = expected(info, 1024)
    plan = make_plan(facts, epyc(), n_ctx=1024)
    assert plan.params.value == info.n_params and plan.params.basis == "read"
    assert plan.weights_bytes.value == weights
    assert plan.kv_cache_bytes.value == kv
    assert plan.bytes_per_token.value == bpt and plan.bytes_per_token.basis == "estimated"
    assert bytes_per_token(str(info.path), 1024) == bpt
    mix = {s.type: s for s in facts.quant_mix}
    assert mix["F32"].params == info.n_embd * (2 * info.n_layers + 1)
    assert set(mix) == {"F32", dtype.upper()}
    q8 = make_plan(facts, epyc(), n_ctx=1024, kv_type_k="q8_0", kv_type_v="q8_0")
    assert q8.kv_cache_bytes.value == expected(info, 1024, "q8_0")[1]


def test_tg_ceiling_uses_measured_bandwidth_else_theoretical(demos):
    facts = read_gguf_facts(demos["f16"].path)
    top = epyc()
    theo = make_plan(facts, top, n_ctx=512)
    assert theo.bandwidth_gbs.basis == "read" and theo.bandwidth_gbs.value == pytest.approx(921.6)
    bw = MemBandwidth("machine", (0, 1), (0, 1), 8, 1 << 30, 100.0, 90.0, 921.6, "smbios")
    node0 = replace(bw, label="node 0", cpu_nodes=(0,), mem_nodes=(0,), read_gbs=60.0)
    bench = MemBenchResult(0.0, "c", top.fingerprint(), (node0,), (), (), bw)
    plan = make_plan(facts, top, n_ctx=512, membench=bench)
    assert plan.bandwidth_gbs.basis == "measured"
    assert plan.predicted_tg_tok_s.value == pytest.approx(100e9 / plan.bytes_per_token.value)
    bound = make_plan(facts, top, n_ctx=512, membench=bench, nodes=(0,))
    assert bound.bandwidth_gbs.value == 60.0
    unknown = replace(
        top, memory=replace(top.memory, theoretical_bandwidth_gbs=None, bandwidth_per_socket_gbs={})
    )
    none = make_plan(facts, unknown, n_ctx=512)
    assert none.predicted_tg_tok_s.value is None and "bench mem" in none.predicted_tg_tok_s.detail
    assert plan.predicted_pp_tok_s.basis == "estimated" and plan.predicted_pp_tok_s.value > 0


def _llama_cpp_kv(path: Path, ctx: int, kv: str) -> tuple[float, float]:
    """(K MiB, V MiB) as llama.cpp reports allocating them (its log line, 2 decimals)."""
    code = (
        f"from llama_cpp import Llama\nLlama(model_path={str(path)!r}, n_ctx={ctx}, "
        f"n_threads=1, verbose=True, type_k={ {'f16': 1, 'q8_0': 8}[kv] }, "
        f"type_v={ {'f16': 1, 'q8_0': 8}[kv] }, flash_attn={kv != 'f16'})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    ).stderr
    m = re.search(r"K \((\w+)\):\s+([\d.]+) MiB, V \((\w+)\):\s+([\d.]+) MiB", out)
    assert m, out[-2000:]
    return float(m.group(2)), float(m.group(4))


@pytest.mark.parametrize("kv", ["f16", "q8_0"])
def test_kv_bytes_match_what_llama_cpp_allocates(demos, kv):
    info = demos["q8_0"]
    k_mib, v_mib = _llama_cpp_kv(info.path, 512, kv)
    facts = read_gguf_facts(info.path)
    ours = sum(kv_bytes_per_layer(facts, 512, kv, kv))
    assert ours / 2 / (1 << 20) == pytest.approx(k_mib, abs=0.006)
    assert ours / 2 / (1 << 20) == pytest.approx(v_mib, abs=0.006)


def test_compute_buffer_estimate_is_in_llama_cpp_s_range(demos):
    # llama.cpp 0.3.x reported 18.51 MiB for this model at ctx 1024 without flash attention
    facts = read_gguf_facts(demos["f16"].path)
    est, formula = compute_buffer_estimate(facts, 1024, 512, False)
    assert 0.5 < est / (18.51 * (1 << 20)) < 1.5 and "n_head" in formula


def _write_moe(path: Path, n_expert: int = 4, used: int = 2) -> dict[str, int]:
    from gguf import GGUFWriter

    e, ff, vocab, layers = 64, 128, 32, 2
    w = GGUFWriter(str(path), "qwen2moe")
    w.add_block_count(layers)
    w.add_embedding_length(e)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(256)
    w.add_feed_forward_length(ff)
    w.add_expert_count(n_expert)
    w.add_expert_used_count(used)
    sizes = {"embd": vocab * e * 4, "experts": 0, "other": 0}
    w.add_tensor("token_embd.weight", np.zeros((vocab, e), dtype=np.float32))
    w.add_tensor("output.weight", np.zeros((vocab, e), dtype=np.float32))
    sizes["other"] += vocab * e * 4
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((e, e), dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_up_exps.weight", np.zeros((n_expert, ff, e), dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_up_shexp.weight", np.zeros((ff, e), dtype=np.float32))
        sizes["other"] += (e * e + ff * e) * 4
        sizes["experts"] += n_expert * ff * e * 4
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sizes


def test_moe_active_weights(tmp_path):
    sizes = _write_moe(tmp_path / "moe.gguf")
    facts = read_gguf_facts(tmp_path / "moe.gguf")
    assert (facts.n_experts, facts.n_experts_used) == (4, 2)
    assert facts.expert_bytes == sizes["experts"]
    plan = make_plan(facts, epyc(), n_ctx=256)
    active = sizes["other"] + sizes["experts"] // 2  # embedding excluded, half the experts
    assert plan.active_weights_bytes.value == active
    assert plan.bytes_per_token.value == active + plan.kv_cache_bytes.value
    assert plan.weights_bytes.value == sizes["other"] + sizes["experts"] + sizes["embd"]


def test_gpu_fit_and_largest_n_gpu_layers(demos):
    facts = read_gguf_facts(demos["q8_0"].path)
    kv = kv_bytes_per_layer(facts, 1024)
    comp = compute_buffer_estimate(facts, 1024)[0]
    all_layers = sum(facts.layer_bytes) + sum(kv) + comp
    top = epyc(gpus=(gpu(0),))
    # room for every block but not the output matrix -> n_layers
    plan = make_plan(
        facts, top, n_ctx=1024, n_gpu_layers=-1, vram_free={0: all_layers + facts.output_bytes - 1}
    )
    assert plan.fit["max_n_gpu_layers"].value == facts.n_layers
    assert plan.fit["gpus"][0].fits is False and plan.warnings
    plan = make_plan(
        facts, top, n_ctx=1024, n_gpu_layers=-1, vram_free={0: all_layers + facts.output_bytes}
    )
    assert plan.fit["max_n_gpu_layers"].value == facts.n_layers + 1
    assert plan.suggested_profile["gpu_layers"] == -1
    # all on the GPU: the RTX 4090's 1008 GB/s from rigtui's table over what a token reads there
    tg = plan.predicted_tg_tok_s
    gpu_read = plan.bytes_per_token.value  # every layer, the output and the KV are on the GPU
    assert tg.value == pytest.approx(1008e9 / gpu_read, rel=0.02) and tg.basis == "estimated"
    assert "RTX 4090 1008 GB/s (table)" in tg.detail
    unknown = epyc(gpus=(replace(gpu(0), name="NVIDIA Mystery 9000"),))
    none = make_plan(facts, unknown, n_ctx=1024, n_gpu_layers=-1,
                     vram_free={0: all_layers + facts.output_bytes})  # fmt: skip
    assert none.predicted_tg_tok_s.value is None and "no memory bandwidth from NVML nor in rigtui's table" in (
        none.predicted_tg_tok_s.detail)
    # half the layers on the GPU: the CPU side's time, then the GPU's, per token
    half = make_plan(facts, top, n_ctx=1024, n_gpu_layers=facts.n_layers // 2)
    cpu_only = make_plan(facts, top, n_ctx=1024)
    assert half.predicted_tg_tok_s.value > cpu_only.predicted_tg_tok_s.value
    assert half.predicted_tg_tok_s.detail.startswith("hybrid ceiling")
    # -ngl 4 is the output and the last 3 blocks (llama.cpp counts the output as the top
    # layer); split 3:1 -> the 3 blocks on GPU 0, the output on GPU 1
    two = gpu_fits(facts, epyc(gpus=(gpu(0), gpu(1))), facts.n_layers, kv, comp, (3.0, 1.0))
    assert [f.layers for f in two] == [3, 1]
    assert two[1].needed_bytes == facts.output_bytes + comp
    assert two[0].needed_bytes == sum(facts.layer_bytes[1:]) + sum(kv[1:]) + comp


def test_the_layer_layout_is_llama_cpps():
    """src/llama-model.cpp: i_gpu_start = n_layer + 1 - n_gpu_layers over the n_layer blocks and
    the output (layer n_layer); each offloaded layer to the first GPU whose cumulative split
    point exceeds (il - i_gpu_start) / count."""
    from types import SimpleNamespace

    from rigtui.analysis.plan_sizes import _gpu_layout, offloaded

    assert offloaded(10, 0) == (range(10, 10), False)
    assert offloaded(10, 1) == (range(10, 10), True)  # -ngl 1: the output matrix alone
    assert offloaded(10, 4) == (range(7, 10), True)
    assert offloaded(10, 11) == offloaded(10, -1) == offloaded(10, 99) == (range(0, 10), True)
    facts = SimpleNamespace(layer_bytes=(1,) * 10)
    # all 11 over 1:1: positions j = 0..10, GPU 0 while j / 11 < 0.5
    assert _gpu_layout(facts, -1, 2, (1.0, 1.0)) == [([0, 1, 2, 3, 4, 5], False),
                                                     ([6, 7, 8, 9], True)]  # fmt: skip
    assert _gpu_layout(facts, 4, 2, (3.0, 1.0)) == [([7, 8, 9], False), ([], True)]
    assert _gpu_layout(facts, 3, 3, (0.0, 1.0, 1.0)) == [([], False), ([8, 9], False), ([], True)]


def test_free_vram_from_nvml_samples(demos):
    from rigtui.analysis.plan import CUDA_RESERVE, free_vram
    from rigtui.model.sample import GpuSample

    top = epyc(gpus=(replace(gpu(0), nvml_index=1), replace(gpu(1), nvml_index=0)))
    samples = (
        GpuSample(0, "a", True, mem_used_bytes=20 * GiB, mem_total_bytes=24 * GiB),
        GpuSample(1, "b", True, mem_used_bytes=1 * GiB, mem_total_bytes=24 * GiB),
    )
    # rigtui GPU 0 is NVML device 1 (PCI order differs from NVML's)
    assert free_vram(top, samples) == {0: 23 * GiB - CUDA_RESERVE, 1: 4 * GiB - CUDA_RESERVE}
    lost = (GpuSample(0, None, False, reason="lost"),)
    assert free_vram(top, lost) == {}
    facts = read_gguf_facts(demos["f16"].path)
    plan = make_plan(facts, top, n_ctx=512, n_gpu_layers=-1, vram_free=free_vram(top, samples))
    assert "NVML" in plan.fit["max_n_gpu_layers"].detail


def test_too_big_for_the_machine(demos):
    facts = read_gguf_facts(demos["f16"].path)
    tiny = epyc(mem_per_node=4 << 20)
    plan = make_plan(facts, tiny, n_ctx=512)
    assert any(w.startswith("too big") for w in plan.warnings)
    assert all(f.fits is False for f in plan.fit["nodes"])
    with pytest.raises(PlanError, match="KV cache type"):
        make_plan(facts, epyc(), kv_type_k="q3_k")
    with pytest.raises(PlanError, match="positive"):
        make_plan(facts, epyc(), n_ctx=-5)


BAD = {
    "text": (b"hello, not a model\n", "not a GGUF file"),
    "empty": (b"", "not a GGUF file"),
    "absurd": (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1) + bytes(64), "impossible"),
    "absurd_kv": (b"GGUF" + struct.pack("<IQQ", 3, 1, 1 << 50) + bytes(64), "impossible"),
    "garbage": (b"GGUF" + struct.pack("<IQQ", 3, 2, 3) + bytes(range(256)) * 4, "corrupt"),
    "version": (b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "version 9"),
    "safetensors": (struct.pack("<Q", 100) + b'{"__metadata__":{}}', "safetensors"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_give_clear_errors(tmp_path, name):
    data, msg = BAD[name]
    p = tmp_path / f"{name}.gguf"
    p.write_bytes(data)
    with pytest.raises(GgufError, match=msg):
        read_gguf_facts(p)


def test_truncated_download(demos, tmp_path):
    src = Path(demos["f16"].path).read_bytes()
    p = tmp_path / "half.gguf"
    p.write_bytes(src[: len(src) // 2])
    with pytest.raises(GgufError, match="truncated|corrupt"):
        read_gguf_facts(p)
    with pytest.raises(GgufError, match="directory"):
        read_gguf_facts(tmp_path)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rigtui", "plan", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_json_keys_and_bad_input(demos, tmp_path):
    info = demos["f16"]
    proc = _cli(str(info.path), "--ctx", "1024", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in (
        "params",
        "weights_bytes",
        "kv_cache_bytes",
        "bytes_per_token",
        "predicted_tg_tok_s",
        "predicted_pp_tok_s",
    ):
        assert data[key]["basis"] in ("measured", "read", "estimated"), key
        assert "detail" in data[key]
    assert data["params"]["value"] == info.n_params
    assert data["kv_cache_bytes"]["value"] == expected(info, 1024)[1]
    assert "nodes" in data["fit"] and "gpus" in data["fit"]
    text = _cli(str(info.path))
    assert text.returncode == 0 and "bytes per token" in text.stdout
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1))
    for args in ([str(bad)], [str(tmp_path / "missing.gguf")], [str(info.path), "--kv-type", "zz"]):
        out = _cli(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("rigtui: ")
    assert _cli().returncode == 2


def test_single_node_whose_meminfo_misses_memory_uses_the_machine_total(demos):
    """Some VMs hot-plug memory outside the node accounting: node0/meminfo says 8 GiB while
    /proc/meminfo says 24 GiB. The only node holds all of it, so the fit uses the machine's
    figures instead of calling a model that fits 'too big'."""
    facts = read_gguf_facts(demos["f16"].path)
    top = epyc(sockets=1, mem_per_node=4 << 20)  # node meminfo: 4 MiB, less than the model
    top = replace(
        top,
        memory=replace(top.memory, total_bytes=24 * GiB),
        host=replace(top.host, mem_available_bytes=20 * GiB),
    )
    plan = make_plan(facts, top, n_ctx=512)
    (node,) = plan.fit["nodes"]
    assert node.capacity_bytes == 24 * GiB and node.free_bytes == 20 * GiB
    assert node.fits and node.fits_free
    assert not any(w.startswith("too big") for w in plan.warnings)
    # Two nodes: each node's own figure stands (a bound model really is limited to its node).
    two = replace(epyc(mem_per_node=4 << 20), memory=replace(top.memory, total_bytes=24 * GiB))
    per_node = make_plan(facts, two, n_ctx=512).fit["nodes"]
    assert [f.capacity_bytes for f in per_node[:2]] == [4 << 20, 4 << 20]


def test_peak_flops_per_cycle_knows_zen4_halves_avx512():
    from rigtui.analysis.plan import _flops_per_cycle

    avx512 = {"avx2", "fma", "avx512f"}
    assert _flops_per_cycle(avx512, "AuthenticAMD", 0x19)[0] == 32  # Zen 4: 256-bit FMA pipes
    assert _flops_per_cycle(avx512, "AuthenticAMD", 0x1A)[0] == 64  # Zen 5: full 512-bit
    assert _flops_per_cycle(avx512, "GenuineIntel", 6)[0] == 64
    assert _flops_per_cycle({"avx2", "fma"}, "AuthenticAMD", 0x19)[0] == 32
    assert _flops_per_cycle({"asimd"})[0] == 16


def test_suggestion_says_bigger_than_one_node_only_when_it_is(demos):
    facts = read_gguf_facts(demos["f16"].path)
    big_nodes = make_plan(facts, epyc(), n_ctx=512).suggested_profile["reasons"]
    assert not any("bigger than one node" in r for r in big_nodes)
    small = make_plan(facts, epyc(mem_per_node=4 << 20), n_ctx=512)
    assert any("bigger than one node" in r for r in small.suggested_profile["reasons"])
    # CPU nodes without memory (memory on separate nodes): compare with the memory nodes
    top = epyc()
    cpu0, cpu1 = (replace(n, mem_total_bytes=0) for n in top.nodes)
    mem = replace(top.nodes[0], id=2, cpus=(), kind="memory-only", mem_total_bytes=96 * GiB)
    top = replace(top, nodes=(cpu0, cpu1, mem))
    reasons = make_plan(facts, top, n_ctx=512).suggested_profile["reasons"]
    assert not any("bigger than one node" in r for r in reasons)


def test_the_tg_ceiling_of_a_fabric_capped_rig_uses_the_cap(demos):
    """2 x EPYC 9124 (4 CCDs each): the theoretical figure is 2 x 230.4, not 2 x 460.8 from the
    channels, its basis 'estimated', and the detail says why."""
    facts = read_gguf_facts(demos["f16"].path)
    top = epyc(ccds=4)
    assert top.memory.limited_by == {0: "fabric", 1: "fabric"}
    plan = make_plan(facts, top, n_ctx=512)
    assert plan.bandwidth_gbs.value == pytest.approx(460.8)
    assert plan.bandwidth_gbs.basis == "estimated" and "capped by the fabric" in plan.bandwidth_gbs.detail
    assert plan.predicted_tg_tok_s.value == pytest.approx(460.8e9 / plan.bytes_per_token.value)
    bound = make_plan(facts, top, n_ctx=512, nodes=(1,))
    assert bound.bandwidth_gbs.value == pytest.approx(230.4) and "4 CCDs" in bound.bandwidth_gbs.detail


def test_use_case_verdicts_follow_the_guides_levels(demos):
    """The guide's levels: interactive = prompt under 5 s and more than 10 tok/s; background =
    all within 300 s; offline = within a night; and its four use cases at a plan's ceilings,
    generation slower at depth (the KV cache read grows)."""
    from rigtui.analysis.use_cases import USE_CASES, level, verdicts

    assert level(4.9, 10.1, 30) == "interactive"
    assert level(5.1, 50, 30) == "background" and level(1, 9, 299) == "background"
    assert level(1, 5, 301) == "offline" and level(1, 0.01, 13 * 3600) == "non-viable"
    assert level(None, 5, 5) == "unknown"
    got = verdicts(1024.0, lambda depth: 20.0 - depth / 1000)  # slower the deeper
    assert [u.id for u in got] == [u[0] for u in USE_CASES]
    uc1 = got[0]
    assert uc1.ttft_s == pytest.approx(1.0) and uc1.gen_tok_s == pytest.approx(20.0 - 1.032)
    assert uc1.verdict == "interactive"
    assert got[1].ttft_s == pytest.approx(4.0) and got[1].gen_tok_s < uc1.gen_tok_s
    facts = read_gguf_facts(demos["f16"].path)
    plan = make_plan(facts, epyc(), n_ctx=512)
    ucs = {u.id: u for u in plan.use_cases}
    assert set(ucs) == {"UC1", "UC2", "UC3", "UC4"}
    known = [u for u in plan.use_cases if u.verdict != "unknown"]
    assert known, plan.use_cases
    for u in known:  # each verdict is the guide's level of its own figures
        assert u.ttft_s == pytest.approx(u.prompt_tokens / plan.predicted_pp_tok_s.value)
        assert u.gen_tok_s <= plan.predicted_tg_tok_s.value * 1.5
        assert u.verdict == level(u.ttft_s, u.gen_tok_s, u.total_s)
    too_long = [u for u in plan.use_cases if u.prompt_tokens + u.gen_tokens > facts.n_ctx_train]
    assert all(u.verdict == "unknown" and "trained for" in u.basis for u in too_long)
