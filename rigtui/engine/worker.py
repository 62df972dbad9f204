"""The engine child: `python -m rigtui.engine.worker --events-fd N` (spawned by EngineProcess).

Order matters: read the launch config (first JSON line on stdin), pin the CPUs
(sched_setaffinity) and set the NUMA memory policy (set_mempolicy) *before* importing llama_cpp,
so every thread llama.cpp starts and every page it faults in inherits them. Then load the model
(progress through llama.cpp's progress callback), verify placement (/proc/self/status,
/proc/self/numa_maps), and serve requests read as JSON lines on stdin:

    {"op": "prompt", "seq": 1, "text": "...", "max_tokens": 128, "temperature": 0.8, ...}
    {"op": "cancel"}                      cancels every prompt received so far
    {"op": "bench", "seq": 2, "n_prompt": 512, "n_gen": 128, "reps": 5}
    {"op": "stop"}                        (or EOF on stdin)

Events go out as NDJSON on the fd given by --events-fd (llama.cpp logs to stdout/stderr).
`--system-info` prints llama.cpp's build facts as one JSON line on stdout and exits.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import queue
import sys
import threading
import time
from typing import Any

from rigtui.engine.compat import private_api_problem
from rigtui.engine.parent_watch import watch_parent
from rigtui.model.engine import (
    Done,
    EngineEvent,
    Error,
    Loaded,
    LoadProgress,
    Placement,
    PolicyApplied,
    PromptDone,
    Token,
    event_to_json,
)
from rigtui.syscalls.process import die_with_parent

EXIT_BAD_CONFIG = 2
EXIT_LOAD_FAILED = 3
NUMA_STRATEGY = {"disabled": 0, "distribute": 1, "isolate": 2, "numactl": 3, "mirror": 4}
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
              "iq4_nl": 20, "bf16": 30}  # fmt: skip
SPLIT_MODE = {"none": 0, "layer": 1, "row": 2}


class Emitter:
    """Writes events as JSON lines to the events fd (thread-safe)."""

    def __init__(self, fd: int, instance: str) -> None:
        self._stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self.instance = instance

    def __call__(self, cls: type[EngineEvent], **fields: Any) -> None:
        ev = cls(instance=self.instance, t=time.time(), **fields)
        line = json.dumps(event_to_json(ev), ensure_ascii=False)
        with self._lock:
            try:
                self._stream.write(line + "\n")
            except BrokenPipeError:  # the parent went away: nothing left to tell
                os._exit(0)


def apply_policy(cfg: dict[str, Any], emit: Emitter) -> None:
    """Affinity, memory policy and (if asked) the model file dropped from the page cache,
    before llama_cpp."""
    from rigtui.syscalls.numa import get_mempolicy, set_mempolicy

    plan = cfg["plan"]
    warnings: list[str] = []
    if plan.get("cpus"):
        try:
            os.sched_setaffinity(0, plan["cpus"])
        except OSError as exc:
            emit(Error, message=f"cannot pin to CPUs {plan['cpus']}: {exc.strerror}", kind="policy",
                 hint="check the profile's cpus/nodes against `rigtui probe` (cgroup cpuset?)")  # fmt: skip
            sys.exit(EXIT_BAD_CONFIG)
    policy = plan.get("memory_policy", "default")
    if policy != "default":
        try:
            set_mempolicy(policy, plan.get("memory_nodes") or ())
        except (OSError, ValueError) as exc:
            emit(
                Error,
                message=str(exc),
                kind="policy",
                hint="fix memory_policy / memory_nodes in the profile",
            )
            sys.exit(EXIT_BAD_CONFIG)
    if cfg.get("drop_caches_first") and cfg.get("model_path"):
        # just the model's pages, no root needed: the next load faults them in under the
        # policy set above (a model cached by an earlier run stays where that run put it)
        from rigtui.syscalls.pages import evict_file

        try:
            before, after = evict_file(cfg["model_path"])
        except OSError as exc:
            warnings.append(f"drop_caches_first: could not evict the model file: {exc}")
        else:
            if after:
                warnings.append(
                    f"drop_caches_first: {after / 2**20:.0f} of the model's {before / 2**20:.0f} "
                    "MiB of cached pages stayed (another process maps the file, or it is on "
                    "tmpfs/ramfs, whose pages cannot be dropped): they keep their nodes"
                )
    if cfg.get("prefault") and cfg.get("model_path"):
        # under the policy just set: the file's pages are allocated by this reader's policy
        from rigtui.syscalls.pages import prefault_file

        try:
            n, seconds = prefault_file(cfg["model_path"], progress=lambda f: emit(
                LoadProgress, progress=round(f, 4)))  # fmt: skip
        except OSError as exc:
            warnings.append(f"prefault: could not read the model file: {exc}")
        else:
            warnings.append(f"prefault: read {n / 2**30:.2f} GiB of the model under the {policy} "
                            f"policy in {seconds:.1f} s" + ("" if cfg.get("drop_caches_first")
                            else " (pages cached before keep their nodes: drop_caches_first "
                                 "= true re-places them)"))  # fmt: skip
    try:
        mode, nodes = get_mempolicy()
    except OSError as exc:
        mode, nodes = policy, tuple(plan.get("memory_nodes") or ())
        warnings.append(f"could not read back the memory policy: {exc}")
    emit(PolicyApplied, cpus=tuple(sorted(os.sched_getaffinity(0))), memory_policy=mode,
         policy_nodes=tuple(nodes), warnings=tuple(warnings))  # fmt: skip


def _install_progress_hook(emit: Emitter) -> Any:
    """llama-cpp-python 0.3.x does not expose llama.cpp's load progress callback: wrap
    llama_model_default_params (which Llama.__init__ calls) to set it."""
    import llama_cpp.llama_cpp as C

    last = [-1.0]

    def on_progress(progress: float, _user: Any) -> bool:
        if progress - last[0] >= 0.02 or progress >= 1.0:
            last[0] = progress
            emit(LoadProgress, progress=round(float(progress), 4))
        return True

    callback = C.llama_progress_callback(on_progress)
    original = C.llama_model_default_params

    def params_with_progress():  # type: ignore[no-untyped-def]
        params = original()
        params.progress_callback = callback
        return params

    C.llama_model_default_params = params_with_progress
    return callback  # keep a reference: ctypes callbacks die with their Python object


# ggml.h's log levels. llama-cpp-python 0.3.x's own callback maps them as an older ggml had
# them (1 INFO ... 4 DEBUG), so llama.cpp's ERROR lines — the cause of a failed load, e.g.
# "quantized V cache requires flash_attn to be enabled" — were dropped as DEBUG.
GGML_NONE, GGML_DEBUG, GGML_INFO, GGML_WARN, GGML_ERROR, GGML_CONT = range(6)


_LOG: LlamaLog | None = None


def log_line_shown(level: int, min_level: int, last_shown: bool) -> bool:
    """Whether llama.cpp's log line of `level` goes to stderr; a continuation (CONT) follows
    the line it continues."""
    if level == GGML_CONT:
        return last_shown
    return level == GGML_NONE or level >= min_level


class LlamaLog:
    """llama.cpp's log to stderr, where the parent keeps its tail for error reports: INFO and
    up while loading (buffers, what failed and why), WARN and up once loaded (its DEBUG lines,
    a dozen per decoded token, would cost generation speed)."""

    def __init__(self) -> None:
        import ctypes

        import llama_cpp
        import llama_cpp.llama as llama_module

        self.min_level = GGML_INFO
        self._last_shown = False
        self.last_error: str | None = None  # llama.cpp's last ERROR line: why a load failed
        self._callback = llama_cpp.llama_log_callback(self._on_line)  # kept: ctypes frees it
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        llama_module.set_verbose = lambda verbose: None  # Llama() would reset its own logger

    def _on_line(self, level: int, text: bytes, user_data: Any) -> None:
        self._last_shown = log_line_shown(level, self.min_level, self._last_shown)
        if level == GGML_ERROR:
            self.last_error = text.decode("utf-8", "replace").strip()[:500]
        if self._last_shown:
            sys.stderr.write(text.decode("utf-8", "replace"))
            sys.stderr.flush()


def llama_numa(plan: dict[str, Any]) -> str:
    """The NUMA strategy to hand llama.cpp. "numactl" means "keep the CPU set the process was
    given", and rigtui gave it: ggml's NUMA mode would add nothing but its
    `clear_numa_thread_affinity`, which widens the thread that ran each graph (the main thread,
    or a server thread) to every CPU of the machine. Seen on a real 2-node kernel (tests/vm):
    a profile bound to node 1 had its main thread allowed on node 0 after the first prompt.
    So rigtui's own pinning, inherited by every thread, stands in for it."""
    if plan.get("numa") == "numactl" and plan.get("cpus"):
        return "disabled"
    return str(plan.get("numa", "disabled"))


