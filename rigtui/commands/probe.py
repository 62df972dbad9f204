"""`rigtui probe [--json] [--root DIR]`: what the machine is, in one view.

Like `lstopo` meets `lscpu`, `numactl -H`, `dmidecode -t 17` and `nvidia-smi`: sockets -> NUMA
nodes -> L3 domains and cores, memory channels and bandwidth, GPUs, temperatures, OS facts, and
what could not be read (with how to fix it). `--json` prints the contract of
`rigtui.probes.report`. rich is imported only for the text report.
"""

from __future__ import annotations

import argparse
import sys

from rigtui.cli import EXIT_FAILURE, EXIT_OK, add_root_arg, make_fs

GIB = 1024**3
MAX_SOCKETS_SHOWN = 8  # beyond this (IA-64, POWER LPARs) the tree shows 4 and a summary line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "probe",
        help="show sockets, NUMA nodes, cores, memory channels, GPUs and sensors",
        description="Probe the machine (or a captured tree with --root) and print what it is.",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--no-nvml", action="store_true", help="do not query the NVIDIA driver")
    add_root_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rigtui.probes import detect

    fs = make_fs(args)
    code = EXIT_OK
    if not fs.isdir(""):
        fs.note("", f"root {fs.root} does not exist or is not a directory: check --root")
        code = EXIT_FAILURE
    topo = detect(fs, nvml=False if getattr(args, "no_nvml", False) else None)
    if args.json:
        from rigtui.commands._common import print_json
        from rigtui.probes.report import topology_to_json

        print_json(topology_to_json(topo))
        return code
    if code != EXIT_OK:
        print(f"rigtui probe: root {fs.root} does not exist or is not a directory", file=sys.stderr)
        return code
    render(topo)
    return code


# -- text report -----------------------------------------------------------------------------------


def _gib(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 1024**2:.0f} MiB"


def _yn(v: bool | None) -> str:
    return "?" if v is None else ("on" if v else "off")


