"""llama.cpp's own `llama-server` (and `rpc-server`): where the binary is, what it was built
with, and the argv a profile maps to.

Where the binary comes from, first found wins: the profile's `binary`, `llama-server` on PATH,
then rigtui's own build (`rigtui engines build`, under the user cache dir). What it was built
with is asked of the binary itself: `--version` (version, commit, compiler), an `-ot` entry with
a buffer type no build has (llama.cpp answers "Available buffer types:" and the list, then
exits), and `--help` (whether it takes `--rpc`). rigtui's own build also leaves a manifest of
its cmake flags. No shell string anywhere: argv lists only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rigtui.model.profile import LaunchPlan, Profile

SERVER_NAME = "llama-server"
RPC_NAME = "rpc-server"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"  # the binding whose vendored llama.cpp `engines build` compiles
_PROBE_BUFT = "rigtui-no-such-buffer-type"
_INFO_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Found:
    """Where a binary was looked for and found (path) or not (reason, hint)."""

    name: str
    path: str | None
    source: str  # "profile" | "PATH" | "rigtui build" | "not found"
    reason: str | None = None
    hint: str | None = None


_BUILD_HINT = ("build it: `rigtui engines build` (compiles llama.cpp's llama-server and "
               "rpc-server into the user cache dir, ~30 min on 2 cores), or set binary = "
               '"/path/to/llama-server" in the profile')  # fmt: skip


def find_binary(name: str = SERVER_NAME, configured: str | None = None) -> Found:
    """The `name` executable: `configured` (the profile's `binary`), PATH, rigtui's build."""
    if configured:
        path = os.path.expandvars(os.path.expanduser(configured))
        if not os.path.exists(path):
            return Found(name, None, "not found", f"binary = {configured!r} does not exist",
                         "fix the path in the profile, or remove `binary` to use PATH / "
                         "rigtui's own build")  # fmt: skip
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            return Found(name, None, "not found", f"binary = {configured!r} is not an executable file",
                         f"chmod +x {path}, or point binary at llama.cpp's build/bin/{name}")  # fmt: skip
        return Found(name, os.path.abspath(path), "profile")
    on_path = shutil.which(name) or (shutil.which("ggml-rpc-server") if name == RPC_NAME else None)
    if on_path:
        return Found(name, on_path, "PATH")
    from rigtui.engine.server_build import built_binary, variant_dir

    own = built_binary(name)
    if own is not None:
        return Found(name, str(own), "rigtui build")
    return Found(name, None, "not found", f"no {name} on PATH and no rigtui build in "
                 f"{variant_dir()}/bin", _BUILD_HINT)  # fmt: skip


@dataclass(frozen=True)
class BinaryInfo:
    """What a llama-server binary says about itself."""

    path: str
    ok: bool  # it answered like a llama-server
    version: str | None = None  # llama.cpp build number, "6123"
    commit: str | None = None
    compiler: str | None = None  # "GNU 12.2.0 for Linux x86_64"
    buffer_types: tuple[str, ...] = ()  # what -ot accepts: "CPU", "CUDA0", ...
    rpc: bool | None = None  # takes --rpc (built with GGML_RPC)
    flags: frozenset[str] = frozenset()  # the options `--help` lists
    build_flags: dict[str, str] = field(default_factory=dict)  # rigtui's own build: cmake -D flags
    reason: str | None = None  # why not ok

    @property
    def backends(self) -> tuple[str, ...]:
        """Compute backends from the buffer type names: "CPU", "CUDA", "Vulkan", "RPC"..."""
        names = {re.sub(r"\d+$", "", b.split("[")[0].split("_")[0]) for b in self.buffer_types}
        return tuple(sorted(names, key=lambda n: (n != "CPU", n)))


def parse_version(text: str) -> tuple[str | None, str | None, str | None]:
    """(version, commit, compiler) from `llama-server --version`: upstream prints
    "version: 6123 (0c1e570)", a build from a tree without git (an sdist) "version: 0.5.0-dev
    (build 0, commit unknown)"; then "built with GNU 12.2.0 for Linux x86_64"."""
    m = re.search(r"^version:\s*(\S+)\s*\(([^)]*)\)", text, re.MULTILINE)
    c = re.search(r"^built with\s+(.+?)\s*$", text, re.MULTILINE)
    commit = None
    if m:
        inner = m.group(2)
        hexes = re.findall(r"\b[0-9a-f]{7,40}\b", inner)
        commit = hexes[-1] if hexes else None
    return (m.group(1) if m else None, commit, c.group(1) if c else None)


def parse_buffer_types(text: str) -> tuple[str, ...]:
    """The names under "Available buffer types:" (llama.cpp prints them for an unknown -ot)."""
    out: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Available buffer types:":
            for item in lines[i + 1 :]:
                if not item.startswith("  ") or not item.strip():
                    break
                out.append(item.strip())
            break
    return tuple(out)


def _run(argv: list[str]) -> tuple[int | None, str]:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=_INFO_TIMEOUT_S,
                             check=False, stdin=subprocess.DEVNULL, errors="replace")  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return out.returncode, (out.stdout or "") + (out.stderr or "")


