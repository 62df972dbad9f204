"""Launch profiles: what to run and where (one TOML file each, see `rigtui.profiles`).

`Profile` is the validated, resolved form (after `extends`), with the TOML key for each field
given in `PROFILE_KEYS`. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

ENGINES = ("llama-cpp-python", "llama-server")
# keys only llama.cpp's own llama-server honours (llama-cpp-python 0.3.x has no tensor overrides)
SERVER_ONLY_KEYS = ("override_tensors", "n_cpu_moe", "rpc", "extra_args", "binary")
NUMA_STRATEGIES = ("disabled", "distribute", "isolate", "numactl", "mirror")
MEMORY_POLICIES = ("default", "interleave", "bind", "preferred")
SPLIT_MODES = ("none", "layer", "row")
# ggml type names llama.cpp accepts for the KV cache (-ctk/-ctv)
KV_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
DEMO_PREFIX = "demo:"  # model = "demo:300M" -> the synthetic model, generated on first use

DEFAULT_LISTEN = "127.0.0.1:8080"  # where `rigtui serve` answers unless told otherwise
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """ "300M" -> 300_000_000, "1G" -> 1e9, "1.5G", "8000000" (decimal units, like disk sizes)."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"size {text!r}: write a number with an optional K, M, G or T suffix")
    scale = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def parse_listen(text: str) -> tuple[str, int]:
    """ "127.0.0.1:8080" -> ("127.0.0.1", 8080); "[::1]:8080", ":8080" (loopback), "8080".
    Port 0 means any free port. Raises ValueError with what to write instead."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"listen {text!r}: write [IPv6]:PORT, e.g. [::1]:8080")
    elif text.count(":") == 1 or text.isdigit():
        host, _, port = text.rpartition(":")
    else:
        raise ValueError(f"listen {text!r}: write HOST:PORT, e.g. 127.0.0.1:8080")
    host = host or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen {text!r}: the port must be a number from 0 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ProfileIssue:
    """One problem in a profile file: where it is, what is wrong, what to do."""

    file: str
    line: int | None
    key: str | None
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" (refuses to launch) | "warning"

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        key = f" {self.key}:" if self.key else ""
        text = f"{where}:{key} {self.severity}: {self.message}"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class ProfileRef:
    name: str
    path: str
    origin: str  # "user" | "example"


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 128


@dataclass(frozen=True)
class Profile:
    """A resolved launch profile. `None` means "llama.cpp's default" / "not restricted"."""

    name: str
    path: str | None
    model: str  # a path (absolute after loading) or "demo:SIZE"
    engine: str = "llama-cpp-python"
    description: str | None = None
    extends: str | None = None
    ctx: int = 2048
    batch: int = 512
    ubatch: int = 512
    threads: int | None = None  # None: one per CPU of the resolved CPU set (physical cores)
    batch_threads: int | None = None
    cpus: str | None = None  # cpulist, "0-47,96-143"
    nodes: tuple[int, ...] | None = None  # run on the CPUs of these NUMA nodes
    physical_cores_only: bool = False
    numa: str = "disabled"  # llama.cpp's strategy
    memory_policy: str = "default"
    memory_nodes: tuple[int, ...] | None = None  # nodes of the policy; default: `nodes` or all
    drop_caches_first: bool = False
    # read the whole model file under the memory policy before the load: a cold model (MoE
    # experts above all) is placed by the policy at once instead of faulted in over the first
    # requests by whichever thread touches a page first (llama.cpp skips its own prefetch in
    # its NUMA modes)
    prefault: bool = False
    gpu_layers: int = 0  # -1: all
    split_mode: str = "layer"
    main_gpu: int = 0
    tensor_split: tuple[float, ...] | None = None
    offload_kqv: bool = True
    cuda_visible_devices: str | None = None
    flash_attn: bool = False
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    mmap: bool = True
    mlock: bool = False
    seed: int = -1
    listen: str | None = None  # HOST:PORT of the OpenAI-compatible endpoint (DEFAULT_LISTEN)
    api_key_env: str | None = None  # the environment variable holding the endpoint's API key
    # llama-server only (SERVER_ONLY_KEYS)
    override_tensors: tuple[str, ...] = ()  # -ot "PATTERN=BUFFER_TYPE" each
    n_cpu_moe: int | None = None  # --n-cpu-moe N
    rpc: tuple[str, ...] = ()  # --rpc host:port,...
    extra_args: tuple[str, ...] = ()  # appended to the argv as given
    binary: str | None = None  # the llama-server executable (default: PATH, then rigtui's build)
    sampling: Sampling = field(default_factory=Sampling)
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_demo(self) -> bool:
        return self.model.startswith(DEMO_PREFIX)

    @property
    def demo_size(self) -> str | None:
        return parse_demo_spec(self.model)[0] if self.is_demo else None

    @property
    def demo_experts(self) -> int:
        return parse_demo_spec(self.model)[1] if self.is_demo else 0


def parse_demo_spec(model: str) -> tuple[str, int]:
    """ "demo:300M" -> ("300M", 0); "demo:8M-moe4" -> ("8M", 4) (a 4-expert MoE demo model).
    Raises ValueError with what to write instead."""
    spec = model[len(DEMO_PREFIX) :] if model.startswith(DEMO_PREFIX) else model
    size, sep, moe = spec.partition("-moe")
    if sep and not moe.isdigit():
        raise ValueError(f"demo model {model!r}: write demo:SIZE-moeN, e.g. demo:8M-moe4")
    parse_size(size)  # raises on a bad size
    return size, int(moe) if sep else 0


def _field_types() -> dict[str, Any]:
    return {
        "engine": str,
        "description": str,
        "extends": str,
        "model": str,
        "ctx": int,
        "batch": int,
        "ubatch": int,
        "threads": int,
        "batch_threads": int,
        "cpus": str,
        "nodes": list,
        "physical_cores_only": bool,
        "numa": str,
        "memory_policy": str,
        "memory_nodes": list,
        "drop_caches_first": bool,
        "prefault": bool,
        "gpu_layers": int,
        "split_mode": str,
        "main_gpu": int,
        "tensor_split": list,
        "offload_kqv": bool,
        "cuda_visible_devices": str,
        "flash_attn": bool,
        "cache_type_k": str,
        "cache_type_v": str,
        "mmap": bool,
        "mlock": bool,
        "seed": int,
        "listen": str,
        "api_key_env": str,
        "override_tensors": list,
        "n_cpu_moe": int,
        "rpc": list,
        "extra_args": list,
        "binary": str,
        "sampling": dict,
        "env": dict,
    }


# TOML key -> expected Python type (after tomllib), for the validator and the docs.
PROFILE_KEYS: dict[str, Any] = _field_types()
SAMPLING_KEYS: dict[str, Any] = {
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "repeat_penalty": float,
    "max_tokens": int,
}


@dataclass(frozen=True)
class LaunchPlan:
    """What the engine worker applies, resolved from a Profile and the machine's Topology."""

    cpus: tuple[int, ...] | None  # CPU affinity; None: leave as inherited
    threads: int
    batch_threads: int
    memory_policy: str
    memory_nodes: tuple[int, ...]
    numa: str
    notes: tuple[str, ...] = ()  # how defaults were chosen, for `rigtui profiles show`
