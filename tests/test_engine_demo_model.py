from __future__ import annotations

import subprocess
import sys

import pytest

from rigtui.engine.demo_model import (
    DEMO_SIZES,
    demo_model_dims,
    ensure_demo_model,
    write_demo_model,
)
from rigtui.profiles.gguf_check import check_gguf

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology


@pytest.mark.parametrize("size", DEMO_SIZES)
@pytest.mark.parametrize("dtype", ["f16", "q8_0"])
def test_dims_follow_size_and_use_gqa(size, dtype):
    dims = demo_model_dims(size, dtype)
    target = {"8M": 8e6, "100M": 100e6, "300M": 300e6, "1G": 1e9}[size]
    per_weight = 2 if dtype == "f16" else 34 / 32
    assert 0.75 * target < dims.n_params * per_weight < 1.15 * target
    assert dims.n_head_kv < dims.n_head and dims.n_head % dims.n_head_kv == 0
    assert dims.n_embd % 64 == 0 and dims.n_ff % 64 == 0  # Q8_0 rows are 32-blocks


def test_bad_size_and_dtype():
    with pytest.raises(ValueError, match="suffix"):
        demo_model_dims("lots")
    with pytest.raises(ValueError, match="dtype"):
        demo_model_dims("8M", "q4_0")
    with pytest.raises(ValueError, match="too small"):
        demo_model_dims("10K")


@pytest.mark.parametrize("dtype", ["f16", "q8_0"])
def test_param_count_is_exact_per_llama_cpp(tmp_path, dtype):
    info = write_demo_model(tmp_path / "m.gguf", size="8M", dtype=dtype, seed=3)
    facts = check_gguf(info.path)
    assert facts.n_params == info.n_params
    assert facts.architecture == "llama"
    assert info.file_bytes == info.path.stat().st_size
    assert 0 <= info.file_bytes - facts.data_end < 32  # the writer pads the last tensor to 32
    code = (
        "import sys, llama_cpp\n"
        "llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=128, n_threads=1, verbose=False)\n"
        "print(llama_cpp.llama_model_n_params(llm.model), llm.n_vocab())\n"
        "print(llm.tokenize(b'Hello, world', add_bos=True))\n"
        "out = llm.create_completion('Hi', max_tokens=8, temperature=0.0)\n"
        "print(out['usage']['completion_tokens'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(info.path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    n_params, n_vocab = map(int, lines[0].split())
    assert n_params == info.n_params
    assert n_vocab == info.n_vocab
    tokens = eval(lines[1])  # a list of ints printed by the child
    assert tokens[0] == 1 and len(tokens) > 5  # BOS, then byte/char tokens
    assert int(lines[2]) >= 1


def test_written_atomically_and_deterministic(tmp_path):
    a = write_demo_model(tmp_path / "a.gguf", size="2M", seed=7)
    b = write_demo_model(tmp_path / "b.gguf", size="2M", seed=7)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "b.gguf"]  # no temp files left


def test_ensure_demo_model_generates_once_into_cache(xdg):
    path = ensure_demo_model("2M")
    assert path.is_relative_to(xdg / "cache" / "rigtui")
    mtime = path.stat().st_mtime_ns
    assert ensure_demo_model("2M") == path and path.stat().st_mtime_ns == mtime


def test_cli_writes_model(tmp_path):
    from rigtui.cli import main

    assert main(["demo-model", str(tmp_path / "c.gguf"), "--size", "2M", "--dtype", "q8_0"]) == 0
    assert check_gguf(tmp_path / "c.gguf").n_tensors > 0
    assert main(["demo-model", str(tmp_path / "d.gguf"), "--size", "huge"]) == 2


def test_block_table_agrees_with_the_gguf_package():
    """check_gguf's own table (so that loading a profile does not import gguf) must say what
    the gguf package says for every type both know; a type only gguf knows is asked of it."""
    from gguf import GGML_QUANT_SIZES

    from rigtui.model.gguf import GGML_BLOCKS, block_size

    known = {int(k): v for k, v in GGML_QUANT_SIZES.items()}
    for ttype, sizes in GGML_BLOCKS.items():
        assert known[ttype] == sizes, ttype
    for ttype, sizes in known.items():
        assert block_size(ttype) == sizes
    assert block_size(9999) is None


def test_type_names_agree_with_the_gguf_package():
    from gguf import GGMLQuantizationType

    from rigtui.model.gguf import GGML_TYPE_NAMES, type_name

    for ttype, name in GGML_TYPE_NAMES.items():
        assert GGMLQuantizationType(ttype).name == name, ttype
    for member in GGMLQuantizationType:
        assert type_name(int(member)) == member.name
    assert type_name(9999) == "type9999"


def test_deeply_nested_metadata_arrays_are_a_clear_error(tmp_path):
    """Arrays of arrays 5000 deep (a crafted file): a problem naming the cause, not a
    RecursionError out of `rigtui run` / `profiles check`."""
    import struct

    from rigtui.profiles.gguf_check import GgufProblem

    kv = struct.pack("<Q", 4) + b"deep" + struct.pack("<I", 9)
    kv += (struct.pack("<I", 9) + struct.pack("<Q", 1)) * 5000 + struct.pack("<IQ", 0, 0)
    path = tmp_path / "deep.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv + bytes(64))
    with pytest.raises(GgufProblem, match="nested more than 16 deep"):
        check_gguf(path)