def load_model(cfg: dict[str, Any], emit: Emitter) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        emit(Error, message=f"llama-cpp-python is not importable: {exc}", kind="load",
             hint="pip install 'llama-cpp-python>=0.3,<0.4'")  # fmt: skip
        sys.exit(EXIT_LOAD_FAILED)
    hook = _install_progress_hook(emit)
    global _LOG
    _LOG = log = LlamaLog()  # lives as long as the process: llama.cpp keeps its callback
    plan, ll = cfg["plan"], cfg["llama"]
    t0 = time.monotonic()
    try:
        llm = llama_cpp.Llama(
            model_path=cfg["model_path"],
            n_ctx=ll["ctx"],
            n_batch=ll["batch"],
            n_ubatch=ll["ubatch"],
            n_threads=plan["threads"],
            n_threads_batch=plan["batch_threads"],
            n_gpu_layers=ll["gpu_layers"],
            split_mode=SPLIT_MODE[ll["split_mode"]],
            main_gpu=ll["main_gpu"],
            tensor_split=ll.get("tensor_split"),
            offload_kqv=ll["offload_kqv"],
            flash_attn=ll["flash_attn"],
            type_k=GGML_TYPES[ll["cache_type_k"]],
            type_v=GGML_TYPES[ll["cache_type_v"]],
            use_mmap=ll["mmap"],
            use_mlock=ll["mlock"],
            seed=ll["seed"] if ll["seed"] >= 0 else llama_cpp.LLAMA_DEFAULT_SEED,
            numa=NUMA_STRATEGY[llama_numa(plan)],
            verbose=True,
        )
    except Exception as exc:  # llama.cpp reports the cause in its log (stderr tail)
        why = f" (llama.cpp: {log.last_error})" if log.last_error else ""
        emit(Error, message=f"could not load {cfg['model_path']}: {exc}{why}", kind="load",
             hint="see the engine log lines above; check the file with `rigtui profiles check`")  # fmt: skip
        sys.exit(EXIT_LOAD_FAILED)
    load_s = time.monotonic() - t0
    del hook
    problem = private_api_problem(llm)
    if problem:
        version = getattr(llama_cpp, "__version__", "?")
        emit(Error, message=f"llama-cpp-python {version} is not supported: {problem} (rigtui's "
             "sampler uses this private API of 0.3.x)", kind="load",
             hint="install a supported release: pip install 'llama-cpp-python==0.3.36'")  # fmt: skip
        sys.exit(EXIT_LOAD_FAILED)
    log.min_level = GGML_WARN
    info = llama_cpp.llama_print_system_info()
    emit(Loaded, load_s=round(load_s, 4), model_path=cfg["model_path"],
         model_bytes=os.path.getsize(cfg["model_path"]),
         n_params=int(llama_cpp.llama_model_n_params(llm.model)), n_ctx=llm.n_ctx(),
         n_threads=plan["threads"], n_gpu_layers=ll["gpu_layers"],
         gpu_offload_supported=bool(llama_cpp.llama_supports_gpu_offload()),
         system_info=info.decode(errors="replace") if isinstance(info, bytes) else str(info))  # fmt: skip
    if ll["gpu_layers"] != 0 and not llama_cpp.llama_supports_gpu_offload():
        emit(Error, message=f"gpu_layers = {ll['gpu_layers']}, but this llama-cpp-python build has no GPU "
             "offload: every layer runs on the CPU", kind="error",
             hint="reinstall it with GPU support, e.g. CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install "
             "--force-reinstall --no-cache-dir llama-cpp-python")  # fmt: skip
    return llm


