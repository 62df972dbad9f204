"""`rigtui check`: sanity checks of a rig for LLM inference.

`run_checks(topology, ctx)` returns one `Check` per id in CHECK_IDS, in that order, each with a
status (pass/warn/fail/unknown), the evidence read, why it matters and the fix. Checks are pure
functions of the probed Topology and the CheckContext (the CLI gathers engine facts and page
placement into it), so captured trees and hand-built topologies drive them in tests.
A check that raises is reported as `unknown` with the error, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rigtui.analysis import checks_engine as eng
from rigtui.analysis import checks_memory as mem
from rigtui.analysis import checks_system as sysc
from rigtui.analysis import checks_usage as use
from rigtui.analysis.checks_common import check
from rigtui.model.analysis import Check, CheckContext
from rigtui.model.topology import Topology

Runner = Callable[[Topology, CheckContext], Check]

CHECKS: tuple[tuple[str, Runner], ...] = (
    ("memory_channels", lambda t, c: mem.memory_channels(t)),
    ("dimm_speed", lambda t, c: mem.dimm_speed(t)),
    ("memory_fabric", lambda t, c: mem.memory_fabric(t)),
    ("numa_mode", mem.numa_mode),
    ("memory_links", mem.memory_links),
    ("numa_balancing", lambda t, c: mem.numa_balancing(t)),
    ("transparent_hugepages", lambda t, c: mem.transparent_hugepages(t)),
    ("cpu_governor", lambda t, c: sysc.cpu_governor(t)),
    ("cpu_boost", lambda t, c: sysc.cpu_boost(t)),
    ("smt", sysc.smt),
    ("swap", lambda t, c: use.swap(t)),
    ("memory_pressure", use.memory_pressure),
    ("free_memory", use.free_memory),
    ("model_page_cache", use.model_page_cache),
    ("kernel_version", lambda t, c: sysc.kernel_version(t)),
    ("engine_isa", eng.engine_isa),
    ("gpu_offload", eng.gpu_offload),
    ("llama_server_build", eng.llama_server_build),
    ("gpu_pcie_link", lambda t, c: eng.gpu_pcie_link(t)),
    ("perf_counters", sysc.perf_counters),
    ("resctrl", lambda t, c: sysc.resctrl(t)),
)
CHECK_IDS: tuple[str, ...] = tuple(cid for cid, _ in CHECKS)

EXIT_PASS, EXIT_WARN, EXIT_FAIL = 0, 1, 2


def run_checks(
    topology: Topology, ctx: CheckContext | None = None, only: Sequence[str] | None = None
) -> list[Check]:
    """Every check (or the ids in `only`), in CHECK_IDS order."""
    ctx = ctx or CheckContext()
    out: list[Check] = []
    for cid, runner in CHECKS:
        if only and cid not in only:
            continue
        try:
            out.append(runner(topology, ctx))
        except Exception as exc:  # a probe value of an unexpected shape must not end the report
            out.append(
                check(
                    cid,
                    cid.replace("_", " "),
                    "unknown",
                    f"check failed: {type(exc).__name__}: {exc}",
                    [],
                    "",
                    "report this as a rigtui bug with `rigtui capture`",
                )
            )
    return out


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing warns or fails, 1 when something warns, 2 when something fails.
    `unknown` does not change the code (it is not a finding about the machine)."""
    statuses = {c.status for c in checks}
    if "fail" in statuses:
        return EXIT_FAIL
    if "warn" in statuses:
        return EXIT_WARN
    return EXIT_PASS
