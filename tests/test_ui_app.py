"""Pilot tests of the app's screens and keys on fixture machines (no live engine)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static, Tree
from ui_helpers import (
    aio,
    engine_stats,
    make_services,
    selected_stats,
    synthetic_sample,
    topology_of,
)

from rigtui.model.engine import EngineState
from rigtui.ui.app import RigApp
from rigtui.ui.engine_panel import EnginePanel
from rigtui.ui.panels import SocketPanel

TWO_SOCKET = "8em64t-2s4c-asymcaches"
FOUR_NODE = "16amd64-8n2c"


def _text(widget: Static) -> str:
    return str(widget.render())


@pytest.fixture
def two_socket(fixture_root):
    return topology_of(fixture_root(TWO_SOCKET))


@aio
async def test_dashboard_shows_a_panel_per_socket_and_the_samples(two_socket):
    samples = [synthetic_sample(two_socket, i) for i in range(3)]
    app = RigApp(make_services(two_socket, samples=samples))
    async with app.run_test(size=(100, 40)) as pilot:
        for _ in range(40):  # three polls at 0.05 s, then the replay ends
            await pilot.pause(0.05)
            if app.source_note:
                break
        assert len(app.history) == 3
        panels = app.screen.query(SocketPanel)
        assert [p.socket_id for p in panels] == [s.id for s in two_socket.sockets]
        heat = _text(panels.first().query_one(".heat", Static))
        assert "avg" in heat and "max" in heat
        traffic = _text(panels.first().query_one(".traffic-label", Static))
        assert "GB/s" in traffic and "test:constructed" in traffic
        spark = _text(panels.first().query_one(".traffic", Static))
        rows = spark.splitlines()
        # one continuous R+W graph, labelled on its top row (the label line has the split)
        assert [r[:4].strip() for r in rows if r[:4].strip()] == ["R+W"] and rows[0].startswith("R+W")
        bottom = rows[-1]
        assert bottom[4:] == bottom[4:].rstrip()  # newest sample in the rightmost column
        assert len(bottom[4:].strip()) == 3  # one column per sample
        host = _text(app.screen.query_one("#host-line", Static))
        assert "2 sockets" in host
        assert "end of recording" in (app.source_note or "")


@aio
async def test_every_screen_key_switches_and_renders(two_socket):
    app = RigApp(make_services(two_socket))
    async with app.run_test(size=(80, 24)) as pilot:
        for key, mode in [
            ("t", "topology"),
            ("p", "profiles"),
            ("c", "checks"),
            ("b", "bench"),
            ("r", "run"),
        ]:
            if mode == "topology" or app.current_mode != "run":
                await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode, key
            if mode == "run":  # the prompt has focus: Esc leaves it so keys work again
                await pilot.press("escape")
        await pilot.press("d")
        assert app.current_mode == "dashboard"
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        assert "Dashboard" in _text(app.screen.query_one(Static))
        await pilot.press("escape")
        assert app.current_mode == "dashboard" and type(app.screen).__name__ == "DashboardScreen"


@aio
async def test_topology_tree_lists_sockets_nodes_and_l3(fixture_root):
    topo = topology_of(fixture_root(FOUR_NODE))
    app = RigApp(make_services(topo))
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("t")
        await pilot.pause()
        tree = app.screen.query_one(Tree)
        labels = []

        def walk(node):
            labels.append(str(node.label))
            for child in node.children:
                walk(child)

        walk(tree.root)
        joined = "\n".join(labels)
        assert joined.count("NUMA node") == len(topo.nodes)
        assert sum(1 for label in labels if label.startswith("Socket ")) == len(topo.sockets)
        assert "dist 10" in joined
        await pilot.press("w")  # collapse
        await pilot.press("e")  # expand all
        assert all(n.is_expanded for n in tree.root.children if n.children)


@aio
async def test_palette_has_a_command_for_every_screen_and_stop(two_socket):
    app = RigApp(make_services(two_socket))
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for name in ("Dashboard", "Topology", "Profiles", "Run", "Checks", "Bench"):
            assert f"Go to {name}" in titles
        assert "Stop engine" in titles and "Help" in titles
        await pilot.press("p")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for what in ("Launch", "Validate", "Edit", "New", "Duplicate", "Delete"):
            assert any(t.startswith("Profiles: " + what) for t in titles), what


@aio
async def test_replay_engine_stats_fill_the_engine_panel(two_socket):
    samples = [synthetic_sample(two_socket, i, engines=(engine_stats(i),)) for i in range(4)]
    app = RigApp(make_services(two_socket, samples=samples, mode="replay"))
    async with app.run_test(size=(100, 40)) as pilot:
        for _ in range(60):
            await pilot.pause(0.05)
            if app.source_note:
                break
        assert selected_stats(app) is not None and selected_stats(app).state is EngineState.READY
        panel = app.screen.query_one(EnginePanel)
        gen = _text(panel.query_one("#gen-label", Static))
        assert "tok/s" in gen and "43.0 tok/s" in gen  # 40 + (3 % 7)
        assert len(_text(panel.query_one("#gen-spark", Static)).strip()) == 4
        detail = _text(panel.query_one("#engine-detail", Static))
        assert "roofline" in detail


@aio
async def test_hidden_screens_do_not_render(two_socket, monkeypatch):
    calls = []
    app = RigApp(make_services(two_socket))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        await pilot.pause()
        from rigtui.ui.screens.dashboard import DashboardScreen

        monkeypatch.setattr(DashboardScreen, "refresh_data", lambda self: calls.append(1))
        app.ingest_sample(synthetic_sample(two_socket, 1))
        assert calls == []  # dashboard is hidden
        await pilot.press("d")
        await pilot.pause()
        assert calls  # rendered on resume


@aio
async def test_checks_and_bench_screens_show_results(two_socket):
    from rigtui.model.analysis import Check, Evidence, MemBandwidth, MemBenchResult

    checks = [
        Check(
            "thp",
            "Transparent huge pages",
            "pass",
            "madvise",
            (Evidence("f", "madvise"),),
            "w",
            None,
        ),
        Check("numa_balancing", "NUMA balancing", "warn", "on", (), "moves pages", "sysctl x=0"),
    ]

    def bw(label, c, m, read):
        return MemBandwidth(label, (c,), (m,), 4, 2**26, read, read * 0.8, 50.0, "test")

    result = MemBenchResult(
        t=0.0, kernel="numpy", fingerprint={}, nodes=(bw("node 0", 0, 0, 40.0), bw("node 1", 1, 1, 39.0)),
        sockets=(), matrix=(bw("0->0", 0, 0, 40.0), bw("0->1", 0, 1, 20.0), bw("1->0", 1, 0, 21.0),
                            bw("1->1", 1, 1, 39.0)), machine=None, seconds=3.0,
    )  # fmt: skip
    app = RigApp(
        make_services(two_socket, run_checks=lambda topo: checks, load_membench=lambda: result)
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("c")
        await pilot.pause(0.2)
        table = app.screen.query_one("#checks-table", DataTable)
        assert table.row_count == 2
        assert "WARN" in str(table.get_row_at(0)[0])  # warnings sort before passes
        assert "sysctl x=0" in _text(app.screen.query_one("#check-detail", Static))
        await pilot.press("b")
        await pilot.pause(0.2)
        matrix = app.screen.query_one("#bench-matrix", DataTable)
        assert matrix.row_count == 2
        assert [str(v) for v in matrix.get_row_at(0)] == ["n0", "40.0", "20.0"]
        assert "40.0 of 50 GB/s" in _text(app.screen.query_one("#bench-plot", Static))
