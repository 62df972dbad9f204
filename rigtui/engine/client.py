"""Parent side of the engine: spawn the worker for a Profile, stream its events, stop it.

Each EngineProcess is one child (`python -m rigtui.engine.worker`) in its own session/process
group, so several can run at once and a stop takes down anything it forked. Events arrive on a
dedicated pipe (NDJSON); the child's stdout/stderr (llama.cpp's log) become `Log` events and the
stderr tail of the `Exit` event. A crash, an OOM kill or a SIGKILL becomes an `Exit` event with
a reason; nothing here blocks forever.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rigtui.engine.access import KEY_VAR, EndpointKey, endpoint_key
from rigtui.engine.backends import EngineBackend, backend_for
from rigtui.engine.stats import fold
from rigtui.model.engine import (
    EngineEvent,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Log,
    Starting,
    event_from_json,
)
from rigtui.model.profile import LaunchPlan, Profile
from rigtui.model.topology import Topology
from rigtui.profiles import plan_launch
from rigtui.syscalls.process import PARENT_ENV

_STDERR_TAIL = 200  # llama.cpp log lines kept in the parent (a load writes ~300-700)
_counter = itertools.count(1)
_WORKER_EXIT_REASONS = {
    0: "exited normally",
    2: "refused the launch (bad config, or the CPU/memory policy could not be applied)",
    3: "failed to load the model",
}


def _oom_kills() -> int | None:
    """System-wide OOM kill counter (/proc/vmstat oom_kill), to tell an OOM kill from `kill -9`."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def exit_reason(
    code: int | None, oom_before: int | None, oom_after: int | None
) -> tuple[int | None, int | None, str]:
    """(exit code, signal, human reason) from a Popen returncode."""
    if code is None:
        return None, None, "still running"
    if code < 0:
        sig = -code
        name = (
            signal.Signals(sig).name
            if sig in signal.Signals._value2member_map_
            else f"signal {sig}"
        )
        if sig == signal.SIGKILL:
            oom = oom_before is not None and oom_after is not None and oom_after > oom_before
            why = (
                "the kernel's OOM killer (out of memory)"
                if oom
                else "SIGKILL (`kill -9`, or the OOM killer)"
            )
            return None, sig, f"killed by {why}"
        if sig == signal.SIGSEGV:
            return None, sig, "crashed (SIGSEGV) inside llama.cpp"
        return None, sig, f"terminated by {name}"
    return code, None, _WORKER_EXIT_REASONS.get(code, f"exited with code {code}")


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a worker: ours, `extra`, and rigtui importable (even uninstalled)."""
    env = dict(os.environ)
    env.update(extra or {})
    pkg_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (pkg_root, env.get("PYTHONPATH")) if x)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _live_topology() -> Topology:
    from rigtui.hostfs import HostFS
    from rigtui.probes import detect

    return detect(HostFS("/"), nvml=False)


class _Spawner:
    """Forks every engine child from one thread that lives as long as this process.

    The children ask for PR_SET_PDEATHSIG (syscalls/process.py), whose "parent" is the
    thread that forked them: forked from the TUI's short-lived worker threads, they would be
    killed as soon as that thread ended."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[concurrent.futures.Future[Any], tuple, dict]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> int:
        """Start the thread now (a monitor does, before it lowers its own threads' priority
        and moves them off the engines' CPUs: the engines inherit this thread's). Its tid."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rigtui-spawner", daemon=True)
                self._thread.start()
            while self._thread.native_id is None:  # set once the thread runs
                time.sleep(0.001)
            return self._thread.native_id

    def __call__(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        self.start()
        done: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._requests.put((done, args, kwargs))
        return done.result()

    def _run(self) -> None:
        while True:
            done, args, kwargs = self._requests.get()
            try:
                done.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:  # OSError, ValueError: the caller's to handle
                done.set_exception(exc)


spawn = _Spawner()


class EngineProcess:
    """One launched profile. `on_event` is called from a reader thread for every event; without
    it, events are queued for `events()` (the CLI's way).

    llama.cpp's log (300-700 INFO lines per load, none while generating) always lands in the
    bounded `log_tail`; `log_events=False` keeps those lines out of the event stream, so a
    consumer that does not show the log is not handed hundreds of events per launch."""

    def __init__(
        self,
        profile: Profile,
        *,
        instance: str | None = None,
        on_event: Callable[[EngineEvent], None] | None = None,
        topology: Topology | None = None,
        python: str | None = None,
        log_events: bool = True,
        listen: tuple[str, int] | None = None,
        no_key: bool = False,
    ) -> None:
        self.profile = profile
        self.listen = listen  # serve the OpenAI-compatible API on (host, port)
        self.no_key = no_key  # serve without an API key (loopback only: the caller checks)
        self.access: EndpointKey | None = None  # the endpoint's key, resolved by start()
        self.log_events = log_events
        self.instance = instance or f"{profile.name}-{next(_counter)}"
        self.on_event = on_event
        self.topology = topology
        self.python = python or sys.executable
        self.backend: EngineBackend = backend_for(profile.engine)
        self.plan: LaunchPlan | None = None
        self.model_path: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # stats + dispatch order
        self._stdin_lock = threading.Lock()
        self._stats = EngineStats(
            instance=self.instance, profile=profile.name, state=EngineState.IDLE
        )
        self._queue: queue.Queue[EngineEvent] = queue.Queue()
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._tail_lock = threading.Lock()
        self._seq = 0
        self._exited = threading.Event()
        self._threads: list[threading.Thread] = []
        self._chat: Any = None  # EndpointChat, made on the first ask()

    # -- state ---------------------------------------------------------------------------------
    @property
    def stats(self) -> EngineStats:
        with self._lock:
            return self._stats

    @property
    def log_tail(self) -> tuple[str, ...]:
        """The last llama.cpp log lines of this launch (at most 200), oldest first."""
        with self._tail_lock:  # the log reader thread appends meanwhile
            return tuple(self._tail)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    def dispatch(self, ev: EngineEvent) -> None:
        """Fold `ev` into the stats and hand it on (the backends' watcher threads call it)."""
        self._dispatch(ev)

    def _dispatch(self, ev: EngineEvent) -> None:
        with self._lock:
            self._stats = fold(self._stats, ev)
            if self.on_event is None:
                self._queue.put(ev)
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception as exc:  # a UI bug must not kill the reader thread
                print(f"rigtui: engine event handler failed: {exc!r}", file=sys.stderr)

    # -- launch --------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return self.backend.config(self)

    def _env(self) -> dict[str, str]:
        extra = dict(self.profile.env)
        if self.profile.cuda_visible_devices is not None:
            extra["CUDA_VISIBLE_DEVICES"] = self.profile.cuda_visible_devices
        if self.api_key:
            extra[KEY_VAR] = self.api_key  # the environment: /proc/PID/environ is ours alone
        extra[PARENT_ENV] = str(os.getpid())  # the child dies with us (PR_SET_PDEATHSIG)
        return worker_env(extra)

    @property
    def api_key(self) -> str | None:
        """The key the endpoint asks for (None: no endpoint yet, or `no_key`)."""
        return self.access.key if self.access else None

    def start(self) -> None:
        """Spawn the worker. Resolves the model (generating the demo model on first use) and the
        CPU/memory plan first; raises OSError/ValueError if those fail (nothing spawned)."""
        if self.running:
            raise RuntimeError(f"engine {self.instance} is already running (pid {self.pid})")
        if self.profile.is_demo:
            from rigtui.engine.demo_model import ensure_profile_demo

            self.model_path = str(ensure_profile_demo(self.profile))
        else:
            self.model_path = self.profile.model
        topology = self.topology or _live_topology()
        self.plan = plan_launch(self.profile, topology)
        self.backend.prepare(self)  # raises ValueError: nothing spawned
        # who may use the endpoint (engine/access.py); AccessError is a ValueError
        self.access = (endpoint_key(self.profile.api_key_env, no_key=self.no_key)
                       if self.listen is not None else None)  # fmt: skip
        self._exited.clear()
        self._tail.clear()
        self._queue = queue.Queue()  # a restart starts a fresh stream
        self._seq = 0
        read_fd, write_fd = os.pipe()
        argv = [
            self.python,
            "-m",
            self.backend.child_module(),
            "--events-fd",
            str(write_fd),
            "--instance",
            self.instance,
        ]
        oom_before = _oom_kills()
        try:
            self._proc = spawn(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=(write_fd,), start_new_session=True, env=self._env(), close_fds=True,
            )  # fmt: skip
        except BaseException:  # OSError, or ValueError for an environment execve refuses
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._dispatch(Starting(instance=self.instance, t=time.time(), pid=self._proc.pid,
                                profile=self.profile.name, argv=tuple(argv)))  # fmt: skip
        self._send(self._config())
        self.backend.started(self)
        log_thread = threading.Thread(
            target=self._read_log, name=f"{self.instance}-log", daemon=True
        )
        ev_thread = threading.Thread(target=self._read_events, args=(read_fd, log_thread, oom_before),
                                     name=f"{self.instance}-events", daemon=True)  # fmt: skip
        self._threads = [log_thread, ev_thread]
        log_thread.start()
        ev_thread.start()

    def send(self, obj: dict[str, Any]) -> bool:
        """One JSON line to the child's stdin; False when it is gone."""
        return self._send(obj)

    def _send(self, obj: dict[str, Any]) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or self._exited.is_set():
            return False
        with self._stdin_lock:
            try:
                proc.stdin.write((json.dumps(obj) + "\n").encode())
                proc.stdin.flush()
                return True
            except (BrokenPipeError, ValueError, OSError):
                return False

    def _read_log(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        with stdout:  # closed at EOF: a stopped engine kept in a list must not hold its pipe
            for raw in stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._tail_lock:
                    self._tail.append(line)
                if self.log_events:
                    self._dispatch(Log(instance=self.instance, t=time.time(), line=line))

    def _read_events(self, fd: int, log_thread: threading.Thread, oom_before: int | None) -> None:
        proc = self._proc
        assert proc is not None
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                try:
                    obj = json.loads(raw)
                    if not isinstance(obj, dict):  # .get() below would kill this thread
                        raise ValueError(f"not a JSON object: {raw[:80]!r}")
                    ev = event_from_json(obj)
                except (ValueError, TypeError) as exc:
                    ev = Error(
                        instance=self.instance,
                        t=time.time(),
                        message=f"bad event from worker: {exc}",
                    )
                self._dispatch(ev)
        code = proc.wait()
        log_thread.join(timeout=5.0)
        with self._stdin_lock, contextlib.suppress(OSError):  # after a kill nobody closed it
            if proc.stdin:
                proc.stdin.close()
        cause = self.backend.exited(self, code)
        if cause is not None:
            self._dispatch(cause)
        c, sig, reason = exit_reason(code, oom_before, _oom_kills())
        self._dispatch(Exit(instance=self.instance, t=time.time(), code=c, signal=sig, reason=reason,
                            stderr_tail=self.log_tail[-20:]))  # fmt: skip
        self._exited.set()

    # -- requests ------------------------------------------------------------------------------
    def prompt(self, text: str, *, max_tokens: int = 128, **sampling: Any) -> int:
        """Queue a prompt; returns its sequence number. Tokens arrive as events. Only the
        embedded engine takes prompts this way; llama-server is asked over its endpoint."""
        self._require_stdin_ops("prompt")
        self._seq += 1
        self._send(
            {"op": "prompt", "seq": self._seq, "text": text, "max_tokens": max_tokens, **sampling}
        )
        return self._seq

    def ask(self, text: str, *, max_tokens: int = 128, **sampling: Any) -> int:
        """Send a prompt to the engine's own endpoint, as any client does (the TUI's chat).
        The reply arrives as `Text` events; the speeds as the engine's own events. Needs the
        engine to serve (stats.url)."""
        url = self.stats.url
        if url is None:
            raise RuntimeError(f"engine {self.instance} does not serve (yet): no endpoint to ask")
        connect = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
        if self._chat is None or self._chat.base_url != connect.rstrip("/"):
            from rigtui.engine.endpoint_chat import EndpointChat

            self._chat = EndpointChat(connect, self.profile.name, self.instance, self._dispatch,
                                      api_key=self.api_key)  # fmt: skip
        ps = self.profile.sampling
        defaults = {"temperature": ps.temperature, "top_k": ps.top_k, "top_p": ps.top_p,
                    "min_p": ps.min_p, "repeat_penalty": ps.repeat_penalty}  # fmt: skip
        self._seq += 1
        self._chat.ask(self._seq, text, max_tokens, **{**defaults, **sampling})
        return self._seq

    def _require_stdin_ops(self, what: str) -> None:
        if not self.backend.stdin_ops:
            raise NotImplementedError(f"{what}: the {self.backend.name} engine answers over its "
                                      f"endpoint ({self.stats.url or 'not serving yet'})")  # fmt: skip

    def bench(self, *, n_prompt: int = 512, n_gen: int = 128, reps: int = 5,
              n_depth: int = 0) -> int:  # fmt: skip
        self._require_stdin_ops("bench")
        self._seq += 1
        self._send({"op": "bench", "seq": self._seq, "n_prompt": n_prompt, "n_gen": n_gen,
                    "reps": reps, "n_depth": n_depth})  # fmt: skip
        return self._seq

    def request_placement(self) -> None:
        self.backend.placement(self)

    def cancel(self) -> None:
        """Cancel the running generation and every prompt queued before this call."""
        if self._chat is not None:
            self._chat.cancel()
        if self.backend.stdin_ops:
            self._send({"op": "cancel"})

    def stop(self, timeout: float = 5.0) -> Exit | None:
        """Ask the worker to stop; SIGTERM then SIGKILL its process group if it does not.
        From an `on_event` handler it only asks (the Exit event follows) and returns None."""
        proc = self._proc
        if proc is None:
            return None
        self.backend.request_stop(self)
        with self._stdin_lock:
            try:
                if proc.stdin:
                    proc.stdin.close()
            except OSError:
                pass
        if threading.current_thread() in self._threads:
            return None  # called from an on_event handler: waiting here would wait on ourselves
        if not self._exited.wait(timeout):
            for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                    if sig == signal.SIGTERM:  # a stopped (SIGSTOP) worker must run to act on it
                        os.killpg(proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                if self._exited.wait(grace):
                    break
        return self.stats.exit

    def kill(self) -> None:
        """SIGKILL the worker's process group now (the Exit event follows)."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def restart(self, timeout: float = 5.0) -> None:
        self.stop(timeout)
        self.start()

    def wait_exit(self, timeout: float | None = None) -> bool:
        return self._exited.wait(timeout)

    def events(self, timeout: float | None = None) -> Iterator[EngineEvent]:
        """Events as they come (only without `on_event`); ends after the Exit event. `timeout`:
        give up (StopIteration) when no event arrives for that long."""
        while True:
            try:
                ev = self._queue.get(timeout=timeout)
            except queue.Empty:
                return
            yield ev
            if isinstance(ev, Exit):
                return

    def __enter__(self) -> EngineProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
