"""Engine backends: what `EngineProcess` spawns for a profile's `engine` key.

A backend is one class behind the `EngineBackend` protocol: the child module to spawn (it pins
and sets the memory policy before anything else runs), the launch config sent on its stdin, what
to do once it runs (start watching it), how to ask it to stop, and what its exit means. Adding an
engine (ik_llama.cpp's server, say) is one more class in one more module, registered in
`BACKENDS`.

- `llama-cpp-python`: rigtui's own worker (`rigtui.engine.worker`) with the binding embedded;
  it reports every event itself and takes prompt / bench / placement requests on stdin.
- `llama-server`: `rigtui.engine.exec_server` pins, sets the policy and execs llama.cpp's
  binary; `ServerMonitor` watches /health, /slots and /metrics, and /proc for placement.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any, Protocol

from rigtui.model.engine import Done, Error, Loaded, Placement, Serving

if TYPE_CHECKING:
    from rigtui.engine.client import EngineProcess


class EngineBackend(Protocol):
    name: str
    server: str  # what answers the OpenAI-compatible API
    stdin_ops: bool  # takes prompt / bench / placement requests on the child's stdin

    def prepare(self, proc: EngineProcess) -> None:
        """Checks before anything is spawned; raises ValueError (what and how to fix)."""

    def child_module(self) -> str: ...

    def config(self, proc: EngineProcess) -> dict[str, Any]: ...

    def started(self, proc: EngineProcess) -> None:
        """The child runs (its pid is known)."""

    def request_stop(self, proc: EngineProcess) -> None: ...

    def placement(self, proc: EngineProcess) -> None:
        """Have a `placement` event sent (where the engine runs, where its pages are)."""

    def exited(self, proc: EngineProcess, code: int | None) -> Error | None:
        """An Error to report before the Exit event (the cause of an early exit), if any."""


def plan_json(proc: EngineProcess) -> dict[str, Any]:
    plan = proc.plan
    assert plan is not None
    return {"cpus": list(plan.cpus) if plan.cpus is not None else None, "threads": plan.threads,
            "batch_threads": plan.batch_threads, "memory_policy": plan.memory_policy,
            "memory_nodes": list(plan.memory_nodes), "numa": plan.numa}  # fmt: skip


def key_config(proc: EngineProcess) -> dict[str, Any]:
    """What the child is told of the endpoint's key: the variable its environment holds it in
    (EngineProcess._env puts it there; never the argv) and where it came from."""
    from rigtui.engine.access import KEY_VAR

    return {"api_key_env": KEY_VAR if proc.api_key else None,
            "key_source": proc.access.source if proc.access else "none"}  # fmt: skip


class EmbeddedBackend:
    name = "llama-cpp-python"
    server = "llama_cpp.server"
    stdin_ops = True

    def prepare(self, proc: EngineProcess) -> None:
        return None

    def child_module(self) -> str:
        return "rigtui.engine.worker"

    def config(self, proc: EngineProcess) -> dict[str, Any]:
        p = proc.profile
        return {
            "model_path": proc.model_path,
            "plan": plan_json(proc),
            "llama": {
                "ctx": p.ctx, "batch": p.batch, "ubatch": p.ubatch, "gpu_layers": p.gpu_layers,
                "split_mode": p.split_mode, "main_gpu": p.main_gpu,
                "tensor_split": list(p.tensor_split) if p.tensor_split else None,
                "offload_kqv": p.offload_kqv, "flash_attn": p.flash_attn,
                "cache_type_k": p.cache_type_k, "cache_type_v": p.cache_type_v, "mmap": p.mmap,
                "mlock": p.mlock, "seed": p.seed,
            },  # fmt: skip
            "drop_caches_first": p.drop_caches_first, "prefault": p.prefault,
            "serve": {"host": proc.listen[0], "port": proc.listen[1], "alias": p.name,
                      **key_config(proc)} if proc.listen else None,  # fmt: skip
            "sampling": {
                k: getattr(p.sampling, k)
                for k in ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "max_tokens")
            },  # fmt: skip
        }

    def started(self, proc: EngineProcess) -> None:
        return None

    def request_stop(self, proc: EngineProcess) -> None:
        proc.send({"op": "stop"})

    def placement(self, proc: EngineProcess) -> None:
        proc.send({"op": "placement"})

    def exited(self, proc: EngineProcess, code: int | None) -> Error | None:
        return None


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (llama-server always serves; a launch that did not
    ask for an address gets one of these)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaServerBackend:
    name = "llama-server"
    server = "llama-server"
    stdin_ops = False

    def __init__(self) -> None:
        self.binary: str | None = None
        self.flags: frozenset[str] | None = None
        self.buffers: dict[str, int] = {}
        self.monitor: Any = None
        self.t_start = 0.0

    def prepare(self, proc: EngineProcess) -> None:
        from rigtui.engine.llama_server import binary_info, find_binary, unknown_buffer_types

        p = proc.profile
        found = find_binary("llama-server", p.binary)
        if found.path is None:
            raise ValueError(f"{found.reason}; {found.hint}")
        info = binary_info(found.path)
        if not info.ok:
            raise ValueError(f"{info.reason}; point the profile's binary at llama.cpp's "
                             "build/bin/llama-server")  # fmt: skip
        bad = unknown_buffer_types(p.override_tensors, info)
        if bad:
            entry, buft = bad[0]
            raise ValueError(f"override_tensors {entry!r}: {found.path} has no buffer type {buft!r} "
                             f"(it has: {', '.join(info.buffer_types)})")  # fmt: skip
        if p.rpc and info.rpc is False:
            raise ValueError(f"rpc = {list(p.rpc)}, but {found.path} was built without RPC "
                             "(GGML_RPC=ON); `rigtui engines build` builds it with RPC")  # fmt: skip
        self.binary = found.path
        self.flags = info.flags or None
        if proc.listen is None:
            proc.listen = ("127.0.0.1", free_loopback_port())
        elif proc.listen[1] == 0:  # "any free port": llama-server would not say which it took
            proc.listen = (proc.listen[0], free_loopback_port(proc.listen[0]))

    def child_module(self) -> str:
        return "rigtui.engine.exec_server"

    def config(self, proc: EngineProcess) -> dict[str, Any]:
        from rigtui.engine.llama_server import server_argv

        assert self.binary and proc.listen and proc.plan and proc.model_path
        host, port = proc.listen
        argv = server_argv(self.binary, proc.profile, proc.plan, proc.model_path, host, port, self.flags)
        return {"argv": argv,
                "plan": plan_json(proc), "drop_caches_first": proc.profile.drop_caches_first,
                "prefault": proc.profile.prefault,
                "model_path": proc.model_path,
                **key_config(proc)}  # fmt: skip

    def started(self, proc: EngineProcess) -> None:
        from rigtui.engine.server_monitor import ServerMonitor

        assert proc.listen is not None
        host, port = proc.listen
        shown = f"[{host}]" if ":" in host else host
        connect = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        base = f"http://{f'[{connect}]' if ':' in connect else connect}:{port}"
        api_key = proc.api_key
        self.t_start = time.monotonic()

        def emit(cls: Any, fields: dict[str, Any]) -> None:
            proc.dispatch(cls(instance=proc.instance, t=time.time(), **fields))
            if cls is Done and not self._placed_after_request:
                self._placed_after_request = True  # weights are paged in by now
                self.placement(proc)

        self._placed_after_request = False

        def on_ready() -> None:
            props = self.monitor.props()
            settings = props.get("default_generation_settings") or {}
            n_ctx = int(settings.get("n_ctx") or props.get("n_ctx") or proc.profile.ctx or 0)
            model_path = proc.model_path or ""
            assert proc.plan is not None
            proc.dispatch(Loaded(instance=proc.instance, t=time.time(),
                                 load_s=round(time.monotonic() - self.t_start, 4),
                                 model_path=model_path, model_bytes=os.path.getsize(model_path),
                                 n_params=None, n_ctx=n_ctx, n_threads=proc.plan.threads,
                                 n_gpu_layers=proc.profile.gpu_layers,
                                 system_info=props.get("build_info")))  # fmt: skip
            self.placement(proc)
            proc.dispatch(Serving(instance=proc.instance, t=time.time(),
                                  url=f"http://{shown}:{port}/v1", host=host, port=port,
                                  model=proc.profile.name, auth=bool(api_key),
                                  key=proc.access.source if proc.access else "none",
                                  server="llama-server"))  # fmt: skip

        self.monitor = ServerMonitor(base, emit, alive=lambda: proc.running, api_key=api_key)
        self.monitor.start(on_ready)

    def placement(self, proc: EngineProcess) -> None:
        from rigtui.engine.llama_server import model_buffers
        from rigtui.engine.placement import placement_fields

        if proc.pid is None or proc.model_path is None:
            return
        fields = placement_fields(proc.pid, proc.model_path, plan_json(proc), mmap=proc.profile.mmap)
        # read once, at load: later requests push those lines out of the bounded log tail
        self.buffers = self.buffers or model_buffers(proc.log_tail)
        fields["model_buffers"] = self.buffers
        proc.dispatch(Placement(instance=proc.instance, t=time.time(), **fields))  # type: ignore[arg-type]

    def request_stop(self, proc: EngineProcess) -> None:
        import contextlib
        import signal

        if self.monitor is not None:
            self.monitor.stop()
        if proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)  # llama-server shuts down cleanly on it

    def exited(self, proc: EngineProcess, code: int | None) -> Error | None:
        from rigtui.engine.llama_server import explain_exit

        if self.monitor is not None:
            self.monitor.stop()
        if code == 0 or proc.stats.last_error:
            return None
        cause = explain_exit(proc.log_tail)
        if cause is None:
            return None
        message, hint = cause
        kind = "serve" if proc.stats.url is None else "error"
        return Error(instance=proc.instance, t=time.time(), message=f"llama-server: {message}",
                     kind=kind, hint=hint)  # fmt: skip


BACKENDS: dict[str, type] = {"llama-cpp-python": EmbeddedBackend, "llama-server": LlamaServerBackend}


def backend_for(engine: str) -> EngineBackend:
    """A fresh backend object for a profile's `engine` key."""
    try:
        return BACKENDS[engine]()  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(f"engine {engine!r}: rigtui knows {', '.join(BACKENDS)}") from None
