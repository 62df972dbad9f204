"""Profile text with every key documented: `new_profile_text` and the shipped examples.

Keys the profile sets are written as `key = value`; the others as commented-out defaults, so a
user sees every knob and its meaning in the file itself.
"""

from __future__ import annotations

import json
from typing import Any

from rigtui.model.profile import KV_CACHE_TYPES
from rigtui.model.topology import Topology
from rigtui.profiles.textutil import format_cpulist

# (key, default shown when unset, comment lines). Order = order in the file.
KEY_DOCS: list[tuple[str, Any, str]] = [
    (
        "engine",
        "llama-cpp-python",
        "Inference engine: llama-cpp-python (embedded, 0.3.x) | llama-server (llama.cpp's own\n"
        "server binary: MoE tensor overrides, RPC; `rigtui engines` shows what is installed).",
    ),
    ("extends", "other-profile", "Start from another profile (by name) and override keys below."),
    ("description", "", "One line shown in `rigtui profiles list` and the launcher."),
    (
        "model",
        "/models/model.gguf",
        'GGUF file (relative paths: from this file), or "demo:SIZE" for the\n'
        'synthetic random-weight model rigtui generates on first use ("demo:8M", "demo:300M", "demo:1G";\n'
        '"demo:8M-moe4": a mixture of 4 experts).',
    ),
    ("ctx", 2048, "Context size in tokens (llama.cpp -c). 0 = the model's training context."),
    ("batch", 512, "Logical batch size for prompt processing (-b)."),
    ("ubatch", 512, "Physical batch size (-ub)."),
    ("threads", 8, "Generation threads (-t). Unset: one per physical core of the CPU set below."),
    ("batch_threads", 8, "Prompt-processing threads (-tb). Unset: same as threads."),
    ("cpus", "0-47,96-143", "CPU affinity as a cpulist (taskset -c). Wins over `nodes`."),
    ("nodes", [0], "Run on the CPUs of these NUMA nodes (numactl --cpunodebind)."),
    (
        "physical_cores_only",
        False,
        "Use one hardware thread per physical core of the CPU set (no SMT siblings).",
    ),
    (
        "numa",
        "disabled",
        "llama.cpp's NUMA strategy (--numa): disabled | distribute (spread threads over\n"
        "nodes) | isolate (stay on the node the process started on) | numactl (use the CPU set rigtui\n"
        "applies) | mirror (a no-op in mainline llama.cpp: no weight copy per node).",
    ),
    (
        "memory_policy",
        "default",
        "NUMA memory policy rigtui sets (set_mempolicy) BEFORE the model loads:\n"
        "default | interleave (pages round-robin over memory_nodes) | bind (only memory_nodes) |\n"
        "preferred (first memory node, spill elsewhere). llama.cpp maps the model MAP_SHARED, where\n"
        "mbind is ignored: this process policy (or mmap = false) is what places the weights.",
    ),
    (
        "memory_nodes",
        [0, 1],
        "Nodes for memory_policy. Unset: `nodes`, else all nodes (interleave) or the\n"
        "nodes of the CPU set (bind/preferred).",
    ),
    (
        "drop_caches_first",
        False,
        "Drop the model file from the page cache before loading (posix_fadvise, no root)\n"
        "so the policy places every page; pages another process maps stay where they are.",
    ),
    (
        "prefault",
        False,
        "Read the whole model file under memory_policy before loading: a cold model (MoE\n"
        "experts above all) is placed at once instead of over the first requests (llama.cpp\n"
        "skips its own prefetch in its NUMA modes). Needs a memory_policy; with drop_caches_first.",
    ),
    ("gpu_layers", 0, "Layers to offload to the GPU (-ngl). -1 = all, 0 = CPU only."),
    ("split_mode", "layer", "Multi-GPU split (-sm): none | layer | row."),
    (
        "main_gpu",
        0,
        "GPU for the whole model with split_mode none, or for scratch/KV with row (-mg).",
    ),
    ("tensor_split", [1, 1], "Share of the model per GPU (-ts), e.g. [3, 1]."),
    ("offload_kqv", True, "Keep the KV cache and attention on the GPU (false: -nkvo)."),
    ("cuda_visible_devices", "0,1", "Sets CUDA_VISIBLE_DEVICES for the engine process."),
    ("flash_attn", False, "Flash attention (-fa); needed for a quantized V cache."),
    ("cache_type_k", "f16", f"KV cache types (-ctk/-ctv): {' | '.join(KV_CACHE_TYPES)}."),
    ("cache_type_v", "f16", ""),
    (
        "mmap",
        True,
        "Map the model file (page cache, shared between processes). false: read into memory.",
    ),
    ("mlock", False, "Lock the model in RAM (needs ulimit -l / CAP_IPC_LOCK)."),
    ("seed", -1, "Sampling seed; -1 = random."),
    (
        "listen",
        "127.0.0.1:8080",
        "Where `rigtui serve` answers the OpenAI-compatible API (HOST:PORT; port 0 = any free).\n"
        "An address other machines reach needs api_key_env.",
    ),
    (
        "api_key_env",
        "RIGTUI_API_KEY",
        "Environment variable holding the API key clients must send (Authorization: Bearer).\n"
        "The key itself is never written in the profile.",
    ),
    (
        "override_tensors",
        ["exps=CPU"],
        "llama-server only (-ot): tensors whose name matches PATTERN go to BUFFER_TYPE, as\n"
        '"PATTERN=BUFFER_TYPE" (CPU, CUDA0, RPC0[host:port]...: `rigtui engines`). The MoE recipe:\n'
        'gpu_layers = -1 with ["exps=CPU"] keeps the experts in RAM and the rest on the GPU.',
    ),
    ("n_cpu_moe", 0, "llama-server only (--n-cpu-moe): keep the experts of the first N layers in RAM."),
    (
        "rpc",
        ["127.0.0.1:50052"],
        "llama-server only (--rpc): rpc-servers that take layers, like GPUs do (one per NUMA\n"
        "node: `rigtui rpc-server --node N`, or per rig). No authentication: trusted networks only.",
    ),
    ("extra_args", ["--parallel", "2"], "llama-server only: more arguments, appended as given."),
    (
        "binary",
        "/opt/llama.cpp/build/bin/llama-server",
        "llama-server only: the executable. Unset: llama-server on PATH, else rigtui's build\n"
        "(`rigtui engines build`).",
    ),
]
SAMPLING_DOCS: list[tuple[str, Any, str]] = [
    ("temperature", 0.8, "0 = greedy."),
    ("top_k", 40, ""),
    ("top_p", 0.95, ""),
    ("min_p", 0.05, ""),
    ("repeat_penalty", 1.0, "1.0 = off."),
    (
        "max_tokens",
        128,
        "Default number of tokens to generate per prompt (`rigtui run -n` overrides).",
    ),
]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to a profile")


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in text.splitlines()] if text else []


