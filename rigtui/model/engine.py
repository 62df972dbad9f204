"""Engine events (the NDJSON stream from the worker child) and the engine's running stats.

The worker writes one JSON object per line, `{"event": KIND, "t": unix_time, ...fields}`;
`event_from_json` turns such a dict back into one of the frozen classes below. Every event
carries `instance` (which launched engine it came from: several run at once).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any


class EngineState(str, enum.Enum):  # noqa: UP042 - str() stays "EngineState.X" as before
    IDLE = "idle"  # nothing launched
    STARTING = "starting"  # child spawned, applying affinity/policy
    LOADING = "loading"  # model loading
    READY = "ready"  # loaded, waiting for a prompt
    GENERATING = "generating"
    STOPPING = "stopping"
    EXITED = "exited"  # stopped normally
    FAILED = "failed"  # crashed, killed, failed to load


@dataclass(frozen=True)
class EngineEvent:
    instance: str
    t: float


@dataclass(frozen=True)
class Starting(EngineEvent):
    pid: int
    profile: str
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyApplied(EngineEvent):
    """What the child did before importing llama_cpp."""

    cpus: tuple[int, ...]  # affinity set
    memory_policy: str  # "default" | "interleave" | "bind" | "preferred"
    policy_nodes: tuple[int, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadProgress(EngineEvent):
    progress: float  # 0..1


@dataclass(frozen=True)
class Loaded(EngineEvent):
    load_s: float
    model_path: str
    model_bytes: int
    n_params: int | None
    n_ctx: int
    n_threads: int
    n_gpu_layers: int
    gpu_offload_supported: bool | None = None
    system_info: str | None = None


@dataclass(frozen=True)
class Placement(EngineEvent):
    """Where the engine actually runs and where the model's pages sit (after load)."""

    pid: int
    cpus_allowed: tuple[int, ...]  # /proc/PID/status Cpus_allowed_list
    mems_allowed: tuple[int, ...]
    model_file_bytes_per_node: Mapping[int, int]  # resident pages of the model file mapping
    anon_bytes_per_node: Mapping[int, int]
    model_path: str | None = None
    # Union of Cpus_allowed_list over /proc/PID/task/*/status but the main thread's: llama.cpp's
    # numa strategies re-pin its compute threads (distribute/isolate: to whole nodes) and widen
    # the main thread after each graph, so the process's own list is not the whole story.
    thread_cpus_allowed: tuple[int, ...] = ()
    # what did not happen as the profile asked, with the likely cause and the fix
    warnings: tuple[str, ...] = ()
    fs_type: str | None = None  # the model file's file system (tmpfs places pages at write)
    # llama.cpp's own account of where the weights went: buffer type -> bytes ("CPU_Mapped",
    # "CUDA0", "RPC0[host:port]"), from its load log (-ot / --n-cpu-moe / offload show here)
    model_buffers: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # the model file's bytes in the page cache (mincore), mapped by this process or not: what
    # a cold model has read in so far (None: not mmapped, or the file could not be read)
    model_cached_bytes: int | None = None


@dataclass(frozen=True)
class PromptDone(EngineEvent):
    n_tokens: int
    seconds: float
    # the tokens it may generate, once the context is shared with the prompt (None: not said)
    max_tokens: int | None = None
    asked_tokens: int | None = None  # what the request asked for, when that was more


@dataclass(frozen=True)
class Token(EngineEvent):
    text: str
    index: int  # 0-based index of the generated token


@dataclass(frozen=True)
class Text(EngineEvent):
    """A piece of a reply as a client of the endpoint received it (rigtui's own chat box).
    Not folded into the stats: the engine reports the request's speeds itself."""

    seq: int
    text: str
    final: bool = False  # the reply is over
    stop_reason: str | None = None  # with final: "stop" | "length" | "cancelled" | "error"


@dataclass(frozen=True)
class Done(EngineEvent):
    n_prompt: int
    n_gen: int
    prompt_s: float
    gen_s: float
    prompt_tok_s: float | None
    gen_tok_s: float | None
    ttft_s: float | None
    stop_reason: str  # "length" | "stop" | "cancelled" | "served" (llama-server: not told)


def key_hint(source: str | None) -> str:
    """Where a client finds an endpoint's API key, from `Serving.key` ("env:NAME", "file:PATH",
    "none"), for the `serving ...` line and the engine panel. Never shows the key."""
    kind, _, where = (source or "none").partition(":")
    if kind == "env":
        return f"API key: the value of ${where}"
    if kind == "file":
        home = os.path.expanduser("~")
        shown = "~" + where[len(home):] if home != "/" and where.startswith(home + "/") else where
        return f"API key: in {shown} (send Authorization: Bearer KEY)"
    return "no API key: every user of this machine can use it"


@dataclass(frozen=True)
class Serving(EngineEvent):
    """The engine answers the OpenAI-compatible API at `url` (".../v1")."""

    url: str
    host: str
    port: int
    model: str  # the name /v1/models lists (the profile's name)
    auth: bool = False  # requests need `Authorization: Bearer KEY`
    server: str = ""  # "llama_cpp.server" | "llama-server"
    key: str = "none"  # where the key is: "env:NAME", "file:PATH", "none" (never the key itself)


