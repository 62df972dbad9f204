"""The dashboard uses its rows (issue 13): on a wide terminal the engine spans the width and the
sockets sit side by side in socket order; when the socket panels do not fit, one line per
socket (SocketTable) — an 8-socket box fits 80x24 whole."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from ui_helpers import aio, make_services, synthetic_sample, topology_of

from rigtui.ui.app import RigApp
from rigtui.ui.panels import SocketPanel
from rigtui.ui.socket_table import SocketTable, load_strip


async def _dashboard(root, size: tuple[int, int]):
    topo = topology_of(root)
    assert topo.sockets
    app = RigApp(make_services(topo))
    ctx = app.run_test(size=size)
    pilot = await ctx.__aenter__()
    for i in range(30):
        app.ingest_sample(synthetic_sample(topo, i))
    await pilot.pause(0.2)
    return app, pilot, ctx, topo


@aio
async def test_wide_dashboard_puts_the_sockets_side_by_side_in_order_under_the_engine(fixture_root):
    app, pilot, ctx, topo = await _dashboard(fixture_root("8em64t-2s4c-asymcaches"), (160, 50))
    try:
        engine = app.screen.query_one("#engine").region
        first, second = sorted(s.id for s in topo.sockets)
        s0, s1 = (app.screen.query_one(f"#socket-{i}", SocketPanel).region for i in (first, second))
        assert engine.width > 150  # across the whole width
        assert s0.y == s1.y > engine.y and s0.x < s1.x  # one row, socket 0 on the left
        assert not app.screen.query_one(SocketTable).display
    finally:
        await ctx.__aexit__(None, None, None)


@pytest.mark.parametrize("machine", ["16amd64-8n2c", "16em64t-4s2c2t"])
@aio
async def test_sockets_that_do_not_fit_80x24_become_one_line_each(fixture_root, machine):
    app, pilot, ctx, topo = await _dashboard(fixture_root(machine), (80, 24))
    try:
        table = app.screen.query_one(SocketTable)
        assert table.display and not any(p.display for p in app.screen.query(SocketPanel))
        text = str(table.query_one("#socket-rows", Static).render())
        rows = [line for line in text.splitlines() if line.startswith("S")]
        assert [r.split()[0] for r in rows] == [f"S{s.id}" for s in topo.sockets]
        assert table.region.bottom <= 23  # all of it on screen, above the footer
        assert all("%" in r and "/" in r for r in rows)  # load and memory on every line
    finally:
        await ctx.__aexit__(None, None, None)
    # the same machine on a big terminal: its panels again
    app, pilot, ctx, topo = await _dashboard(fixture_root(machine), (200, 60))
    try:
        assert not app.screen.query_one(SocketTable).display
        assert all(p.display for p in app.screen.query(SocketPanel))
    finally:
        await ctx.__aexit__(None, None, None)


def test_load_strip_folds_cores_into_at_most_twelve_means():
    assert load_strip([10.0, 20.0]) == [10.0, 20.0]
    folded = load_strip([float(i) for i in range(24)])
    assert len(folded) == 12 and folded[0] == 0.5 and folded[-1] == 22.5
    assert load_strip([None, None, 50.0], cells=2) == [None, 50.0]
