"""The dashboard's engine panel: one line per launched engine when there are several, then the
selected one in detail (state, gen/prompt tok/s sparklines, TTFT, tokens, roofline, where it
runs, model pages per node) and, when the terminal has room, its last request and output tail.
It renders the snapshots it is handed and reads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from rigtui.engine.supervisor import ACTIVE_STATES
from rigtui.model.engine import EngineState, EngineStats, key_hint
from rigtui.model.topology import Topology
from rigtui.ui.fmt import bar, escape, human_bytes, num, short_cpu_list, spark_rows, tok_s
from rigtui.ui.instances import Instance, printable
from rigtui.ui.panels import STATE_STYLE, part, parts, set_text, set_title


@dataclass(frozen=True)
class EngineView:
    """What the dashboard hands the panel each refresh."""

    instances: tuple[Instance, ...]
    selected: str | None
    roofline: tuple[float | None, str]
    machine_line: str | None  # all engines together vs the bandwidth, when several generate
    prepare: tuple[str, float | None] | None
    note: str | None
    width: int
    spark_height: int = 1  # rows per sparkline: grows with the terminal
    tail_lines: int = 0  # output tail lines to show (0: none)
    app_note: str | None = None  # where the app runs beside the engines


def nodes_of(topology: Topology, cpus: Sequence[int]) -> str:
    """The NUMA nodes a CPU list touches: 'n0' or 'n0,n1' ('' when unknown)."""
    wanted = set(cpus)
    nodes = sorted(n.id for n in topology.nodes if wanted.intersection(n.cpus))
    return ",".join(f"n{n}" for n in nodes)


class EnginePanel(Vertical):
    """The engines launched from the UI (see the module docstring)."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(id="engine", classes="panel")
        self.topology = topology
        self.border_title = "Engine"

    def compose(self) -> ComposeResult:
        yield Static("", id="engine-list")
        yield Static("", id="engine-state")
        with Horizontal(classes="spark-row", id="gen-row"):
            yield Static("", id="gen-label", classes="spark-label")
            yield Static("", id="gen-spark")
        with Horizontal(classes="spark-row", id="prompt-row"):
            yield Static("", id="prompt-label", classes="spark-label")
            yield Static("", id="prompt-spark")
        yield Static("", id="engine-detail")
        yield Static("", id="engine-tail")

    def update_from(self, view: EngineView) -> None:
        inst = next((i for i in view.instances if i.key == view.selected), None)
        stats = inst.stats if inst else None
        many = len(view.instances) > 1
        set_title(self, f"Engines · {len(view.instances)}" if many else "Engine")
        lst = part(self, "#engine-list")
        lst.display = many
        if many:
            set_text(lst, self._list_text(view))
        set_text(
            part(self, "#engine-state"),
            self._state_text(inst, view.prepare, view.note, many),
        )
        # no history yet: one row, not a tall empty box
        rows = max(1, view.spark_height) if inst is not None and inst.gen_history else 1
        for row in parts(self, Horizontal):  # the gen and prompt rows
            row.display = stats is not None
            row.styles.height = rows
        part(self, "#engine-detail").display = stats is not None
        gen = stats.gen_tok_s if stats else None
        prompt = stats.prompt_tok_s if stats else None
        set_text(part(self, "#gen-label"), f"gen    {tok_s(gen):>12}")
        set_text(part(self, "#prompt-label"), f"prompt {tok_s(prompt):>12}")
        cols = max(8, view.width - 30)  # label (21) + borders + a possible scrollbar
        gen_h = list(inst.gen_history) if inst else []
        prompt_h = list(inst.prompt_history) if inst else []
        set_text(part(self, "#gen-spark"), "\n".join(spark_rows(gen_h, cols, rows)))
        set_text(
            part(self, "#prompt-spark"), "\n".join(spark_rows(prompt_h, cols, rows))
        )
        set_text(part(self, "#engine-detail"), self._detail_text(stats, view))
        tail = part(self, "#engine-tail")
        tail_text = self._tail_text(inst, view) if inst and view.tail_lines else ""
        tail.display = bool(tail_text)
        set_text(tail, tail_text)

    def _list_text(self, view: EngineView) -> str:
        """One compact line per engine: key, state, profile, gen tok/s, where it runs."""
        lines = []
        for i in view.instances:
            s = i.stats
            mark = "▸" if i.key == view.selected else " "
            style = STATE_STYLE.get(s.state, "$text")
            where = ""
            if s.placement is not None:
                cpus = s.placement.thread_cpus_allowed or s.placement.cpus_allowed
                where = f" · {nodes_of(self.topology, cpus) or '?'} cpus {short_cpu_list(cpus)}"
            gen = f" · {tok_s(s.gen_tok_s)}" if s.gen_tok_s is not None else ""
            lines.append(
                f"{mark}{i.key} [{style}]{s.state.value.upper():<10}[/]"
                f"{escape(i.profile)}{gen}{escape(where)}"
            )
        return "\n".join(lines) + "\n[$text-muted]s selects · x stops the selected[/]"

    def _state_text(
        self,
        inst: Instance | None,
        prepare: tuple[str, float | None] | None,
        note: str | None,
        many: bool,
    ) -> str:
        if inst is None:
            if note:
                return f"[$text-muted]{escape(note)}[/]"
            return "[$text-muted]idle: no engine launched — p for profiles, l to launch[/]"
        stats = inst.stats
        style = STATE_STYLE.get(stats.state, "$text")
        which = f"{inst.key}: " if many else ""
        text = f"{which}[{style}][b]{stats.state.value.upper()} [/b][/]{escape(inst.profile)}"
        if stats.pid:
            text += f" [$text-muted]pid {stats.pid}[/]"
        if inst.stopping:
            text += " [$warning]stopping…[/]"
        if prepare is not None and stats.state is EngineState.STARTING:
            what, frac = prepare
            text += f"\n{escape(what)} {bar(frac, 20)} " + (
                f"{frac:.0%}" if frac is not None else ""
            )
        elif stats.state is EngineState.LOADING:
            frac = stats.load_progress
            text += f"\nloading {bar(frac, 20)} {num((frac or 0) * 100, '.0f')}%"
        if stats.state is EngineState.FAILED:
            why = stats.last_error or (stats.exit.reason if stats.exit else None) or inst.note
            text += f"\n[$error]{escape(printable(why or 'failed'))} [/][$text-muted](r: run screen shows the log)[/]"
        return text

    def _detail_text(self, stats: EngineStats | None, view: EngineView) -> str:
        if stats is None:
            return ""
        width = view.width
        ttft = f"{stats.ttft_s * 1000:.0f} ms" if stats.ttft_s is not None else "–"
        lines = [f"TTFT {ttft} · tokens {stats.n_gen} (total {stats.total_gen})"]
        if stats.url:
            busy = (f" · {stats.requests_in_flight} in flight" if stats.requests_in_flight
                    else "")  # fmt: skip
            lines.append(f"serving [b]{escape(stats.url)}[/b] [$text-muted]{stats.requests_total} "
                         f"requests{busy}[/]")  # fmt: skip
            lines.append(f"[$text-muted]{escape(key_hint(stats.key))}[/]")
            if stats.slots is not None:  # llama-server: its slots and their KV cache
                sl = stats.slots
                lines.append(f"[$text-muted]{escape(stats.server or '')} slots {sl.busy}/{sl.n_slots} "
                             f"busy · KV {sl.kv_used_tokens} tokens held (a slot holds up to {sl.kv_ctx_tokens})[/]")  # fmt: skip
        limit, basis = view.roofline
        if limit and stats.gen_tok_s is not None:
            frac = stats.gen_tok_s / limit
            lines.append(
                f"roofline {bar(frac, max(8, min(24, width - 40)))} {frac:.0%} of {limit:.1f} tok/s"
            )
            lines.append(f"[$text-muted]{escape(basis)}[/]")
            if frac > 1.05:  # faster than the limit: the bandwidth figure is too low
                lines.append(
                    "[$warning]above the roofline: re-measure bandwidth when idle (b, m)[/]"
                )
        elif limit:
            lines.append(f"roofline {limit:.1f} tok/s [$text-muted]{escape(basis)}[/]")
        else:
            lines.append(f"roofline [$text-muted]{escape(basis)}[/]")
        if view.machine_line:
            lines.append(view.machine_line)
        pl = stats.placement
        if pl is not None:
            threads = pl.thread_cpus_allowed
            where = f"cpus {short_cpu_list(pl.cpus_allowed)}"
            if threads and tuple(threads) != tuple(pl.cpus_allowed):
                # llama.cpp's numa strategies re-pin the compute threads: the process's own
                # list is not where the work runs
                where += f" · threads on {short_cpu_list(threads)}"
            elif threads:
                where += " · threads there too"
            where += f" · mems {short_cpu_list(pl.mems_allowed)}"
            lines.append(where)
        if pl is not None and pl.model_file_bytes_per_node:
            pages = " · ".join(
                f"n{n} {human_bytes(b)}" for n, b in sorted(pl.model_file_bytes_per_node.items())
            )
            lines.append(f"model pages {pages}" + _resident(pl, stats))
        elif stats.model_bytes:
            lines.append(
                f"model {human_bytes(stats.model_bytes)} [$text-muted]pages per node: not read yet[/]"
            )
        for warning in pl.warnings if pl is not None else ():
            lines.append(f"[$warning]placement not as asked: {escape(warning)}[/]")
        if view.app_note and stats.state in ACTIVE_STATES:
            lines.append(f"[$text-muted]{escape(view.app_note)}[/]")
        return "\n".join(lines)

    def _tail_text(self, inst: Instance, view: EngineView) -> str:
        """The last request's figures and the last lines of the chat (when there is room)."""
        lines = []
        d = inst.last_done
        if d is not None:
            lines.append(
                f"last request: {d.n_prompt} prompt tok in {d.prompt_s * 1000:.0f} ms · "
                f"{d.n_gen} tok in {d.gen_s:.2f} s · stop {escape(d.stop_reason)}"
            )
        out = inst.output_tail(max(0, view.tail_lines - len(lines)), max(20, view.width - 6))
        if out:
            lines.append("[$text-muted]output:[/]")
            lines.extend(escape(line) for line in out)
        return "\n".join(lines)


def _resident(pl, stats) -> str:
    """" · 64% cached": how much of the model file is in the page cache (mincore) when the
    placement was last read (after load and after each request), so a cold mmap'd model is
    seen warming up; "" once whole. Without that figure: the share of the CPU side the engine
    has mapped (numa_maps; llama.cpp's CPU_Mapped buffer as the whole where its log said)."""
    cached = getattr(pl, "model_cached_bytes", None)
    if cached is not None and stats.model_bytes:
        share, what = min(1.0, cached / stats.model_bytes), "cached"
    else:
        cpu_side = pl.model_buffers.get("CPU_Mapped")
        if cpu_side is None and not stats.extra.get("n_gpu_layers"):
            cpu_side = stats.model_bytes
        if not cpu_side:
            return ""
        share, what = min(1.0, sum(pl.model_file_bytes_per_node.values()) / cpu_side), "mapped"
    if share >= 0.995:
        return ""
    style = "$warning" if share < 0.9 else "$text-muted"
    return f" · [{style}]{share * 100:.0f}% {what}[/]"