def render_profile(values: dict[str, Any], *, title: str) -> str:
    """Profile text: `values` (top-level keys, plus a "sampling" dict) set, the rest commented."""
    out = _comment(title) + [""]
    for key, default, doc in KEY_DOCS:
        out += _comment(doc)
        if key in values:
            out.append(f"{key} = {_toml_value(values[key])}")
        else:
            out.append(f"# {key} = {_toml_value(default)}")
        if doc or key == "cache_type_v":
            out.append("")
    env = values.get("env") or {}
    out += ["# Extra environment variables for the engine process (OMP_*, GGML_*, ...).", "[env]"]
    out += [f"{k} = {_toml_value(v)}" for k, v in env.items()] or ['# OMP_WAIT_POLICY = "active"']
    out += [
        "",
        "# Sampling defaults for prompts (the UI and `rigtui run` may override them).",
        "[sampling]",
    ]
    sampling = values.get("sampling") or {}
    for key, default, doc in SAMPLING_DOCS:
        line = f"{key} = {_toml_value(sampling.get(key, default))}"
        out.append(line if key in sampling else f"# {line}")
        if doc:
            out[-1] += f"  # {doc}"
    return "\n".join(out) + "\n"


def suggested_values(topology: Topology, model: str) -> dict[str, Any]:
    """Defaults for this machine: threads = physical cores (of the used nodes), interleave the
    memory across sockets on multi-socket boxes, one thread per core when SMT is on."""
    values: dict[str, Any] = {"model": model}
    cpu_nodes = [n for n in topology.nodes if n.cpus]
    cores = len(topology.first_thread_per_core()) or len(topology.cpu.online) or 1
    values["threads"] = cores
    if (topology.cpu.threads_per_core or 1) > 1:
        values["physical_cores_only"] = True
    if len(topology.sockets) > 1 or len(cpu_nodes) > 1:
        values["numa"] = "distribute"
        values["memory_policy"] = "interleave"
        values["memory_nodes"] = [n.id for n in topology.nodes if n.mem_total_bytes != 0]
    if topology.gpus:
        values["gpu_layers"] = -1
    return values


def new_profile_text(topology: Topology, name: str, model: str, **overrides: Any) -> str:
    """A documented profile for this machine; `overrides` (profile keys) win over suggestions."""
    values = suggested_values(topology, model)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "cpus" in values and not isinstance(values["cpus"], str):
        values["cpus"] = format_cpulist(values["cpus"])
    cpu = topology.cpu.model_name or "this machine"
    title = (f"rigtui launch profile {name!r}, suggested for {cpu} "
             f"({len(topology.sockets)} socket(s), {len(topology.nodes)} NUMA node(s), "
             f"{topology.physical_cores} cores). Every key is explained below; `rigtui profiles check "
             f"{name}` validates it.")  # fmt: skip
    import textwrap

    return render_profile(values, title="\n".join(textwrap.wrap(title, 96)))