def emit_placement(cfg: dict[str, Any], emit: Emitter) -> None:
    from rigtui.engine.placement import placement_fields

    emit(Placement, **placement_fields("self", cfg["model_path"], cfg["plan"],
                                       mmap=cfg["llama"].get("mmap", True)))  # fmt: skip


class Requests:
    """stdin reader thread: queues prompts, records cancels immediately."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.cancel_upto = 0  # every request with seq <= this is cancelled
        self.last_seq = 0
        threading.Thread(target=self._read, name="stdin", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
            except json.JSONDecodeError:
                req = {"op": "bad", "line": line[:200]}
            if req.get("op") == "cancel":
                self.cancel_upto = self.last_seq
                continue
            if req.get("op") in ("prompt", "bench"):
                self.last_seq = max(self.last_seq, int(req.get("seq") or self.last_seq + 1))
                req["seq"] = self.last_seq
            self.queue.put(req)
            if req.get("op") == "stop":
                break
        self.queue.put(None)

    def cancelled(self, seq: int) -> bool:
        return seq <= self.cancel_upto


def generate(
    llm: Any, req: dict[str, Any], cfg: dict[str, Any], reqs: Requests, emit: Emitter
) -> None:
    sampling = {**cfg.get("sampling", {}), **{k: v for k, v in req.items() if k in _SAMPLING}}
    max_tokens = int(req.get("max_tokens") or sampling.get("max_tokens") or 128)
    seq = req["seq"]
    t0 = time.monotonic()
    asked = max_tokens
    try:
        data = str(req.get("text", "")).encode("utf-8")
        n_ctx = int(llm.n_ctx())
        from rigtui.engine.serve_embedded import MAX_BYTES_PER_TOKEN

        head = n_ctx * MAX_BYTES_PER_TOKEN  # a prompt longer than this: its front counted first
        if len(data) > head:  # count the front first: tokenizing 100 MB whole took 5.5 GB
            n_head = len(llm.tokenize(data[:head], add_bos=True, special=False))
            if n_head >= n_ctx:
                emit(Error, message=f"prompt of {len(data):,} bytes fills the context ({n_ctx} "
                     f"tokens): its first {head:,} bytes alone are {n_head} tokens", kind="prompt",
                     hint="raise ctx in the profile or shorten the prompt")  # fmt: skip
                return
        tokens = llm.tokenize(data, add_bos=True, special=False)
        if len(tokens) + max_tokens > n_ctx:
            max_tokens = max(0, n_ctx - len(tokens))
            if max_tokens == 0:
                emit(Error, message=f"prompt of {len(tokens)} tokens fills the context ({n_ctx})",
                     kind="prompt", hint="raise ctx in the profile or shorten the prompt")  # fmt: skip
                return
        llm.reset()
        llm.eval(tokens)
    except Exception as exc:
        emit(Error, message=f"prompt failed: {exc}", kind="prompt", hint=None)
        return
    t_prompt = time.monotonic()
    emit(PromptDone, n_tokens=len(tokens), seconds=round(t_prompt - t0, 6), max_tokens=max_tokens,
         asked_tokens=asked if asked != max_tokens else None)  # fmt: skip
    # One sampler chain per request (Llama.sample() alone builds a fresh chain per token, which
    # re-seeds the RNG and forgets the repeat-penalty history); Llama.generate() does the same.
    llm._sampler = llm._init_sampler(
        top_k=int(sampling.get("top_k", 40)), top_p=float(sampling.get("top_p", 0.95)),
        min_p=float(sampling.get("min_p", 0.05)), temp=float(sampling.get("temperature", 0.8)),
        repeat_penalty=float(sampling.get("repeat_penalty", 1.0)),
    )  # fmt: skip
    try:
        n_gen, ttft, stop = _decode_loop(llm, seq, max_tokens, t0, reqs, emit)
    finally:
        llm._sampler = None
    t_end = time.monotonic()
    prompt_s, gen_s = t_prompt - t0, t_end - t_prompt
    emit(Done, n_prompt=len(tokens), n_gen=n_gen, prompt_s=round(prompt_s, 6), gen_s=round(gen_s, 6),
         prompt_tok_s=len(tokens) / prompt_s if prompt_s > 0 else None,
         gen_tok_s=n_gen / gen_s if n_gen and gen_s > 0 else None,
         ttft_s=round(ttft, 6) if ttft is not None else None, stop_reason=stop)  # fmt: skip


def _decode_loop(llm: Any, seq: int, max_tokens: int, t0: float, reqs: Requests, emit: Emitter
                 ) -> tuple[int, float | None, str]:  # fmt: skip
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    eos = llm.token_eos()
    n_gen, ttft, stop = 0, None, "length"
    while n_gen < max_tokens:
        if reqs.cancelled(seq):
            stop = "cancelled"
            break
        tok = llm.sample()
        if ttft is None:
            ttft = time.monotonic() - t0
        if tok == eos:
            stop = "stop"
            break
        text = decoder.decode(llm.detokenize([tok]))
        emit(Token, text=text, index=n_gen)
        n_gen += 1
        llm.eval([tok])
    return n_gen, ttft, stop


_SAMPLING = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "max_tokens")


def serve(llm: Any, cfg: dict[str, Any], emit: Emitter, lock: threading.Lock) -> None:
    """The stdin request loop. `lock` serialises these requests with the HTTP endpoint's."""
    reqs = Requests()
    placed_after_prompt = False
    while True:
        req = reqs.queue.get()
        if req is None or req.get("op") == "stop":
            return
        op = req.get("op")
        if op == "prompt":
            if reqs.cancelled(req["seq"]):
                emit(Done, n_prompt=0, n_gen=0, prompt_s=0.0, gen_s=0.0, prompt_tok_s=None,
                     gen_tok_s=None, ttft_s=None, stop_reason="cancelled")  # fmt: skip
                continue
            with lock:
                generate(llm, req, cfg, reqs, emit)
            if not placed_after_prompt:  # weights are paged in by now: where did they land?
                emit_placement(cfg, emit)
                placed_after_prompt = True
        elif op == "bench":
            from rigtui.engine.worker_bench import bench

            with lock:
                bench(llm, req, cfg, reqs.cancelled, emit)
        elif op == "placement":
            emit_placement(cfg, emit)
        else:
            emit(Error, message=f"unknown request {req!r:.200}", kind="bad-request",
                 hint='ops: prompt, cancel, bench, placement, stop')  # fmt: skip


