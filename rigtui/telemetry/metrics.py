"""A `Sample` as Prometheus metric families, for `rigtui exporter`.

Pure: samples (and the machine's Topology) in, families out; the command wraps them in a
prometheus_client collector. Names follow Prometheus conventions: a `rigtui_` prefix, base units
in the name (`_bytes`, `_seconds`, `_celsius`, `_watts`, `_hertz`, `_ratio`), `_total` on
counters. Cardinality is bounded by the machine, never by the traffic: one series per socket,
node, CPU group (socket, as the dashboard groups them), sensor, GPU and engine instance, and no
label carries a token, a prompt or a request.

Memory traffic arrives as rates per interval (GB/s from uncore/UMC counters, resctrl or the
labelled estimate); the exporter integrates them into byte counters, so `rate()` in PromQL gives
the traffic back and a scrape missed loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rigtui.model.engine import EngineState
from rigtui.model.sample import Sample
from rigtui.model.topology import Topology

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    kind: str  # "counter" | "gauge" | "info"
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float | int | None, **labels: object) -> None:
        if value is not None:
            self.samples.append((tuple((k, str(v)) for k, v in labels.items()), float(value)))


@dataclass
class Counters:
    """What the exporter integrates across samples (counters must never go back)."""

    read_bytes: dict[tuple[int, str], float] = field(default_factory=dict)
    write_bytes: dict[tuple[int, str], float] = field(default_factory=dict)
    samples: int = 0

    def update(self, s: Sample) -> None:
        self.samples += 1
        if not s.interval_s:
            return
        for m in s.memory_traffic:
            if not m.available or m.source is None:
                continue
            key = (m.socket, m.source)
            for total, gbs in ((self.read_bytes, m.read_gbs), (self.write_bytes, m.write_gbs)):
                if gbs is not None and gbs >= 0:
                    total[key] = total.get(key, 0.0) + gbs * 1e9 * s.interval_s


def _sockets_of_nodes(topology: Topology) -> dict[int, int]:
    return {n.id: n.socket for n in topology.nodes if n.socket is not None}


def families(s: Sample | None, topology: Topology, counters: Counters,
             measured_gbs: dict[int, float] | None = None, checks: Iterable[tuple[str, str]] = (),
             version: str = "", bytes_per_token: float | None = None) -> list[Family]:  # fmt: skip
    """The metric families of the latest sample `s` (None: only the machine's own facts).
    With `bytes_per_token` (the model's weights read per generated token), each engine also
    gets its roofline: the rig's channel ceiling divided by it."""
    out: dict[str, Family] = {}

    def fam(name: str, kind: str, help_: str) -> Family:
        if name not in out:
            out[name] = Family(name, kind, help_)
        return out[name]

    host = topology.host
    fam("rigtui_build", "info", "rigtui and the machine it describes").add(
        1, version=version, hostname=host.hostname or "",
        cpu_model=topology.cpu.model_name or "")  # fmt: skip
    f = fam("rigtui_sockets", "gauge", "CPU sockets (packages) of the machine")
    f.add(len(topology.sockets))
    f = fam("rigtui_numa_nodes", "gauge", "NUMA nodes of the machine")
    f.add(len(topology.nodes))
    ceil = fam("rigtui_memory_bandwidth_theoretical_bytes_per_second", "gauge",
               "what the memory channels of a socket allow (channels x 8 B x MT/s)")  # fmt: skip
    for sock_id, bw in sorted(topology.memory.bandwidth_per_socket_gbs.items()):
        ceil.add(bw * 1e9, socket=sock_id, source=topology.memory.source)
    if measured_gbs:
        meas = fam("rigtui_memory_bandwidth_measured_bytes_per_second", "gauge",
                   "read bandwidth of a node measured by `rigtui bench mem` (cached)")  # fmt: skip
        for node, gbs in sorted(measured_gbs.items()):
            meas.add(gbs * 1e9, node=node)
    rd = fam("rigtui_memory_read_bytes_total", "counter",
             "bytes read from DRAM by a socket, by the source of the figure")  # fmt: skip
    wr = fam("rigtui_memory_write_bytes_total", "counter",
             "bytes written to DRAM by a socket, by the source of the figure")  # fmt: skip
    for (sock_id, source), v in sorted(counters.read_bytes.items()):
        rd.add(v, socket=sock_id, source=source)
    for (sock_id, source), v in sorted(counters.write_bytes.items()):
        wr.add(v, socket=sock_id, source=source)
    for name, status in checks:
        fam("rigtui_check_ok", "gauge", "1 when a `rigtui check` passed, 0 when it warned, failed "
            "or could not tell (status says which)").add(1 if status == "pass" else 0, check=name,
                                                          status=status)  # fmt: skip
    if s is None:
        return list(out.values())
    fam("rigtui_sample_timestamp_seconds", "gauge", "when the latest sample was taken").add(s.t)
    if s.sample_cost_ms is not None:
        fam("rigtui_sample_cost_seconds", "gauge", "CPU time the latest sample took").add(
            s.sample_cost_ms / 1000)  # fmt: skip
    traffic = fam("rigtui_memory_traffic_bytes_per_second", "gauge",
                  "DRAM traffic of a socket over the last interval (read, write)")  # fmt: skip
    for m in s.memory_traffic:
        if m.available and m.source:
            traffic.add(None if m.read_gbs is None else m.read_gbs * 1e9, socket=m.socket,
                        direction="read", source=m.source)  # fmt: skip
            traffic.add(None if m.write_gbs is None else m.write_gbs * 1e9, socket=m.socket,
                        direction="write", source=m.source)  # fmt: skip
    util = fam("rigtui_cpu_utilisation_ratio", "gauge",
               "busy share of the CPUs of a socket (and of all CPUs: socket=\"all\")")  # fmt: skip
    util.add(s.cpu.total / 100, socket="all")
    for sock_id, pct in sorted(s.cpu.per_socket.items()):
        util.add(pct / 100, socket=sock_id)
    node_socket = _sockets_of_nodes(topology)
    total = fam("rigtui_node_memory_total_bytes", "gauge", "memory of a NUMA node")
    free = fam("rigtui_node_memory_free_bytes", "gauge", "free memory of a NUMA node")
    for n in s.nodes:
        labels = {"node": n.node, "socket": node_socket.get(n.node, "none")}
        total.add(n.total_bytes, **labels)
        free.add(n.free_bytes, **labels)
    pl = s.placement
    if pl is not None and pl.available:
        pages = fam("rigtui_model_pages_bytes", "gauge",
                    "the followed engine's model file pages resident on a NUMA node")  # fmt: skip
        for node, b in sorted(pl.model_file_bytes_per_node.items()):
            pages.add(b, node=node, pid=pl.pid)
        if pl.model_file_bytes is not None:  # sum(pages) / this: the share of the model resident
            fam("rigtui_model_file_bytes", "gauge",
                "size of the followed engine's model file").add(pl.model_file_bytes, pid=pl.pid)  # fmt: skip
        anon = fam("rigtui_engine_anon_bytes", "gauge",
                   "the followed engine's anonymous memory (KV cache, buffers) on a NUMA node")  # fmt: skip
        for node, b in sorted(pl.anon_bytes_per_node.items()):
            anon.add(b, node=node, pid=pl.pid)
    temp = fam("rigtui_temperature_celsius", "gauge", "a temperature sensor (hwmon, NVML)")
    for t in s.temperatures:
        temp.add(t.temp_c, chip=t.chip, sensor=t.label, kind=t.kind,
                 socket="none" if t.socket is None else t.socket)  # fmt: skip
    if s.memory.swap_used_bytes is not None:
        fam("rigtui_swap_used_bytes", "gauge", "swap in use").add(s.memory.swap_used_bytes)
    if s.memory.psi_some_avg10 is not None:
        fam("rigtui_memory_pressure_some_ratio", "gauge",
            "share of time some task stalled on memory (PSI avg10)").add(s.memory.psi_some_avg10 / 100)  # fmt: skip
    for g in s.gpus:
        if not g.available:
            continue
        lab = {"gpu": g.index, "name": g.name or ""}
        fam("rigtui_gpu_utilisation_ratio", "gauge", "GPU busy share").add(
            None if g.util_pct is None else g.util_pct / 100, **lab)  # fmt: skip
        fam("rigtui_gpu_memory_used_bytes", "gauge", "GPU memory in use").add(g.mem_used_bytes, **lab)
        fam("rigtui_gpu_memory_total_bytes", "gauge", "GPU memory").add(g.mem_total_bytes, **lab)
        fam("rigtui_gpu_power_watts", "gauge", "GPU power draw").add(g.power_w, **lab)
        clock = fam("rigtui_gpu_clock_hertz", "gauge", "GPU clocks (sm, memory)")
        clock.add(None if g.sm_clock_mhz is None else g.sm_clock_mhz * 1e6, clock="sm", **lab)
        clock.add(None if g.mem_clock_mhz is None else g.mem_clock_mhz * 1e6, clock="memory", **lab)
        gen = fam("rigtui_gpu_pcie_link_generation", "gauge", "PCIe generation, now and the most "
                  "the link allows (a GPU idles at a lower one)")  # fmt: skip
        gen.add(g.pcie_gen, state="current", **lab)
        gen.add(g.pcie_gen_max, state="max", **lab)
        width = fam("rigtui_gpu_pcie_link_width", "gauge", "PCIe lanes, now and the most")
        width.add(g.pcie_width, state="current", **lab)
        width.add(g.pcie_width_max, state="max", **lab)
    for e in s.engines:
        lab = {"instance": e.instance, "profile": e.profile or "", "server": e.server or ""}
        fam("rigtui_engine_up", "gauge", "1 while an engine instance is loaded and answering").add(
            1 if e.state.value in ("ready", "generating") else 0, **lab)  # fmt: skip
        state = fam("rigtui_engine_state", "gauge", "1 for the state an engine instance is in, "
                    "0 for the others")  # fmt: skip
        for st in EngineState:
            state.add(1 if e.state is st else 0, state=st.value, **lab)
        fam("rigtui_engine_generation_tokens_per_second", "gauge",
            "generation speed of the last (or current) request").add(e.gen_tok_s, **lab)  # fmt: skip
        fam("rigtui_engine_prompt_tokens_per_second", "gauge",
            "prompt processing speed of the last request").add(e.prompt_tok_s, **lab)  # fmt: skip
        fam("rigtui_engine_time_to_first_token_seconds", "gauge",
            "time to first token of the last request").add(e.ttft_s, **lab)  # fmt: skip
        fam("rigtui_engine_requests_in_flight", "gauge", "requests being answered").add(
            e.requests_in_flight, **lab)  # fmt: skip
        fam("rigtui_engine_requests_total", "counter", "requests answered since launch").add(
            e.requests_total, **lab)  # fmt: skip
        fam("rigtui_engine_generated_tokens_total", "counter", "tokens generated since launch").add(
            e.total_gen, **lab)  # fmt: skip
        ceiling = sum(topology.memory.bandwidth_per_socket_gbs.values()) * 1e9
        if bytes_per_token and ceiling:
            fam("rigtui_engine_roofline_tokens_per_second", "gauge", "generation speed the rig's "
                "memory bandwidth allows: channel ceiling / bytes read per token").add(
                ceiling / bytes_per_token, **lab)  # fmt: skip
        if e.slots is not None:
            fam("rigtui_engine_kv_cache_tokens", "gauge", "tokens held in the KV cache "
                "(llama-server slots)").add(e.slots.kv_used_tokens, **lab)  # fmt: skip
    return list(out.values())
