"""The app's screens, one Textual mode each: the one registry.

A new screen is one module plus one `ScreenEntry` here; its key binding, footer label, command
palette entry and help-screen line are all derived from it (`bindings`, `help_rows`, and the
app's `get_system_commands`). Modules are imported on first use: only the dashboard is needed for the first
frame.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    name: str  # the mode's name ("dashboard")
    key: str  # the key that shows it
    label: str  # its footer label (short: 80 columns hold all of them)
    module: str
    cls: str
    summary: str  # the command palette's line
    shows: str  # the help screen's line: what it shows and its own keys
    footer: bool = True  # False: in the help screen and the palette only

    @property
    def title(self) -> str:
        return self.name.title()


REGISTRY: tuple[ScreenEntry, ...] = (
    ScreenEntry("dashboard", "d", "Dash", "rigtui.ui.screens.dashboard", "DashboardScreen",
                "live view of sockets, GPUs and the engines",
                "sockets (per-core load by node/L3, memory traffic vs ceiling, memory per "
                "node, temps), GPUs, and the engine (tok/s, TTFT, roofline)"),
    ScreenEntry("topology", "t", "Topo", "rigtui.ui.screens.topology", "TopologyScreen",
                "sockets, NUMA nodes, caches, DIMMs, GPUs",
                "sockets → NUMA nodes → L3 → cores/threads, DIMMs, GPUs"),
    ScreenEntry("profiles", "p", "Profiles", "rigtui.ui.screens.profiles", "ProfilesScreen",
                "list, validate, edit and launch profiles",
                "l launch · v validate · e edit · n new · y duplicate · Del delete"),
    ScreenEntry("run", "r", "Run", "rigtui.ui.screens.run", "RunScreen",
                "prompt the selected engine",
                "type a prompt, Enter sends · Esc leaves the prompt · ctrl+k cancels"),
    ScreenEntry("checks", "c", "Checks", "rigtui.ui.screens.checks", "ChecksScreen",
                "sanity checks of this machine", "sanity checks · g re-runs"),
    ScreenEntry("bench", "b", "Bench", "rigtui.ui.screens.bench", "BenchScreen",
                "memory bandwidth results",
                "memory bandwidth per node and the node matrix · m measures"),
    ScreenEntry("fleet", "f", "Fleet", "rigtui.ui.screens.fleet", "FleetScreen",
                "several rigs, from their exporters or a Prometheus",
                "several rigs (their exporters, or a Prometheus) from fleet.toml · g re-reads",
                footer=False),
)  # fmt: skip


def _factory(entry: ScreenEntry) -> Callable[[], Screen]:
    def make() -> Screen:
        return getattr(importlib.import_module(entry.module), entry.cls)()

    return make


SCREENS: dict[str, Callable[[], Screen]] = {e.name: _factory(e) for e in REGISTRY}


def bindings() -> list:
    """One binding per screen: its key switches to it (footer or not, per the entry)."""
    from textual.binding import Binding

    return [Binding(e.key, f"screen('{e.name}')", e.label, show=e.footer,
                    tooltip=f"{e.title}: {e.summary}") for e in REGISTRY]  # fmt: skip


def help_rows() -> list[tuple[str, str, str]]:
    """(key, title, what it shows) per screen, for the help screen."""
    return [(e.key, e.title, e.shows) for e in REGISTRY]
