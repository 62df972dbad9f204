"""Helpers for the UI tests: Services from fixture trees, deterministic samples, a fake engine,
and a synthetic big topology (2 x 96-core, 12 CCDs per socket)."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from rigtui.model.engine import (
    Done,
    EngineState,
    EngineStats,
    Error,
    Exit,
    Loaded,
    LoadProgress,
    Log,
    Placement,
    PromptDone,
    Starting,
    Token,
)
from rigtui.model.sample import (
    CpuUsage,
    GpuSample,
    MemoryTraffic,
    NodeMemory,
    Sample,
    SystemMemory,
)
from rigtui.model.topology import (
    CacheDomain,
    Core,
    CpuInfo,
    Gpu,
    HostInfo,
    LogicalCpu,
    MemoryInfo,
    NumaNode,
    Sensor,
    Socket,
    Topology,
)
from rigtui.ui.services import ReplaySource, Services

T0 = 1_700_000_000.0


def aio(fn: Callable) -> Callable:
    """Run an async test body with asyncio.run (pytest-asyncio is not a dependency)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def until(pilot, cond: Callable[[], object], seconds: float = 3.0) -> bool:
    """Let the app run until `cond()` holds or `seconds` pass; whether it held."""
    for _ in range(int(seconds / 0.05)):
        if cond():
            return True
        await pilot.pause(0.05)
    return bool(cond())


def topology_of(root) -> Topology:
    from rigtui.hostfs import HostFS
    from rigtui.probes import detect

    return detect(HostFS(str(root)))


def synthetic_sample(
    topology: Topology, i: int = 0, engines: tuple[EngineStats, ...] = ()
) -> Sample:
    """A deterministic sample: loads and traffic vary with the CPU id and `i`, nothing random."""
    cpus = topology.cpu.online
    loads = tuple(float((c * 37 + i * 11) % 101) for c in cpus)
    traffic = tuple(
        MemoryTraffic(
            socket=s.id,
            read_gbs=10.0 + (i * 3 + s.id * 5) % 17,
            write_gbs=3.0 + (i + s.id) % 5,
            source="test:constructed",
            available=True,
            ceiling_gbs=topology.memory.bandwidth_per_socket_gbs.get(s.id) or 100.0,
        )
        for s in topology.sockets
    )
    nodes = tuple(
        NodeMemory(
            node=n.id,
            total_bytes=n.mem_total_bytes or 16 * 2**30,
            free_bytes=(n.mem_total_bytes or 16 * 2**30) // (2 + n.id % 3),
            file_bytes=2**30,
            anon_bytes=2**29,
        )
        for n in topology.nodes
    )
    temps = tuple(
        Sensor("coretemp", f"Package id {s.id}", "cpu-package", 48.0 + s.id * 3 + i % 4, s.id, None)
        for s in topology.sockets
    )
    gpus = tuple(
        GpuSample(
            index=g.index,
            name=g.name,
            available=True,
            util_pct=float((i * 13) % 100),
            mem_used_bytes=9 * 2**30,
            mem_total_bytes=g.memory_total_bytes,
            temp_c=61.0,
            power_w=180.0 + i,
            power_limit_w=350.0,
            pcie_gen=4,
            pcie_gen_max=4,
            pcie_width=8,
            pcie_width_max=16,
        )  # fmt: skip
        for g in topology.gpus
    )
    return Sample(
        t=T0 + i,
        interval_s=1.0 if i else None,
        cpu=CpuUsage(
            cpu_ids=cpus,
            per_cpu=loads,
            freq_mhz=tuple(None for _ in cpus),
            total=sum(loads) / max(1, len(loads)),
        ),
        memory_traffic=traffic,
        nodes=nodes,
        memory=SystemMemory(0, 0, 0.0, 0.0),
        temperatures=temps,
        gpus=gpus,
        placement=None,
        engines=engines,
    )


def engine_stats(i: int = 0) -> EngineStats:
    return EngineStats(
        instance="test",
        profile="demo",
        state=EngineState.READY,
        pid=4242,
        load_progress=1.0,
        prompt_tok_s=200.0 + i,
        gen_tok_s=40.0 + (i % 7),
        ttft_s=0.05,
        n_prompt=8,
        n_gen=64,
        total_gen=64 * (i + 1),
        model_path="/cache/demo-8M.gguf",
        model_bytes=8_000_000,
        placement=None,
    )


