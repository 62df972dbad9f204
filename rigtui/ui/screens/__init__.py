"""The app's screens, one Textual mode each (d t p r c b f switch between them).

Imported on first use: only the dashboard is needed for the first frame.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from textual.screen import Screen

_WHERE = {
    "dashboard": ("rigtui.ui.screens.dashboard", "DashboardScreen"),
    "topology": ("rigtui.ui.screens.topology", "TopologyScreen"),
    "profiles": ("rigtui.ui.screens.profiles", "ProfilesScreen"),
    "run": ("rigtui.ui.screens.run", "RunScreen"),
    "checks": ("rigtui.ui.screens.checks", "ChecksScreen"),
    "bench": ("rigtui.ui.screens.bench", "BenchScreen"),
    "fleet": ("rigtui.ui.screens.fleet", "FleetScreen"),
}


def _factory(module: str, cls: str) -> Callable[[], Screen]:
    def make() -> Screen:
        return getattr(importlib.import_module(module), cls)()

    return make


SCREENS: dict[str, Callable[[], Screen]] = {
    name: _factory(*where) for name, where in _WHERE.items()
}