@dataclass(frozen=True)
class Requests(EngineEvent):
    """API requests being answered now (streaming ones until their last chunk) and since start."""

    in_flight: int
    total: int


@dataclass(frozen=True)
class Progress(EngineEvent):
    """A served generation under way (coalesced: a few a second, not one per token)."""

    n_gen: int
    seconds: float  # since the first token


@dataclass(frozen=True)
class Slots(EngineEvent):
    """llama-server's slots (parallel sequences) and the KV cache they hold, from /slots."""

    n_slots: int
    busy: int
    kv_used_tokens: int  # prompt + generated tokens of the busy slots
    kv_ctx_tokens: int  # context of a slot (the KV cache each may fill)


@dataclass(frozen=True)
class BenchResult(EngineEvent):
    """One llama-bench style test run by the worker: "pp" (prompt of n_prompt tokens in
    batches) or "tg" (n_gen tokens one at a time); seconds of each timed repetition."""

    test: str  # "pp" | "tg"
    n_prompt: int
    n_gen: int
    n_threads: int
    samples_s: tuple[float, ...]
    n_depth: int = 0  # tokens already in the context before the test (llama-bench's -d)
    energy_j: float | None = None  # RAPL joules over the timed repetitions (None: not metered)
    energy: str = ""  # what the joules are, or why there are none


@dataclass(frozen=True)
class Error(EngineEvent):
    message: str
    kind: str = "error"  # "load" | "prompt" | "policy" | "serve" | "bad-request" | "error"
    hint: str | None = None


@dataclass(frozen=True)
class Log(EngineEvent):
    line: str  # a line of llama.cpp's own stderr


@dataclass(frozen=True)
class Exit(EngineEvent):
    code: int | None
    signal: int | None
    reason: str  # human: "exited normally", "killed by SIGKILL (OOM killer?)", ...
    stderr_tail: tuple[str, ...] = ()


EVENT_TYPES: dict[str, type[EngineEvent]] = {
    "starting": Starting,
    "policy": PolicyApplied,
    "load_progress": LoadProgress,
    "loaded": Loaded,
    "placement": Placement,
    "prompt_done": PromptDone,
    "token": Token,
    "done": Done,
    "text": Text,
    "serving": Serving,
    "requests": Requests,
    "progress": Progress,
    "slots": Slots,
    "bench": BenchResult,
    "error": Error,
    "log": Log,
    "exit": Exit,
}
EVENT_NAMES: dict[type[EngineEvent], str] = {v: k for k, v in EVENT_TYPES.items()}


def event_to_json(ev: EngineEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"event": EVENT_NAMES[type(ev)]}
    for f in fields(ev):
        v = getattr(ev, f.name)
        if isinstance(v, Mapping):
            v = {str(k): x for k, x in v.items()}
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def event_from_json(obj: Mapping[str, Any]) -> EngineEvent:
    """Inverse of `event_to_json`. Raises ValueError on an unknown kind or missing fields."""
    kind = obj.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown engine event {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in obj:
            continue
        v = obj[f.name]
        if f.name.endswith("_per_node") and isinstance(v, Mapping):
            v = MappingProxyType({int(k): int(x) for k, x in v.items()})
        elif isinstance(v, Mapping):
            v = MappingProxyType(dict(v))
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of one engine instance, folded from its events (for telemetry and the UI)."""

    instance: str
    profile: str | None
    state: EngineState
    pid: int | None = None
    load_progress: float | None = None
    prompt_tok_s: float | None = None  # last request
    gen_tok_s: float | None = None  # last request, or live during generation
    ttft_s: float | None = None
    n_prompt: int = 0
    n_gen: int = 0  # tokens of the current/last request
    total_gen: int = 0  # tokens since launch
    model_path: str | None = None
    model_bytes: int | None = None
    placement: Placement | None = None
    cpus: tuple[int, ...] = ()  # where it computes: its pinning, then its threads' (placement)
    last_error: str | None = None
    exit: Exit | None = None
    url: str | None = None  # the OpenAI-compatible endpoint, once it answers
    requests_in_flight: int = 0
    requests_total: int = 0
    server: str | None = None  # what answers at `url`: "llama_cpp.server" | "llama-server"
    key: str | None = None  # where the endpoint's API key is (Serving.key), once it answers
    slots: Slots | None = None  # llama-server only
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class EngineSystemInfo:
    """What the installed llama-cpp-python was built with (`rigtui check` uses it)."""

    available: bool
    version: str | None = None
    system_info: str | None = None  # llama_print_system_info(): "CPU : AVX2 = 1 | ..."
    gpu_offload: bool | None = (
        None  # llama_supports_gpu_offload(): built with CUDA/ROCm/Metal/Vulkan
    )
    mmap: bool | None = None
    mlock: bool | None = None
    reason: str | None = None  # why not available