def make_services(
    topology: Topology,
    *,
    samples: list[Sample] | None = None,
    profiles: Any = None,
    engine_factory: Callable | None = None,
    mode: str = "captured",
    **kw: Any,
) -> Services:
    return Services(
        topology=topology,
        source=ReplaySource(samples) if samples is not None else None,
        mode=mode,
        mode_detail=kw.pop("mode_detail", "fixture"),
        interval=kw.pop("interval", 0.05),
        profiles=profiles,
        engine_factory=engine_factory,
        **kw,
    )


class FakeEngine:
    """Emits a believable event sequence from a thread, like EngineProcess's reader thread.
    `fail_load=True` makes loading fail with a log tail and exit code 1."""

    def __init__(
        self,
        profile: Any,
        on_event: Callable,
        *,
        fail_load: bool = False,
        stop_delay: float = 0.0,
        cpus: tuple[int, ...] = (0, 1),
        thread_cpus: tuple[int, ...] = (),
        reply: list[str] | None = None,
        token_delay: float = 0.0,
    ) -> None:
        self.profile = profile
        self.reply = reply or [f"tok{k} " for k in range(5)]
        self.token_delay = token_delay  # seconds between tokens (0: a burst)
        self.on_event = on_event
        self.fail_load = fail_load
        self.stop_delay = stop_delay  # seconds stop() blocks, like a worker slow to exit
        self.cpus, self.thread_cpus = cpus, thread_cpus
        # EngineProcess keeps llama.cpp's log here (log_events=False) rather than in events
        self.log_tail: tuple[str, ...] = ()
        self._stats = EngineStats("fake", getattr(profile, "name", "fake"), EngineState.STARTING)
        self.pid = 999
        self.stopped = False

    @property
    def stats(self) -> EngineStats:
        return self._stats

    def _emit(self, ev: Any, **changes: Any) -> None:
        from dataclasses import replace

        self._stats = replace(self._stats, **changes)
        self.on_event(ev)

    def start(self) -> None:
        def go() -> None:
            self._emit(Starting("fake", time.time(), 999, self._stats.profile or ""), pid=999)
            self._emit(LoadProgress("fake", time.time(), 0.5), state=EngineState.LOADING)
            if self.fail_load:
                self.log_tail = ("llama_model_loader: loaded meta data", "gguf: tensor data cut")
                self._emit(Log("fake", time.time(), "llama_model_load: error loading model"))
                # as the worker does: the cause as an error event, then the exit
                self._emit(Error("fake", time.time(), "failed to load model: bad magic", "load"))
                self._emit(
                    Exit("fake", time.time(), 1, None, "exited with code 1", ("gguf: bad magic",)),
                    state=EngineState.FAILED,
                    last_error="failed to load model: bad magic",
                )
                return
            self._emit(
                Loaded("fake", time.time(), 0.1, "/m.gguf", 8_000_000, 1000, 512, 2, 0),
                state=EngineState.READY,
                model_bytes=8_000_000,
                model_path="/m.gguf",
                load_progress=1.0,
            )
            pl = Placement(
                "fake", time.time(), 999, self.cpus, (0,), {0: 8_000_000}, {}, "/m.gguf",
                self.thread_cpus,
            )  # fmt: skip
            self._emit(pl, placement=pl)

        threading.Thread(target=go, daemon=True).start()

    def prompt(self, text: str, *, max_tokens: int = 128) -> None:
        def go() -> None:
            self._emit(PromptDone("fake", time.time(), 4, 0.01), state=EngineState.GENERATING)
            n = len(self.reply)
            for k, text in enumerate(self.reply):
                if self.token_delay:
                    time.sleep(self.token_delay)
                self._emit(Token("fake", time.time(), text, k), n_gen=k + 1)
            self._emit(
                Done("fake", time.time(), 4, n, 0.01, 0.1, 400.0, 50.0, 0.02, "length"),
                state=EngineState.READY,
                gen_tok_s=50.0,
                prompt_tok_s=400.0,
                ttft_s=0.02,
                total_gen=self._stats.total_gen + n,
            )

        threading.Thread(target=go, daemon=True).start()

    def cancel(self) -> None:
        pass

    def stop(self) -> None:
        time.sleep(self.stop_delay)
        self.stopped = True
        self._stats = EngineStats("fake", self._stats.profile, EngineState.EXITED)