def system_info() -> int:
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    out = {
        "llama_cpp_python": getattr(llama_cpp, "__version__", None),
        "system_info": info.decode(errors="replace") if isinstance(info, bytes) else str(info),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "mmap": bool(llama_cpp.llama_supports_mmap()),
        "mlock": bool(llama_cpp.llama_supports_mlock()),
    }
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rigtui.engine.worker")
    ap.add_argument("--events-fd", type=int)
    ap.add_argument("--instance", default="engine")
    ap.add_argument("--system-info", action="store_true")
    args = ap.parse_args(argv)
    if args.system_info:
        return system_info()
    if args.events_fd is None:
        ap.error("--events-fd is required")
    if not die_with_parent():  # rigtui went before we got here: nobody will read us
        return EXIT_BAD_CONFIG
    emit = Emitter(args.events_fd, args.instance)
    line = sys.stdin.readline()
    try:
        cfg = json.loads(line)
        cfg["plan"]["threads"]  # noqa: B018 - shape check
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        emit(Error, message=f"bad launch config on stdin: {exc}", kind="bad-request", hint=None)
        return EXIT_BAD_CONFIG
    apply_policy(cfg, emit)
    listener = open_listener(cfg, emit)  # before the load: a port in use fails at once
    watch_parent()  # after pinning: the watcher thread inherits the CPUs and memory policy
    llm = load_model(cfg, emit)
    emit_placement(cfg, emit)
    lock = threading.Lock()
    server = start_server(llm, cfg, listener, emit, lock) if listener is not None else None
    try:
        serve(llm, cfg, emit, lock)
    finally:
        if server is not None:
            server.stop()
    return 0


