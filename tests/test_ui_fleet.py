"""The TUI's Fleet screen (f): one row per rig from `services.read_fleet`, refreshed, a dead rig
named as such, and what to do when no rig is listed."""

from __future__ import annotations

from textual.widgets import DataTable, Static
from ui_helpers import aio, make_services, topology_of

from rigtui.telemetry.fleet import RigRow
from rigtui.ui.app import RigApp
from rigtui.ui.screens.fleet import FleetScreen


def _rows() -> list[RigRow]:
    return [
        RigRow("epyc-1", "http://epyc-1:9101/metrics", True, sockets=2, tok_s=6.6, roofline_tok_s=11.9,
               traffic_bps=400e9, ceiling_bps=921.6e9, hottest_c=71.0, hottest="k10temp Tctl",
               failing_checks=("numa_balancing",)),
        RigRow("xeon-2", "http://xeon-2:9101/metrics", False, "[Errno 111] Connection refused"),
    ]  # fmt: skip


async def _fleet_screen(app, pilot) -> FleetScreen:
    await pilot.press("f")
    for _ in range(40):
        await pilot.pause(0.05)
        screen = app.screen
        if isinstance(screen, FleetScreen) and screen.rows:
            return screen
    raise AssertionError("the fleet screen never showed rows")


@aio
async def test_fleet_screen_shows_each_rig(fixture_root):
    calls = []

    def read():
        calls.append(1)
        return _rows(), None

    services = make_services(topology_of(fixture_root("8em64t-2s4c-asymcaches")))
    services.read_fleet = read
    app = RigApp(services)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await _fleet_screen(app, pilot)
        table = screen.query_one("#fleet-table", DataTable)
        assert table.row_count == 2
        epyc = [str(c) for c in table.get_row("epyc-1")]
        assert epyc[:3] == ["epyc-1", "up", "2"]
        assert epyc[3] == "6.6 / 11.9 (55%)" and epyc[4] == "400.0 / 921.6 GB/s (43%)"
        assert epyc[5] == "71°C k10temp Tctl" and epyc[6] == "numa_balancing"
        assert [str(c) for c in table.get_row("xeon-2")][:2] == ["xeon-2", "DOWN"]
        summary = str(screen.query_one("#fleet-summary", Static).render())
        assert "2 rigs, 1 up" in summary and "1 down" in summary
        n = len(calls)
        await pilot.press("g")
        await pilot.pause(0.3)
        assert len(calls) == n + 1


@aio
async def test_fleet_screen_without_rigs_says_how_to_list_them(fixture_root):
    services = make_services(topology_of(fixture_root("8em64t-2s4c-asymcaches")))
    services.read_fleet = lambda: ([], "no rigs: list them in ~/.config/rigtui/fleet.toml")
    app = RigApp(services)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f")
        await pilot.pause(0.5)
        assert "fleet.toml" in str(app.screen.query_one("#fleet-summary", Static).render())
