"""llama-server backend, pure parts: the argv a profile maps to, the MoE / RPC keys' validation,
what the binary says about itself, and why it exited."""

from __future__ import annotations

import pytest
from engine_helpers import write_profile

from rigtui.engine.llama_server import (
    BinaryInfo,
    explain_exit,
    parse_buffer_types,
    parse_version,
    server_argv,
    unknown_buffer_types,
)
from rigtui.model.profile import LaunchPlan
from rigtui.profiles import check_profile, load_profile

MOE = """
engine = "llama-server"
model = "demo:8M-moe4"
ctx = 4096
threads = 6
batch_threads = 12
gpu_layers = -1
flash_attn = true
cache_type_k = "q8_0"
mmap = false
seed = 7
numa = "distribute"
override_tensors = ["exps=CPU", "blk\\\\.1[0-9]\\\\.=CUDA0"]
n_cpu_moe = 3
rpc = ["127.0.0.1:50052", "10.0.0.2:50052"]
extra_args = ["--parallel", "2", "--cont-batching"]
binary = "/opt/llama/bin/llama-server"
[sampling]
temperature = 0.5
max_tokens = 64
"""


def _flag(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in argv, in order."""
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_moe_profile_maps_to_exact_argv(tmp_path):
    profile = load_profile(write_profile(tmp_path, "moe", MOE))
    plan = LaunchPlan(cpus=(0, 1, 2), threads=6, batch_threads=12, memory_policy="interleave",
                      memory_nodes=(0, 1), numa="distribute")  # fmt: skip
    argv = server_argv("/opt/llama/bin/llama-server", profile, plan, "/m.gguf", "127.0.0.1", 8099)
    assert argv[0] == "/opt/llama/bin/llama-server"
    assert _flag(argv, "--model") == ["/m.gguf"]
    assert _flag(argv, "--port") == ["8099"] and _flag(argv, "--host") == ["127.0.0.1"]
    assert _flag(argv, "--alias") == ["moe"]
    assert _flag(argv, "--threads") == ["6"] and _flag(argv, "--threads-batch") == ["12"]
    assert _flag(argv, "--ctx-size") == ["4096"] and _flag(argv, "--n-gpu-layers") == ["all"]
    assert _flag(argv, "--flash-attn") == ["on"] and _flag(argv, "--cache-type-k") == ["q8_0"]
    assert "--no-mmap" in argv and "--mlock" not in argv and _flag(argv, "--seed") == ["7"]
    assert _flag(argv, "--numa") == ["distribute"]
    # each override its own -ot, the regex exactly as written in the TOML (one backslash)
    assert _flag(argv, "--override-tensor") == ["exps=CPU", "blk\\.1[0-9]\\.=CUDA0"]
    assert _flag(argv, "--n-cpu-moe") == ["3"]
    assert _flag(argv, "--rpc") == ["127.0.0.1:50052,10.0.0.2:50052"]
    assert _flag(argv, "--temp") == ["0.5"] and _flag(argv, "--n-predict") == ["64"]
    assert "--metrics" in argv and "--slots" in argv
    assert argv[-3:] == ["--parallel", "2", "--cont-batching"]  # extra_args last, as given
    assert not any("KEY" in a.upper() for a in argv)  # the API key never goes on the argv


def test_numactl_with_rigtui_pinning_leaves_numa_off(tmp_path):
    profile = load_profile(write_profile(tmp_path, "p", 'engine = "llama-server"\n'
                                         'model = "demo:8M"\nnuma = "numactl"\n'))  # fmt: skip
    pinned = LaunchPlan((2, 3), 2, 2, "bind", (1,), "numactl")
    assert "--numa" not in server_argv("ls", profile, pinned, "/m", "127.0.0.1", 1)
    unpinned = LaunchPlan(None, 2, 2, "default", (), "numactl")
    assert _flag(server_argv("ls", profile, unpinned, "/m", "127.0.0.1", 1), "--numa") == ["numactl"]
    dense = load_profile(write_profile(tmp_path, "d", 'engine = "llama-server"\nmodel = "demo:8M"\n'))
    argv = server_argv("ls", dense, unpinned, "/m", "127.0.0.1", 1)
    assert _flag(argv, "--n-gpu-layers") == ["0"] and "--override-tensor" not in argv
    assert "--rpc" not in argv and "--n-cpu-moe" not in argv


@pytest.mark.parametrize(("line", "needle"), [
    ('override_tensors = ["exps"]', "PATTERN=BUFFER_TYPE"),
    ('override_tensors = ["blk\\\\.(1=CPU"]', "does not compile"),
    ('override_tensors = ["exps="]', "no buffer type"),
    ('rpc = ["localhost"]', "HOST:PORT"),
    ('rpc = ["h:99999"]', "HOST:PORT"),
    ("n_cpu_moe = -1", "out of range"),
    ('extra_args = [""]', "non-empty"),
    ('model = "demo:8M-moeX"', "demo:SIZE-moeN"),
    ('model = "demo:8M-moe1"', "experts"),
])  # fmt: skip
def test_bad_server_keys_are_errors_with_their_line(tmp_path, line, needle):
    text = 'engine = "llama-server"\nmodel = "demo:8M"\n' + line + "\n"
    if line.startswith("model"):
        text = 'engine = "llama-server"\n' + line + "\n"
    issues = [i for i in check_profile(write_profile(tmp_path, "p", text), None) if i.severity == "error"]
    assert issues, text
    assert any(needle in i.message or needle in (i.hint or "") for i in issues), issues
    assert all(i.line is not None for i in issues)


@pytest.mark.parametrize("key", ['override_tensors = ["exps=CPU"]', "n_cpu_moe = 2",
                                 'rpc = ["127.0.0.1:50052"]', 'extra_args = ["-np", "2"]',
                                 'binary = "/usr/bin/llama-server"'])  # fmt: skip
def test_embedded_engine_refuses_server_only_keys(tmp_path, key):
    path = write_profile(tmp_path, "p", f'model = "demo:8M"\n{key}\n')
    (issue,) = check_profile(path, None)
    assert issue.severity == "error" and issue.line == 2
    assert "llama-server option" in issue.message and 'engine = "llama-server"' in issue.hint


def test_llama_server_has_no_mirror_numa(tmp_path):
    path = write_profile(tmp_path, "p", 'engine = "llama-server"\nmodel = "demo:8M"\nnuma = "mirror"\n')
    (issue,) = check_profile(path, None)
    assert issue.key == "numa" and issue.line == 3


def test_parse_version_and_buffer_types():
    text = "version: 6810 (0c1e570a)\nbuilt with GNU 12.2.0 for Linux x86_64\n"
    assert parse_version(text) == ("6810", "0c1e570a", "GNU 12.2.0 for Linux x86_64")
    assert parse_version("usage: ls [OPTION]") == (None, None, None)
    sdist = "version: 0.5.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0 for Linux x86_64"
    assert parse_version(sdist) == ("0.5.0-dev", None, "GNU 12.2.0 for Linux x86_64")
    listing = ("Available buffer types:\n  CPU\n  CUDA0\n  CUDA1\n"
               "error while handling argument \"-ot\": unknown buffer type\n")  # fmt: skip
    assert parse_buffer_types(listing) == ("CPU", "CUDA0", "CUDA1")
    info = BinaryInfo("/x", True, buffer_types=("CPU", "CUDA0", "RPC0[127.0.0.1:50052]"))
    assert info.backends == ("CPU", "CUDA", "RPC")
    assert unknown_buffer_types(("exps=CPU", "attn=CUDA1"), info) == [("attn=CUDA1", "CUDA1")]
    assert unknown_buffer_types(("x=CUDA9",), BinaryInfo("/x", True)) == []  # not known: no guess


@pytest.mark.parametrize(("tail", "needle"), [
    (["srv    load_model: ...", "start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"],
     "port is in use"),
    (["llama_model_load: error loading model: tensor 'x' data is not within the file bounds",
      "main: exiting due to model loading error"], "failed to load the model"),
    (["error while handling argument \"--frobnicate\"", "error: invalid argument: --frobnicate"],
     "--frobnicate"),
])  # fmt: skip
def test_explain_exit(tail, needle):
    message, hint = explain_exit(tail)
    assert needle in message and hint
    assert explain_exit(["all fine", "bye"]) is None
