"""llama.cpp's own estimate beside rigtui's plan: llama-fit-params' output parsed (recorded
runs), the comparison of the two (pure), and a real run of the binary rigtui builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rigtui.analysis.gguf_facts import read_gguf_facts
from rigtui.analysis.llama_fit_compare import compare
from rigtui.analysis.plan import make_plan
from rigtui.engine.demo_model import write_demo_model
from rigtui.engine.llama_fit import _tail, fit_argv, llama_fit, parse_fit_print, parse_fitted
from rigtui.model.analysis import LlamaFit, LlamaFitDevice

DATA = Path(__file__).with_name("data") / "llama-fit-params"
MiB = 1 << 20


def test_the_device_lines_of_fit_print():
    (host,) = parse_fit_print((DATA / "print-cpu.stdout").read_text())
    assert host == LlamaFitDevice("Host", 41 * MiB, 1 * MiB, 14 * MiB)
    # common_fit_print's format with GPUs: one line per device, then the host
    devs = parse_fit_print("CUDA0 20480 1024 512 \nCUDA1 18000 900 512 \nHost 300 0 24 \n")
    assert [d.name for d in devs] == ["CUDA0", "CUDA1", "Host"]
    assert devs[1].model_bytes == 18000 * MiB
    assert parse_fit_print("llama_fit_params: printing ...\n") == ()


def test_the_fitted_arguments_line():
    assert parse_fitted((DATA / "fit-cpu.stdout").read_text()) == "-c 512 -ngl -1"
    line = '-c 32768 -ngl 62 -ts 40,22 -ot "blk\\.4[0-9]\\.ffn_(up|down|gate)_exps=CPU"'
    assert parse_fitted(f"noise\n{line}\n") == line
    assert parse_fitted("") is None


def test_the_error_llama_cpp_logged_is_the_reason():
    text = (DATA / "quantized-v-no-flash.stderr").read_text()
    assert _tail(text) == "llama_init_from_model: quantized V cache requires flash_attn to be enabled"
    assert _tail("terminate called\n  what():  boom\n") == "what():  boom"


def test_argv_is_the_plans_arguments():
    argv = fit_argv("/b/llama-fit-params", "/m.gguf", ctx=4096, n_gpu_layers=-1,
                    override_tensors=["exps=CPU"], n_cpu_moe=3, cache_type_k="q8_0",
                    cache_type_v="q8_0", flash_attn=True)  # fmt: skip
    assert argv[:3] == ["/b/llama-fit-params", "--model", "/m.gguf"]
    joined = " ".join(argv)
    for part in ("--ctx-size 4096", "--n-gpu-layers all", "--override-tensor exps=CPU",
                 "--n-cpu-moe 3", "--cache-type-v q8_0", "--flash-attn on", "--fit-print on"):  # fmt: skip
        assert part in joined
    fit = fit_argv("/b/f", "/m.gguf", ctx=512, print_memory=False)
    assert "--fit-print" not in fit and "--n-gpu-layers" not in fit  # llama.cpp chooses


@pytest.fixture(scope="module")
def moe(tmp_path_factory):
    return str(write_demo_model(tmp_path_factory.mktemp("m") / "moe.gguf", size="40M", experts=4).path)


def test_compare_agrees_and_disagrees(moe):
    from analysis_helpers import epyc

    plan = make_plan(read_gguf_facts(moe), epyc(), n_ctx=512)
    w, kv, c = (plan.weights_bytes.value, plan.kv_cache_bytes.value,
                plan.compute_buffer_bytes.value)  # fmt: skip
    same = LlamaFit("f", (LlamaFitDevice("Host", w // MiB * MiB, kv, c),), None)
    (note,) = compare(plan, same)
    assert "agrees" in note
    bigger = LlamaFit("f", (LlamaFitDevice("Host", w, kv, 3 * c),), None)
    (note,) = compare(plan, bigger)
    assert note.startswith("compute buffers: llama.cpp") and "+200%" in note
    assert compare(plan, LlamaFit("f", (), None, "no estimate (exit 1)")) == ("no estimate (exit 1)",)


def _fit_binary() -> str | None:
    from rigtui.engine.llama_server import find_binary

    return find_binary("llama-fit-params").path


def test_a_real_llama_fit_params_agrees_with_the_plan(moe):
    binary = _fit_binary()
    if binary is None:
        pytest.fail("no llama-fit-params: `rigtui engines build` builds it (test.sh runs it)")
    fit = llama_fit(binary, moe, ctx=512, n_gpu_layers=0)
    assert fit.reason is None and [d.name for d in fit.devices] == ["Host"]
    from analysis_helpers import epyc

    plan = make_plan(read_gguf_facts(moe), epyc(), n_ctx=512)
    (note,) = compare(plan, fit)
    assert "agrees" in note, note
    bad = llama_fit(binary, moe, ctx=512, n_gpu_layers=0, cache_type_v="q8_0", flash_attn=False)
    assert bad.devices == () and "llama-fit-params gave no estimate" in bad.reason
    missing = llama_fit(binary, moe + ".nope", ctx=512, n_gpu_layers=0)
    assert missing.devices == () and missing.reason


def test_plan_cli_shows_llama_cpps_estimate(moe):
    if _fit_binary() is None:
        pytest.fail("no llama-fit-params: `rigtui engines build` builds it (test.sh runs it)")
    run = [sys.executable, "-m", "rigtui", "plan", moe, "--ctx", "512"]
    out = subprocess.run(run + ["--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["llama_fit"]["devices"][0]["name"] == "Host"
    assert "agrees" in plan["llama_fit_notes"][0]
    text = subprocess.run(run, capture_output=True, text=True, timeout=120).stdout
    assert "llama.cpp's own estimate" in text and "Host" in text
    skipped = subprocess.run(run + ["--json", "--no-llama-fit"], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert json.loads(skipped.stdout)["llama_fit"] is None