def _say(con, label: str, text: str, indent: int = 2, style: str | None = None) -> None:
    """`label` in bold, then `text` wrapped at the console's width with continuation lines
    indented, so the report reads well in an 80-column terminal (paths and words unbroken)."""
    import textwrap

    from rich.markup import escape

    lines = textwrap.wrap(
        f"{label}{text}",
        width=max(40, con.width),
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [label]
    body = escape(lines[0][len(label) :]) + "".join("\n" + escape(x) for x in lines[1:])
    if style:
        body = f"[{style}]{body}[/{style}]"
    con.print(f"[bold]{escape(label)}[/bold]{body}")


def render(topo, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.tree import Tree

    from rigtui.probes.parse import format_cpulist

    con = console or Console(highlight=False, soft_wrap=False)
    cpu, host = topo.cpu, topo.host
    title = host.hostname or ("this machine" if topo.root == "/" else "captured machine")
    con.print(f"[bold]rigtui probe[/bold] — {escape(title)}")
    if topo.root != "/":
        _say(con, "  tree ", topo.root, indent=7, style="dim")
    threads = len(cpu.online)
    freq = f", up to {cpu.max_mhz / 1000:.2f} GHz" if cpu.max_mhz else ""
    _say(con, "CPU  ", f"{cpu.model_name or 'unknown model'} ({cpu.arch or '?'})", indent=5)
    _say(
        con,
        "     ",
        f"{len(topo.sockets)} socket(s), {len(topo.cores)} cores, {threads} threads, "
        f"SMT {_yn(cpu.smt_active)}{freq}",
        indent=5,
    )
    if cpu.offline:
        con.print(f"     [yellow]offline CPUs: {format_cpulist(cpu.offline)}[/yellow]")
    if cpu.allowed is not None and set(cpu.online) - set(cpu.allowed):
        con.print(
            f"     [yellow]this process may use only CPUs {format_cpulist(cpu.allowed)} "
            "(cgroup cpuset / affinity)[/yellow]"
        )
    if cpu.hybrid:
        kinds: dict[str, list[int]] = {}
        for c in topo.cpus:
            if c.kind:
                kinds.setdefault(c.kind, []).append(c.id)
        con.print(
            "     hybrid: "
            + ", ".join(f"{k}-cores CPUs {format_cpulist(v)}" for k, v in sorted(kinds.items()))
        )
    if cpu.isa:
        shown = [f for f, v in cpu.isa.items() if v]
        _say(con, "ISA  ", " ".join(shown) if shown else "none of note", indent=5)

    tree = Tree("[bold]Topology[/bold]")
    core_of = {c.id: c.core for c in topo.cpus}
    shown = topo.sockets if len(topo.sockets) <= MAX_SOCKETS_SHOWN else topo.sockets[:4]
    for s in shown:
        l3 = [topo.l3_domains[i] for i in s.l3_domains]
        l3_txt = ""
        if l3:
            size = l3[0].size_bytes
            l3_txt = f", {len(l3)} x L3" + (f" {size // 1024**2} MiB" if size else "")
        branch = tree.add(
            f"[bold]Socket {s.id}[/bold]: {s.cores} cores / {len(s.cpus)} threads"
            f"{l3_txt}" + (f", {s.numa_mode}" if s.numa_mode else "")
        )
        for nid in s.nodes:
            n = topo.node(nid)
            if n is None:
                continue
            text = f"Node {n.id} ({n.kind}): {_gib(n.mem_total_bytes)}"
            if n.mem_free_bytes is not None:
                text += f" ({_gib(n.mem_free_bytes)} free)"
            node_cpus = set(n.cpus) & set(s.cpus)
            if node_cpus:
                text += f", CPUs {format_cpulist(node_cpus)}"
            if n.note:
                text += f"  [yellow]{escape(n.note)}[/yellow]"
            nb = branch.add(text)
            doms = [d for d in l3 if set(d.cpus) & node_cpus]
            if doms:
                cores_per = sorted({len({core_of.get(c) for c in d.cpus}) for d in doms})
                nb.add(
                    f"{len(doms)} L3 domain(s), "
                    f"{'/'.join(map(str, cores_per))} cores each: "
                    + "  ".join(format_cpulist(d.cpus) for d in doms[:8])
                    + (" ..." if len(doms) > 8 else "")
                )
    if len(shown) < len(topo.sockets):
        rest = topo.sockets[len(shown) :]
        tree.add(
            f"... {len(rest)} more sockets ({sum(x.cores for x in rest)} cores, "
            f"{len({n for x in rest for n in x.nodes})} nodes): see `rigtui probe --json`"
        )
    orphans = [n for n in topo.nodes if not any(n.id in s.nodes for s in topo.sockets)]
    for n in orphans:
        tree.add(f"Node {n.id} ({n.kind}): {_gib(n.mem_total_bytes)}  {escape(n.note or '')}")
    con.print(tree)

    if 1 < len(topo.nodes) <= 16 and all(n.distances for n in topo.nodes):
        t = Table(title="NUMA distances (numactl -H)", title_justify="left", box=None)
        t.add_column("node")
        for n in topo.nodes:
            t.add_column(str(n.id), justify="right")
        for n in topo.nodes:
            t.add_row(str(n.id), *(str(n.distances.get(m.id, "?")) for m in topo.nodes))
        con.print(t)

    _render_memory(con, topo, Table)
    _render_gpus(con, topo, Table)
    _render_sensors(con, topo)
    _render_host(con, topo)
    if topo.problems:
        con.print(f"[bold yellow]Could not read ({len(topo.problems)})[/bold yellow]")
        for p in topo.problems[:20]:
            _say(con, "  ", f"{p.path}: {p.reason}", indent=4)
        if len(topo.problems) > 20:
            con.print(f"  ... {len(topo.problems) - 20} more (see --json)")


def _render_memory(con, topo, Table) -> None:
    from rich.markup import escape

    m = topo.memory
    con.print(f"[bold]Memory[/bold]  {_gib(m.total_bytes)} total, source: {m.source}")
    if m.populated_channels is not None:
        per = ", ".join(f"socket {s}: {c}" for s, c in sorted(m.channels_per_socket.items()))
        plat = (
            f" of {m.platform_channels_per_socket} per socket"
            if m.platform_channels_per_socket
            else ""
        )
        if m.source.startswith("platform"):
            # Not read from the DIMMs: the platform's channel count, assumed all populated.
            _say(
                con,
                "  ",
                f"channels: {m.populated_channels} ({per}), assuming every channel of the "
                "platform is populated (not read from the DIMMs)",
                indent=4,
            )
        else:
            con.print(f"  channels populated: {m.populated_channels} ({per}){plat}")
    if m.speed_mts:
        con.print(f"  speed: {m.speed_mts} MT/s")
    if m.theoretical_bandwidth_gbs is not None:
        label = " (platform maximum, not measured)" if m.source.startswith("platform") else ""
        con.print(f"  theoretical bandwidth: {m.theoretical_bandwidth_gbs:.1f} GB/s{label}")
        capped = sorted(s for s, why in m.limited_by.items() if why == "fabric")
        if capped and m.fabric is not None:
            dram = sum(m.dram_bandwidth_per_socket_gbs.values())
            _say(con, "  ", f"capped by the fabric (estimated): the channels allow {dram:.1f} GB/s, "
                 f"the cores read at most {m.theoretical_bandwidth_gbs:.1f}: {m.fabric.note}",
                 indent=4, style="yellow")  # fmt: skip
        elif m.fabric is not None:
            _say(con, "  ", f"fabric: {m.fabric.note}; the channels are the limit", indent=4,
                 style="dim")  # fmt: skip
    # One line per reason: several fields are often unknown for the same one.
    by_reason: dict[str, list[str]] = {}
    for field, why in m.unknown.items():
        by_reason.setdefault(why, []).append(field.removesuffix("_gbs").replace("_", " "))
    for why, fields in by_reason.items():
        _say(con, "  ", f"{', '.join(fields)} unknown: {why}", indent=4, style="dim")
    if m.hint:
        _say(con, "  hint: ", m.hint, indent=4)
    populated = [d for d in m.dimms if d.populated]
    if populated:
        groups: dict[tuple, list[str]] = {}
        for d in populated:
            key = (
                d.size_bytes,
                d.type,
                d.configured_speed_mts or d.speed_mts,
                d.part_number,
                d.rank,
            )
            groups.setdefault(key, []).append(d.locator or "?")
        t = Table(box=None, show_header=True)
        for col in ("count", "size", "type", "MT/s", "rank", "part", "slots"):
            t.add_column(col)
        for (size, typ, speed, part, rank), locs in groups.items():
            slots = ", ".join(x.strip() for x in locs[:6]) + (" ..." if len(locs) > 6 else "")
            # SMBIOS strings are the firmware's: print them as text, never as Rich markup
            t.add_row(str(len(locs)), _gib(size), escape(typ or "?"), str(speed or "?"),
                      str(rank or "?"), escape(part or "?"), escape(slots))  # fmt: skip
        con.print(t)
        empty = len(m.dimms) - len(populated)
        if empty:
            con.print(f"  [dim]{empty} empty slot(s)[/dim]")


def _render_gpus(con, topo, Table) -> None:
    from rich.markup import escape

    if not topo.gpus:
        con.print("[bold]GPUs[/bold]  none found on PCI")
    else:
        t = Table(title="GPUs", title_justify="left", box=None)
        for col in ("#", "PCI", "name", "memory", "CC", "PCIe now/max", "node", "driver"):
            t.add_column(col)
        for g in topo.gpus:
            link = (
                f"gen{g.pcie_gen or '?'} x{g.link_width or '?'} / "
                f"gen{g.pcie_gen_max or '?'} x{g.link_max_width or '?'}"
            )
            t.add_row(str(g.index), escape(g.pci_address), escape(g.name or "?"),
                      _gib(g.memory_total_bytes), escape(g.compute_capability or "-"), link,
                      "?" if g.numa_node is None else str(g.numa_node),
                      escape(g.driver or "-"))  # fmt: skip
        con.print(t)
    for g in topo.display_adapters:
        con.print(
            f"  [dim]display adapter (not for compute): {escape(g.pci_address)} "
            f"{escape(g.vendor or '?')}[/dim]"
        )


def _render_sensors(con, topo) -> None:
    from rich.markup import escape

    if not topo.sensors:
        con.print("[bold]Sensors[/bold]  none readable (VM, or hwmon drivers not loaded)")
        return
    parts = []
    for s in topo.sensors:
        if s.kind in ("core",):
            continue
        where = f"socket {s.socket} " if s.socket is not None else ""
        temp = "?" if s.temp_c is None else f"{s.temp_c:.0f}°C"
        parts.append(escape(f"{where}{s.chip}/{s.label} {temp}"))
    cores = [s for s in topo.sensors if s.kind == "core" and s.temp_c is not None]
    if cores:
        parts.append(f"cores max {max(s.temp_c for s in cores):.0f}°C")  # type: ignore[type-var]
    con.print("[bold]Sensors[/bold]  " + ";  ".join(parts))


def _render_host(con, topo) -> None:
    h = topo.host
    gov = ", ".join(f"{g} x{n}" for g, n in h.governors.items()) or "?"
    facts = [
        f"kernel {h.kernel or '?'}",
        h.os_name or "os ?",
        f"virt {h.virtualization or '?'}",
        f"THP {h.thp_enabled or '?'}",
        f"numa_balancing {'?' if h.numa_balancing is None else h.numa_balancing}",
        f"governor {gov}",
        f"boost {_yn(h.boost)}",
        f"SMT control {h.smt_control or '?'}",
        f"perf_event_paranoid {'?' if h.perf_event_paranoid is None else h.perf_event_paranoid}",
        f"resctrl {'mounted' if h.resctrl_mounted else 'not mounted' if h.resctrl_mounted is not None else '?'}",
        f"swap {_gib(h.swap_total_bytes)}",
        f"available {_gib(h.mem_available_bytes)}",
    ]
    _say(con, "Host  ", " · ".join(facts), indent=6)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(argparse.Namespace(json="--json" in sys.argv, root=None)))
