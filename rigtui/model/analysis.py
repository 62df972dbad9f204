"""Results of `rigtui.analysis`: sanity checks, the memory-bandwidth bench, GGUF facts and plans.

Every number a plan or bench reports carries its basis: "measured" (rigtui timed it on this
machine), "read" (taken from a file: the GGUF header, sysfs, SMBIOS) or "estimated" (a formula,
named in `detail`). No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CHECK_STATUSES = ("pass", "warn", "fail", "unknown")


def _ro(d: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(d or {}))


# -- checks ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """One value a check looked at: where it came from (a file relative to the root, or
    "llama_cpp.llama_print_system_info()") and what it said."""

    source: str
    value: str


@dataclass(frozen=True)
class Check:
    """One sanity check. `id` is stable (scripts key on it); `status` is one of CHECK_STATUSES."""

    id: str
    title: str  # short human name: "NUMA balancing"
    status: str
    summary: str  # what was found, one line
    evidence: tuple[Evidence, ...]
    why: str  # why it matters for inference, one line
    fix: str | None  # command or BIOS setting; for `unknown`, how to get the data


@dataclass(frozen=True)
class CheckContext:
    """Inputs of `run_checks` that do not come from the probed Topology, as plain values.

    The CLI fills it: engine facts come from `rigtui.engine.system_info()` (analysis may not
    import the engine), model facts from `--model` / the profile, page placement from
    `rigtui.analysis.context.model_page_placement` (live machine only).
    """

    live: bool = True  # the topology describes the running machine (no --root)
    engine_system_info: str | None = None  # llama_cpp.llama_print_system_info()
    engine_gpu_offload: bool | None = None  # llama_cpp.llama_supports_gpu_offload()
    engine_reason: str | None = None  # why the engine facts are None
    # llama-server as `rigtui engines --json` describes it (found, path, backends, build_flags,
    # buffer_types, reason); None: not asked
    server_build: Mapping[str, Any] | None = None
    model_path: str | None = None
    model_bytes: int | None = None  # file size of the model
    model_source: str | None = None  # "--model", "profile NAME"
    model_page_bytes_per_node: Mapping[int, int] | None = None  # resident page cache per node
    model_page_reason: str | None = None  # why placement is None
    profile_threads: int | None = None  # n_threads the profile asks for
    # what the profile runs, for the NUMA-mode verdict: the nodes it confines the model to
    # (None: every node), llama.cpp's strategy and the memory policy; None: no profile
    profile_nodes: tuple[int, ...] | None = None
    profile_numa: str | None = None
    profile_memory_policy: str | None = None
    psi_memory_some_avg10: float | None = None  # /proc/pressure/memory "some avg10"
    psi_memory_full_avg10: float | None = None
    is_root: bool | None = None  # effective uid 0 (perf and resctrl need it or caps)
    membench: MemBenchResult | None = None  # the cached `rigtui bench mem` of this machine


# -- memory bandwidth --------------------------------------------------------------------------
@dataclass(frozen=True)
class MemBandwidth:
    """Read and triad bandwidth of one run: threads on `cpu_nodes`, memory on `mem_nodes`."""

    label: str  # "node 0", "socket 0", "machine", "node 0 -> node 1"
    cpu_nodes: tuple[int, ...]
    mem_nodes: tuple[int, ...]
    threads: int
    bytes_per_thread: int
    read_gbs: float | None
    triad_gbs: float | None
    theoretical_gbs: float | None  # from the probe (channels x 8 B x MT/s), where known
    theoretical_basis: str | None  # "smbios: 12 channels x DDR5-4800 per socket / 4 nodes"
    placement_ok: bool | None = None  # move_pages confirmed the buffers sit on mem_nodes
    note: str | None = None
    # STREAM copy, a = b: the 1:1 read:write mix (read is 1:0, triad 2:1); 16 B per element
    copy_gbs: float | None = None

    __json_extra__ = ("read_pct", "triad_pct")

    @property
    def read_pct(self) -> float | None:
        if self.read_gbs is None or not self.theoretical_gbs:
            return None
        return 100.0 * self.read_gbs / self.theoretical_gbs

    @property
    def triad_pct(self) -> float | None:
        if self.triad_gbs is None or not self.theoretical_gbs:
            return None
        return 100.0 * self.triad_gbs / self.theoretical_gbs


@dataclass(frozen=True)
class LatencyCell:
    """Idle load-to-use latency from the CPUs of `cpu_node` to the memory of `mem_node`: one
    thread chasing pointers through a random cycle of the buffer's cache lines, so each load
    waits for the one before (MLC --latency_matrix's method)."""

    cpu_node: int
    mem_node: int
    cpu: int  # the CPU the chase ran on
    ns: float | None  # nanoseconds per load
    bytes: int  # the chain's buffer (well past the L3, so the loads go to DRAM)
    hops: int  # loads timed
    placement_ok: bool | None = None  # move_pages: the chain's pages sit on mem_node


@dataclass(frozen=True)
class MemBenchResult:
    """`rigtui bench mem`: per node, per socket, the local/remote read matrix, whole machine."""

    t: float  # unix time of the run
    kernel: str  # "c:cc -O3 -march=native" | "numpy"
    fingerprint: Mapping[str, Any]  # Topology.fingerprint() of the machine measured
    nodes: tuple[MemBandwidth, ...]  # threads and memory on the same node
    sockets: tuple[MemBandwidth, ...]  # every node of a socket at once, each local
    matrix: tuple[MemBandwidth, ...]  # read only: cpu node x memory node
    machine: MemBandwidth | None
    notes: tuple[str, ...] = ()  # memory-only nodes, nodes without memory, ...
    seconds: float | None = None  # how long the bench took
    # every CPU node's threads, each with its memory interleaved over the CPU nodes: what one
    # model with memory_policy = "interleave" reads at (None: one node, or an old cache)
    interleaved: MemBandwidth | None = None
    # every node's threads reading a node of another socket, all at once: the socket link
    cross_socket: MemBandwidth | None = None
    # idle latency, cpu node x memory node (the diagonal included); () when not measured
    latency: tuple[LatencyCell, ...] = ()
    latency_note: str | None = None  # why there is no latency matrix, or how it was measured

    def node(self, node_id: int) -> MemBandwidth | None:
        return next((b for b in self.nodes if b.cpu_nodes == (node_id,)), None)

    def cell(self, cpu_node: int, mem_node: int) -> MemBandwidth | None:
        return next(
            (b for b in self.matrix if b.cpu_nodes == (cpu_node,) and b.mem_nodes == (mem_node,)),
            None,
        )

    def runs(self) -> list[MemBandwidth]:
        """Every bandwidth run but the matrix cells, in the order shown: nodes, sockets, the
        machine, interleaved, cross-socket."""
        extra = (self.machine, self.interleaved, self.cross_socket)
        return [*self.nodes, *self.sockets, *(b for b in extra if b is not None)]

    def read_cell(self, cpu_node: int, mem_node: int) -> MemBandwidth | None:
        """The matrix cell, or on the diagonal the node's own local run."""
        cell = self.cell(cpu_node, mem_node)
        if cell is None:
            own = self.node(cpu_node)
            cell = own if own is not None and own.mem_nodes == (mem_node,) else None
        return cell

    def latency_ns(self, cpu_node: int, mem_node: int) -> float | None:
        return next((c.ns for c in self.latency
                     if c.cpu_node == cpu_node and c.mem_node == mem_node), None)  # fmt: skip


# -- GGUF facts and plans ----------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """A number with its basis: "measured" | "read" | "estimated", and how it was had."""

    value: float | int | None
    basis: str
    detail: str
    unit: str | None = None


@dataclass(frozen=True)
class TensorTypeShare:
    """One ggml type in a model's quantization mix."""

    type: str  # "Q4_K", "F16", ...
    tensors: int
    params: int
    bytes: int


@dataclass(frozen=True)
class GgufFacts:
    """What a GGUF header says about a model (`rigtui.analysis.gguf_facts.read_gguf_facts`)."""

    path: str
    file_bytes: int
    version: int
    architecture: str | None
    name: str | None
    file_type: str | None  # general.file_type as a name ("MOSTLY_Q4_K_M"), if present
    n_tensors: int
    n_params: int  # exact: sum of every tensor's element count
    weights_bytes: int  # sum of tensor data sizes
    quant_mix: tuple[TensorTypeShare, ...]  # by bytes, largest first
    n_layers: int | None
    n_embd: int | None
    n_ff: int | None
    n_head: int | None
    n_head_kv: int | None  # max over layers when the model lists one per layer
    n_head_kv_per_layer: tuple[int, ...]  # one per layer (0 for layers without attention)
    head_dim_k: int | None
    head_dim_v: int | None
    n_ctx_train: int | None
    n_vocab: int | None
    n_experts: int | None
    n_experts_used: int | None
    expert_bytes: int  # bytes of routed-expert tensors (*_exps), all experts
    token_embd_bytes: int  # the embedding table (one row read per token)
    output_tied: bool  # no output.weight: the embedding table doubles as the output matrix
    layer_bytes: tuple[int, ...]  # bytes of blk.N.* per layer
    non_layer_bytes: int  # token_embd, output, output_norm, ...
    output_bytes: int  # output.weight + output_norm (llama.cpp offloads it first: -ngl 1)
    # (name, bytes) of every tensor, in file order (not in --json: thousands in a big model)
    tensors: tuple[tuple[str, int], ...] = field(default=(), metadata={"json": False})


@dataclass(frozen=True)
class NodeFit:
    """Whether the model fits one NUMA node's memory (or all nodes, interleaved)."""

    target: str  # "node 0", "all nodes (interleave)"
    capacity_bytes: int | None
    free_bytes: int | None
    needed_bytes: int
    fits: bool | None  # in capacity; None when capacity unknown
    fits_free: bool | None  # in what is free now


@dataclass(frozen=True)
class GpuFit:
    """Bytes a GPU would hold for a given n_gpu_layers / tensor split."""

    gpu: int
    name: str | None
    vram_bytes: int | None
    free_bytes: int | None  # vram minus the CUDA context reserve (estimated)
    layers: int  # layers placed on this GPU
    needed_bytes: int
    fits: bool | None


@dataclass(frozen=True)
class LlamaFitDevice:
    """What llama.cpp's own estimate (`llama-fit-params --fit-print on`) puts on one device;
    "Host" is system memory. Whole MiB, as it prints them."""

    name: str  # "CUDA0", "Host"
    model_bytes: int
    context_bytes: int  # the KV cache (and recurrent state)
    compute_bytes: int


@dataclass(frozen=True)
class LlamaFit:
    """llama.cpp's own sizing of a plan's arguments, beside rigtui's."""

    binary: str
    devices: tuple[LlamaFitDevice, ...]
    fitted: str | None  # the arguments its fit chose for the GPUs ("-c 4096 -ngl 99 -ot ...")
    reason: str | None = None  # why there is no estimate
    fit_reason: str | None = None  # why there are no fitted arguments (asked for)


@dataclass(frozen=True)
class Placement:
    """One way to place a model on this machine's CPU and GPUs (`rigtui plan`'s placements):
    CPU only, full offload, MoE hybrid (routed experts in RAM, the rest on the GPUs) or a
    partial offload of whole layers; with its fit, its generation ceiling, the llama-server
    flags that give it and the same as profile keys."""

    kind: str  # "cpu" | "full" | "moe-hybrid" | "partial"
    title: str  # "MoE hybrid: experts of layers 0-11 in RAM"
    gpu_layers: int  # -1: all
    n_cpu_moe: int | None
    override_tensors: tuple[str, ...]
    fits: bool | None  # every GPU and the CPU side fit (None: a size is unknown)
    gpu_bytes: int
    cpu_bytes: int
    tg_tok_s: Figure
    flags: tuple[str, ...]  # llama-server argv for it
    profile: Mapping[str, Any]  # profile TOML keys for it
    suggested: bool = False
    why: str = ""  # why it is (not) the suggestion
    # prompt processing: with GPUs llama.cpp runs big batches there and streams the weights
    # kept in RAM over PCIe once per ubatch (None: CPU only, see the plan's prompt ceiling)
    pp_tok_s: Figure | None = None


@dataclass(frozen=True)
class Plan:
    """`rigtui plan MODEL.gguf`: what a model needs, where it fits, how fast it can possibly go."""

    model: GgufFacts
    n_ctx: int
    kv_type_k: str
    kv_type_v: str
    n_gpu_layers: int
    params: Figure
    weights_bytes: Figure
    kv_cache_bytes: Figure
    compute_buffer_bytes: Figure
    active_weights_bytes: Figure
    bytes_per_token: Figure
    bandwidth_gbs: Figure
    predicted_tg_tok_s: Figure
    predicted_pp_tok_s: Figure
    fit: Mapping[str, Any]  # {"nodes": [NodeFit], "gpus": [GpuFit], "max_n_gpu_layers": Figure}
    suggested_profile: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    profile: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_ro)
    # override_tensors / n_cpu_moe: what each pattern took (rigtui.analysis.tensor_overrides)
    tensor_overrides: tuple[Any, ...] = ()
    # the hardware guide's use cases at these ceilings (rigtui.analysis.use_cases)
    use_cases: tuple[Any, ...] = ()
    # CPU only / full offload / MoE hybrid / partial, one suggested (rigtui.analysis.placements)
    placements: tuple[Placement, ...] = ()
    # llama.cpp's own estimate for the same arguments (llama-fit-params), and where the two
    # differ; None: not asked or no binary (rigtui.analysis.llama_fit_compare)
    llama_fit: LlamaFit | None = None
    llama_fit_notes: tuple[str, ...] = ()