def big_topology(sockets: int = 2, ccds: int = 12, cores_per_ccd: int = 8) -> Topology:
    """A 2 x 96-core, SMT2, NPS1 EPYC-like machine built by hand (no fixture that big exists)."""
    cpus: list[LogicalCpu] = []
    cores: list[Core] = []
    l3s: list[CacheDomain] = []
    per_socket = ccds * cores_per_ccd
    total_cores = sockets * per_socket
    for s in range(sockets):
        for d in range(ccds):
            l3_index = len(l3s)
            members: list[int] = []
            for k in range(cores_per_ccd):
                ci = s * per_socket + d * cores_per_ccd + k
                threads = (ci, ci + total_cores)
                members.extend(threads)
                cores.append(Core(ci, s, 0, d * cores_per_ccd + k, threads, s, None))
                for t in threads:
                    cpus.append(LogicalCpu(t, True, s, 0, ci, ci, s, l3_index, None, None, None))
            l3s.append(CacheDomain(l3_index, 3, 32 * 2**20, tuple(sorted(members)), s))
    online = tuple(range(2 * total_cores))
    nodes = tuple(
        NumaNode(
            s,
            tuple(c.id for c in cpus if c.socket == s),
            384 * 2**30,
            300 * 2**30,
            MappingProxyType({o: (10 if o == s else 32) for o in range(sockets)}),
            "cpu",
            s,
        )
        for s in range(sockets)
    )
    socks = tuple(
        Socket(
            s,
            "AMD EPYC 9654 96-Core Processor",
            per_socket,
            tuple(c.id for c in cpus if c.socket == s),
            (s,),
            1,
            tuple(range(s * ccds, (s + 1) * ccds)),
            "NPS1",
        )
        for s in range(sockets)
    )
    cpu = CpuInfo(
        "x86_64", "AuthenticAMD", "AMD EPYC 9654 96-Core Processor", 25, 17, 1,
        MappingProxyType({}), (), True, 2, online, (), online, 3700.0, 1500.0, False,
    )  # fmt: skip
    memory = MemoryInfo(
        768 * 2**30, (), 24, MappingProxyType({0: 12, 1: 12}), 12, 4800, 4800, 921.6,
        MappingProxyType({0: 460.8, 1: 460.8}), "test",
    )  # fmt: skip
    host = HostInfo(
        "bigbox", "6.8.0-test", "Test Linux", "none", "madvise", "madvise", 0,
        MappingProxyType({"performance": len(online)}), True, "on", 2, False, 0, 0, 700 * 2**30,
    )  # fmt: skip
    return Topology(
        "/", cpu, tuple(cpus), tuple(cores), tuple(l3s), socks, nodes, memory, (), (), host
    )


def with_gpu(topology: Topology, node: int = 1) -> Topology:
    """`topology` plus one NVIDIA card on `node` (no fixture tree has a GPU)."""
    from dataclasses import replace

    gpu = Gpu(
        0, "0000:41:00.0", 0x10DE, 0x2684, "NVIDIA", "NVIDIA GeForce RTX 4090", "nvidia",
        24 * 2**30, "8.9", node, (), "16.0 GT/s PCIe", 8, "16.0 GT/s PCIe", 16, 4, 4, 0,
        "pci+nvml",
    )  # fmt: skip
    return replace(topology, gpus=(gpu,))


def selected_stats(app) -> EngineStats | None:
    """The selected launch's stats, as the Run screen shows them (None: no launch)."""
    inst = app.current
    return inst.stats if inst is not None else None


def selected_engine(app):
    """The selected launch's engine object, which the supervisor holds (None: not started)."""
    inst = app.current
    if inst is None or not inst.started or app.supervisor is None:
        return None
    return app.supervisor.engine(inst.key)
