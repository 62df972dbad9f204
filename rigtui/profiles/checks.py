"""Profile vs this machine: CPUs, nodes, GPUs and the model file; and the launch plan.

`plan_launch` turns the profile's `cpus` / `nodes` / `physical_cores_only` / `threads` /
`memory_policy` into concrete CPU ids, thread counts and policy nodes for a Topology
(`rigtui.probes.detect(fs)`; tests pass fixture topologies).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rigtui.model.profile import LaunchPlan, Profile, ProfileIssue, is_loopback, parse_listen
from rigtui.model.topology import Topology
from rigtui.profiles.gguf_check import GgufProblem, check_gguf
from rigtui.profiles.textutil import format_cpulist, parse_cpulist

Where = Callable[[str], tuple[str, int | None]]  # key -> (file, line) where it was set


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _numa_repin_problem(profile: Profile, plan: LaunchPlan, topology: Topology) -> str | None:
    """llama.cpp's `distribute` and `isolate` strategies re-pin each compute thread to every
    CPU of a whole node (ggml-cpu.c set_numa_thread_affinity, on machines with more than one
    node): thread i to node i % N, or all to the node the process starts on. A narrower CPU set
    from cpus / nodes / physical_cores_only then does not hold for those threads."""
    if profile.numa not in ("distribute", "isolate") or plan.cpus is None:
        return None
    cpu_nodes = [n for n in topology.nodes if n.cpus]
    if len(topology.nodes) < 2 or not cpu_nodes:
        return None  # one node: llama.cpp leaves the affinity alone
    pinned = set(plan.cpus)
    if profile.numa == "distribute":
        every = {c for n in cpu_nodes for c in n.cpus}
        if pinned == every:
            return None
        return (f'numa = "distribute" re-pins llama.cpp\'s threads to every CPU of all '
                f"{len(cpu_nodes)} nodes (thread i to node i % {len(cpu_nodes)}), so the CPU set "
                f"{format_cpulist(plan.cpus)} rigtui pins does not hold for them")  # fmt: skip
    if any(pinned == set(n.cpus) for n in cpu_nodes):
        return None
    return (f'numa = "isolate" re-pins llama.cpp\'s threads to every CPU of the node the engine '
            f"starts on, so the CPU set {format_cpulist(plan.cpus)} rigtui pins does not hold for "
            "them")  # fmt: skip


def plan_launch(profile: Profile, topology: Topology) -> LaunchPlan:
    """Resolve CPU set, threads and memory-policy nodes. Unknown CPUs/nodes are left out (the
    checks report them); the result is what the worker will apply."""
    notes: list[str] = []
    online = set(topology.cpu.online)
    base = (
        tuple(sorted(online & set(topology.cpu.allowed)))
        if topology.cpu.allowed
        else tuple(sorted(online))
    )
    cpus: tuple[int, ...] | None = None
    if profile.cpus:
        cpus = tuple(c for c in parse_cpulist(profile.cpus) if c in online)
    elif profile.nodes:
        node_cpus: set[int] = set()
        for nid in profile.nodes:
            node = topology.node(nid)
            if node is not None:
                node_cpus.update(node.cpus)
        cpus = tuple(sorted(node_cpus))
        notes.append(f"CPUs of node(s) {format_cpulist(profile.nodes)}: {format_cpulist(cpus)}")
    if profile.physical_cores_only:
        cpus = topology.first_thread_per_core(cpus if cpus is not None else base) or cpus
        notes.append(f"one hardware thread per physical core: {format_cpulist(cpus or ())}")
    used = cpus if cpus is not None else base
    if profile.threads is not None:
        threads = profile.threads
    else:
        threads = len(topology.first_thread_per_core(used)) or len(used) or 1
        notes.append(f"threads = {threads} (physical cores of the CPU set)")
    batch_threads = profile.batch_threads or threads
    mem_nodes: tuple[int, ...] = ()
    if profile.memory_policy != "default":
        if profile.memory_nodes:
            mem_nodes = tuple(profile.memory_nodes)
        elif profile.nodes:
            mem_nodes = tuple(profile.nodes)
        elif profile.memory_policy == "interleave":
            mem_nodes = tuple(n.id for n in topology.nodes if n.mem_total_bytes != 0)
        else:
            mem_nodes = tuple(
                sorted({c.node for c in topology.cpus if c.id in used and c.node is not None})
            )
        if profile.memory_policy == "preferred":
            mem_nodes = mem_nodes[:1]
        notes.append(
            f"memory policy {profile.memory_policy} on node(s) {format_cpulist(mem_nodes)}"
        )
    return LaunchPlan(
        cpus, threads, batch_threads, profile.memory_policy, mem_nodes, profile.numa, tuple(notes)
    )


def check_machine(profile: Profile, topology: Topology, where: Where) -> list[ProfileIssue]:
    """Problems of `profile` on the machine described by `topology`."""
    issues: list[ProfileIssue] = []

    def add(key: str, message: str, hint: str | None = None, severity: str = "error") -> None:
        file, line = where(key)
        issues.append(ProfileIssue(file, line, key, message, hint, severity))

    online = set(topology.cpu.online)
    online_s = format_cpulist(online)
    node_ids = [n.id for n in topology.nodes]
    nodes_s = ", ".join(map(str, node_ids)) or "none reported"
    if profile.cpus:
        wanted = parse_cpulist(profile.cpus)
        missing = [c for c in wanted if c not in online]
        if missing:
            add("cpus", f"CPU(s) {format_cpulist(missing)} do not exist or are offline on this machine "
                f"(online: {online_s})", "pick CPUs from `lscpu -e` / `rigtui probe`")  # fmt: skip
        allowed = set(topology.cpu.allowed or ())
        outside = [c for c in wanted if c in online and allowed and c not in allowed]
        if outside:
            add("cpus", f"CPU(s) {format_cpulist(outside)} are outside this process's cpuset "
                f"(allowed: {format_cpulist(allowed)})", "a cgroup/container limits the CPUs; they will be skipped",
                "warning")  # fmt: skip
    for key in ("nodes", "memory_nodes"):
        ids = getattr(profile, key) or ()
        for nid in ids:
            node = topology.node(nid)
            if node is None:
                add(key, f"NUMA node {nid} does not exist on this machine (nodes: {nodes_s})",
                    "check `numactl -H`; a one-node machine only has node 0")  # fmt: skip
            elif key == "nodes" and not node.cpus:
                add(key, f"NUMA node {nid} has no CPUs (memory-only: CXL/HBM)",
                    "list it in memory_nodes instead, to place memory there")  # fmt: skip
    if (
        profile.memory_policy == "preferred"
        and profile.memory_nodes
        and len(profile.memory_nodes) > 1
    ):
        add(
            "memory_nodes",
            'memory_policy "preferred" takes one node',
            'list a single node, or use "interleave"',
        )
    if profile.memory_policy == "default" and profile.memory_nodes:
        add("memory_nodes", "memory_nodes has no effect with memory_policy = \"default\"",
            "set memory_policy to \"interleave\", \"bind\" or \"preferred\"", "warning")  # fmt: skip
    plan = plan_launch(profile, topology)
    n_cpus = len(plan.cpus) if plan.cpus is not None else len(online)
    placement_errors = any(i.key in ("cpus", "nodes") and i.severity == "error" for i in issues)
    if plan.cpus is not None and not plan.cpus and not placement_errors:
        add("cpus" if profile.cpus else "nodes", "the CPU set is empty on this machine",
            "pick CPUs or nodes that exist (`rigtui probe`)")  # fmt: skip
    elif profile.threads is not None and n_cpus and profile.threads > n_cpus:
        add("threads", f"{profile.threads} threads on {n_cpus} CPU(s): oversubscribed, generation slows down",
            f"use at most {n_cpus}; one per physical core is usually fastest", "warning")  # fmt: skip
    repin = _numa_repin_problem(profile, plan, topology)
    if repin:
        add("numa", repin, 'use numa = "numactl": llama.cpp then gives its threads exactly this CPU '
            'set (memory_policy still places the pages), or leave cpus/nodes/physical_cores_only '
            'unset', "warning")  # fmt: skip
    if profile.numa == "mirror" and profile.engine != "llama-server":  # llama-server refuses it
        add("numa", 'numa = "mirror" does nothing in mainline llama.cpp: ggml keeps the name but '
            "does not copy the weights to each node (that is a fork's feature), so every node "
            "still reads one copy", 'for one instance over all nodes use numa = "distribute" with '
            'memory_policy = "interleave"; for a copy per node run one model per node '
            "(node0-isolate, node1-isolate)", "warning")  # fmt: skip
    if profile.numa == "numactl" and not (profile.cpus or profile.nodes):
        add("numa", "numa = \"numactl\" makes llama.cpp use the CPU set rigtui applies, but none is set",
            "set cpus or nodes, or use numa = \"distribute\"", "warning")  # fmt: skip
    n_gpus = len(topology.gpus)
    if profile.gpu_layers != 0 and n_gpus == 0 and not profile.rpc:  # RPC servers take layers too
        add("gpu_layers", f"gpu_layers = {profile.gpu_layers} but no GPU was found: every layer stays on the CPU",
            "set gpu_layers = 0, or check the driver (`nvidia-smi`)", "warning")  # fmt: skip
    if n_gpus and profile.main_gpu >= n_gpus:
        add("main_gpu", f"main_gpu = {profile.main_gpu} but this machine has {n_gpus} GPU(s)",
            f"use 0..{n_gpus - 1}")  # fmt: skip
    if n_gpus and profile.tensor_split and len(profile.tensor_split) > n_gpus:
        add(
            "tensor_split",
            f"{len(profile.tensor_split)} shares for {n_gpus} GPU(s)",
            "give one share per GPU",
        )
    issues.extend(check_model(profile, topology, where))
    return issues


def check_model(profile: Profile, topology: Topology | None, where: Where) -> list[ProfileIssue]:
    """The model file exists, is a complete GGUF, and fits in memory."""
    if profile.is_demo:
        return []
    file, line = where("model")
    path = profile.model

    def issue(message: str, hint: str | None, severity: str = "error") -> list[ProfileIssue]:
        return [ProfileIssue(file, line, "model", message, hint, severity)]

    if not os.path.exists(path):
        return issue(f"model file {path} does not exist",
                     "fix the path (relative paths are relative to the profile file), or use "
                     "model = \"demo:300M\" for the synthetic model")  # fmt: skip
    if not os.path.isfile(path):
        return issue(f"model {path} is not a file", "point model at the .gguf file itself "
                     "(for split models, the first part: *-00001-of-0000N.gguf)")  # fmt: skip
    try:
        facts = check_gguf(path)
    except GgufProblem as exc:
        return issue(str(exc), exc.hint)
    except OSError as exc:
        return issue(
            f"cannot read model {path}: {exc.strerror or exc}", "check the file's permissions"
        )
    if topology is None:
        return []
    gpu_bytes = sum(g.memory_total_bytes or 0 for g in topology.gpus)
    total = topology.memory.total_bytes
    avail = topology.host.mem_available_bytes
    if total and facts.file_bytes > total + gpu_bytes:
        return issue(f"model is {_gib(facts.file_bytes)}, more than this machine's RAM ({_gib(total)})"
                     + (f" plus GPU memory ({_gib(gpu_bytes)})" if gpu_bytes else ""),
                     "use a smaller quantization (e.g. Q4_K_M) or a machine with more memory")  # fmt: skip
    if avail and facts.file_bytes > avail and profile.gpu_layers == 0:
        return issue(f"model is {_gib(facts.file_bytes)} but only {_gib(avail)} is available: "
                     "pages will be evicted and reread from disk", "free memory or offload layers to a GPU",
                     "warning")  # fmt: skip
    return []


def check_serving(profile: Profile, where: Where) -> list[ProfileIssue]:
    """An endpoint reachable from other machines needs an API key (`api_key_env`)."""
    if profile.listen is None:
        return []
    host, _ = parse_listen(profile.listen)
    if is_loopback(host) or profile.api_key_env:
        return []
    file, line = where("listen")
    return [ProfileIssue(file, line, "listen", f"listen = {profile.listen!r} answers other machines, "
                         "but the profile names no API key",
                         'add api_key_env = "RIGTUI_API_KEY" and export RIGTUI_API_KEY=<a long '
                         'random string> (the key is never stored in the profile), or listen on '
                         '127.0.0.1')]  # fmt: skip


_FULL_KV = ("f32", "f16", "bf16")  # V cache types llama.cpp takes without flash attention


def check_engine_keys(profile: Profile, where: Where) -> list[ProfileIssue]:
    """Keys the chosen engine cannot honour are errors, not silent ignores."""
    from rigtui.model.profile import SERVER_ONLY_KEYS

    issues: list[ProfileIssue] = []
    if profile.engine == "llama-cpp-python":
        for key in SERVER_ONLY_KEYS:
            value = getattr(profile, key)
            if value not in ((), None):
                file, line = where(key)
                issues.append(ProfileIssue(file, line, key, f"{key} is a llama-server option: the "
                              "embedded llama-cpp-python engine (0.3.x) cannot honour it",
                              'set engine = "llama-server" (`rigtui engines` says whether it is '
                              f"installed), or remove {key}"))  # fmt: skip
    if profile.cache_type_v not in _FULL_KV and not profile.flash_attn:
        file, line = where("cache_type_v")
        issues.append(ProfileIssue(file, line, "cache_type_v", f"cache_type_v = "
                      f"{profile.cache_type_v!r} needs flash attention: llama.cpp refuses a "
                      "quantized V cache without it (\"quantized V cache requires flash_attn\")",
                      "set flash_attn = true, or cache_type_v = \"f16\""))  # fmt: skip
    if profile.prefault and profile.memory_policy == "default":
        file, line = where("prefault")
        issues.append(ProfileIssue(file, line, "prefault", "prefault with memory_policy = "
                      "\"default\" puts every page of the model on the node of the one thread "
                      "that reads it", 'set memory_policy = "interleave" (or "bind" with '
                      "memory_nodes), or remove prefault", severity="warning"))  # fmt: skip
    if profile.engine == "llama-server" and profile.numa == "mirror":
        file, line = where("numa")
        issues.append(ProfileIssue(file, line, "numa", 'llama-server has no numa = "mirror" '
                      "(it takes distribute, isolate or numactl)",
                      'use "distribute", "isolate", "numactl" or "disabled"'))  # fmt: skip
    return issues