def open_listener(cfg: dict[str, Any], emit: Emitter) -> Any:
    """The endpoint's socket when the launch serves (cfg["serve"]), else None; exits with
    EXIT_BAD_CONFIG when the address cannot be bound or the API key is missing."""
    srv = cfg.get("serve")
    if not srv:
        return None
    from rigtui.engine.serve_embedded import bind_listener

    key_env = srv.get("api_key_env")
    if key_env and not os.environ.get(key_env):
        emit(Error, message=f"api_key_env = {key_env!r}, but the environment variable {key_env} is "
             "empty or not set", kind="serve", hint=f"export {key_env}=... before launching")  # fmt: skip
        sys.exit(EXIT_BAD_CONFIG)
    try:
        return bind_listener(srv["host"], int(srv["port"]))
    except OSError as exc:
        emit(Error, message=f"cannot listen on {srv['host']}:{srv['port']}: {exc.strerror or exc}",
             kind="serve", hint=_LISTEN_HINT.get(exc.errno or 0, "check the listen address"))  # fmt: skip
        sys.exit(EXIT_BAD_CONFIG)


_LISTEN_HINT = {
    98: "another server holds that port (a llama-server, an earlier `rigtui serve`?): "
    "`ss -ltnp` shows who; pick another with --listen HOST:PORT or the profile's listen key",
    99: "that address is not on this machine: use 127.0.0.1, or an address `ip addr` lists",
    13: "ports below 1024 need root: pick a port above 1024",
}


def start_server(llm: Any, cfg: dict[str, Any], listener: Any, emit: Emitter,
                 lock: threading.Lock) -> Any:  # fmt: skip
    srv = cfg["serve"]
    try:
        from rigtui.engine.serve_embedded import EmbeddedServer

        key_env = srv.get("api_key_env")
        server = EmbeddedServer(llm, listener, alias=srv["alias"], model_path=cfg["model_path"],
                                api_key=os.environ.get(key_env) if key_env else None,
                                key_source=str(srv.get("key_source") or "none"),
                                emit=emit, lock=lock)  # fmt: skip
        server.start()
    except ImportError as exc:
        emit(Error, message=f"llama-cpp-python's server is not installed ({exc.name} missing)",
             kind="serve", hint="pip install 'llama-cpp-python[server]' (or rigtui's extra: "
             "pip install 'rigtui[server]')")  # fmt: skip
        sys.exit(EXIT_BAD_CONFIG)
    except OSError as exc:
        emit(Error, message=str(exc), kind="serve", hint="see the engine log lines")
        sys.exit(EXIT_BAD_CONFIG)
    return server


if __name__ == "__main__":
    raise SystemExit(main())