_INFO_CACHE: dict[tuple[str, int, int], BinaryInfo] = {}


def binary_info(path: str) -> BinaryInfo:
    """Ask the binary (three short runs, cached per path and mtime). Never raises."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return BinaryInfo(path, False, reason=f"cannot stat {path}: {exc.strerror}")
    key = (path, st.st_mtime_ns, st.st_size)
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    code, text = _run([path, "--version"])
    version, commit, compiler = parse_version(text)
    if code is None or version is None:
        why = text.strip().splitlines()[-1:] if text.strip() else ["no output"]
        info = BinaryInfo(path, False, reason=f"{path} is not a llama-server: `--version` gave "
                          f"{'exit ' + str(code) if code is not None else 'no answer'} ({why[0][:160]})")  # fmt: skip
    else:
        _, bt_text = _run([path, "-ot", f"rigtui-probe={_PROBE_BUFT}", "--version"])
        _, help_text = _run([path, "--help"])
        info = BinaryInfo(path, True, version, commit, compiler, parse_buffer_types(bt_text),
                          rpc="--rpc" in help_text if help_text else None,
                          flags=frozenset(re.findall(r"(?<![\w-])--?[a-z][\w-]*", help_text)),
                          build_flags=_manifest_flags(path))  # fmt: skip
    _INFO_CACHE[key] = info
    return info


def _manifest_flags(path: str) -> dict[str, str]:
    manifest = Path(path).resolve().parent.parent / "rigtui-build.json"
    try:
        data = json.loads(manifest.read_text())
        return {str(k): str(v) for k, v in data.get("cmake_flags", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def unknown_buffer_types(overrides: tuple[str, ...], info: BinaryInfo) -> list[tuple[str, str]]:
    """(entry, buffer type) of each -ot entry whose buffer type this binary does not list."""
    if not info.buffer_types:
        return []  # could not ask: llama-server itself will refuse it at launch
    out = []
    for entry in overrides:
        buft = entry.rpartition("=")[2]
        if buft not in info.buffer_types:
            out.append((entry, buft))
    return out


def _llama_numa(plan: LaunchPlan) -> str | None:
    """--numa for llama-server (see worker.llama_numa: with rigtui's own pinning, "numactl"
    would only add ggml's widening of the main thread, so it is left off)."""
    if plan.numa == "disabled" or (plan.numa == "numactl" and plan.cpus):
        return None
    return plan.numa


def server_argv(binary: str, profile: Profile, plan: LaunchPlan, model_path: str, host: str,
                port: int, flags: frozenset[str] | None = None) -> list[str]:  # fmt: skip
    """The llama-server command line for a profile (pure). The API key is not here: it goes in
    the child's environment (LLAMA_API_KEY), since /proc/PID/cmdline is readable by anyone.
    `flags` (what the binary's --help lists) drops rigtui's optional extras a build lacks."""
    p, s = profile, profile.sampling
    argv = [binary, "--model", model_path, "--host", host, "--port", str(port), "--alias", p.name,
            "--threads", str(plan.threads), "--threads-batch", str(plan.batch_threads),
            "--ctx-size", str(p.ctx), "--batch-size", str(p.batch), "--ubatch-size", str(p.ubatch),
            "--n-gpu-layers", "all" if p.gpu_layers < 0 else str(p.gpu_layers),
            "--split-mode", p.split_mode, "--main-gpu", str(p.main_gpu),
            "--flash-attn", "on" if p.flash_attn else "off",
            "--cache-type-k", p.cache_type_k, "--cache-type-v", p.cache_type_v]  # fmt: skip
    if p.tensor_split:
        argv += ["--tensor-split", ",".join(f"{x:g}" for x in p.tensor_split)]
    if not p.offload_kqv:
        argv.append("--no-kv-offload")
    if not p.mmap:
        argv.append("--no-mmap")
    if p.mlock:
        argv.append("--mlock")
    if p.seed >= 0:
        argv += ["--seed", str(p.seed)]
    numa = _llama_numa(plan)
    if numa:
        argv += ["--numa", numa]
    argv += ["--temp", f"{s.temperature:g}", "--top-k", str(s.top_k), "--top-p", f"{s.top_p:g}",
             "--min-p", f"{s.min_p:g}", "--repeat-penalty", f"{s.repeat_penalty:g}",
             "--n-predict", str(s.max_tokens)]  # fmt: skip
    for entry in p.override_tensors:
        argv += ["--override-tensor", entry]
    if p.n_cpu_moe is not None:
        argv += ["--n-cpu-moe", str(p.n_cpu_moe)]
    if p.rpc:
        argv += ["--rpc", ",".join(p.rpc)]
    argv += ["--metrics", "--slots"]  # the monitor reads both
    if flags is None or "--log-verbosity" in flags:
        # level 4 adds the load's "model buffer size" lines (where the weights went) and a few
        # lines per request; nothing per token
        argv += ["--log-verbosity", "4"]
    argv += list(p.extra_args)
    return argv


def rpc_server_argv(binary: str, host: str, port: int, threads: int | None = None,
                    cache: bool = False) -> list[str]:  # fmt: skip
    argv = [binary, "--host", host, "--port", str(port)]
    if threads:
        argv += ["--threads", str(threads)]
    if cache:
        argv.append("--cache")
    return argv


# llama-server's last words, and what they mean for the user
_EXIT_CAUSES: tuple[tuple[str, str, str], ...] = (
    (r"couldn't bind HTTP server socket|address already in use", "the port is in use",
     "another server holds it (`ss -ltnp` shows who): pick another with --listen HOST:PORT"),
    (r"unknown buffer type", "an override_tensors buffer type this llama-server does not have",
     "`rigtui engines` lists the buffer types of the binary (CPU, CUDA0, ...)"),
    (r"error: invalid argument: (\S+)|unknown argument: (\S+)", "llama-server refused an argument",
     "check extra_args against `llama-server --help` of this binary"),
    (r"failed to load model|error loading model|llama_model_load: error", "failed to load the model",
     "see the log lines above; check the file with `rigtui profiles check`"),
    (r"failed to connect to rpc|Failed to connect to", "an RPC server did not answer",
     "start it first: `rigtui rpc-server --node N --listen HOST:PORT`"),
)


_BUFFER_RE = re.compile(r"load_tensors:\s+(\S+) model buffer size =\s*([\d.]+) MiB")


def model_buffers(log_lines: tuple[str, ...] | list[str]) -> dict[str, int]:
    """{buffer type: bytes} from llama.cpp's "load_tensors: CUDA0 model buffer size = 812.00
    MiB" lines: where the weights went (offload, -ot, --n-cpu-moe, RPC), as llama.cpp says."""
    out: dict[str, int] = {}
    for line in log_lines:
        m = _BUFFER_RE.search(line)
        if m:
            out[m.group(1)] = int(float(m.group(2)) * 2**20)
    return out


def explain_exit(log_tail: tuple[str, ...] | list[str]) -> tuple[str, str] | None:
    """(message, hint) for a llama-server that exited early, from its last log lines."""
    text = "\n".join(log_tail)
    for pattern, message, hint in _EXIT_CAUSES:
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            arg = next((g for g in m.groups() if g), None) if m.groups() else None
            return (f"{message} ({arg})" if arg else message), hint
    return None


def info_json(found: Found, info: BinaryInfo | None) -> dict[str, Any]:
    """The `rigtui engines --json` entry of one binary."""
    out: dict[str, Any] = {"name": found.name, "found": found.path is not None, "path": found.path,
                           "source": found.source, "reason": found.reason, "hint": found.hint}  # fmt: skip
    if info is not None:
        out.update({"ok": info.ok, "version": info.version, "commit": info.commit,
                    "compiler": info.compiler, "buffer_types": list(info.buffer_types),
                    "backends": list(info.backends), "rpc": info.rpc,
                    "build_flags": info.build_flags, "reason": info.reason or found.reason})  # fmt: skip
    return out
