"""Pure rendering helpers (heat map summarising, bars, sparklines) and the dashboard on a
2 x 96-core machine, NO_COLOR, a tiny terminal and resizing."""

from __future__ import annotations

from ui_helpers import aio, big_topology, engine_stats, make_services, synthetic_sample

from rigtui.ui.app import RigApp
from rigtui.ui.fmt import bar, load_glyph, short_cpu_list, spark, tok_s
from rigtui.ui.heat import socket_heat
from rigtui.ui.panels import SocketPanel


def test_heat_one_cell_per_core_when_it_fits():
    topo = big_topology(sockets=1, ccds=2, cores_per_ccd=4)
    per_cpu = {c: 50.0 for c in topo.cpu.online}
    rows = socket_heat(topo, 0, per_cpu, width=80)
    assert len(rows) == 1 and not rows[0].summarised
    assert [len(g) for g in rows[0].groups] == [4, 4]  # one group per L3 domain (CCD)
    assert "avg  50%" in rows[0].summary


def test_heat_summarises_a_96_core_socket_per_ccd():
    topo = big_topology()  # 2 sockets x 12 CCDs x 8 cores, SMT2 = 384 threads
    per_cpu = {c: (100.0 if c % 96 < 8 else 0.0) for c in topo.cpu.online}
    rows = socket_heat(topo, 0, per_cpu, width=76)
    assert len(rows) == 1 and rows[0].summarised
    assert len(rows[0].groups) == 12 and all(len(g) == 1 for g in rows[0].groups)
    assert rows[0].groups[0][0].level == "high"  # the busy CCD
    assert "max 100%" in rows[0].summary
    wide = socket_heat(topo, 0, per_cpu, width=160)
    assert not wide[0].summarised and sum(len(g) for g in wide[0].groups) == 96


def test_bars_sparks_and_lists():
    assert bar(0.5, 10) == "█████░░░░░"
    assert bar(None, 4) == "····"
    assert bar(2.0, 3) == "███"
    assert spark([0.0, 50.0, 100.0], 5, top=100.0) == "  ▁▅█"
    assert spark([None, 1.0], 2) == " █"
    assert load_glyph(None) == "·" and load_glyph(0) == "▁" and load_glyph(100) == "█"
    assert short_cpu_list([0, 1, 2, 3, 8, 9, 11]) == "0-3,8-9,11"
    assert tok_s(12.345) == "12.3 tok/s" and tok_s(None) == "– tok/s"


@aio
async def test_dashboard_of_a_192_core_box_stays_small_at_80x24():
    topo = big_topology()
    app = RigApp(make_services(topo))
    async with app.run_test(size=(80, 24)) as pilot:
        app.ingest_sample(synthetic_sample(topo, 1, engines=(engine_stats(),)))
        await pilot.pause()
        for panel in app.screen.query(SocketPanel):
            heat = str(panel.query_one(".heat").render())
            assert len(heat.splitlines()) == 1  # one line per node, not 384 bars
            assert "(per L3)" in heat
        await pilot.resize_terminal(300, 60)
        await pilot.pause()
        assert app.screen.query_one("#dash-body").has_class("wide")
        heat = str(app.screen.query(SocketPanel).first().query_one(".heat").render())
        assert "(per L3)" not in heat  # 96 cells fit in half of a 300-column terminal
        await pilot.resize_terminal(40, 12)  # tiny: still renders, nothing raises
        await pilot.pause()
        assert not app.screen.query_one("#dash-body").has_class("wide")


@aio
async def test_no_color_renders(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    topo = big_topology(sockets=1, ccds=2, cores_per_ccd=4)
    app = RigApp(make_services(topo))
    async with app.run_test(size=(80, 24)) as pilot:
        app.ingest_sample(synthetic_sample(topo, 2))
        await pilot.pause()
        assert app.no_color
        heat = str(app.screen.query(SocketPanel).first().query_one(".heat").render())
        assert "avg" in heat  # the glyphs carry the level without colour


@aio
async def test_parts_does_not_keep_a_lookup_made_before_the_children_mounted():
    # the dashboard looks its panels up once; a refresh that came before they were mounted
    # (a resize can) kept an empty list, and those panels were never drawn again
    from textual.app import App
    from textual.containers import Vertical
    from textual.widgets import Static

    from rigtui.ui.panels import parts

    class Box(App):
        def compose(self):
            yield Vertical(id="box")

    app = Box()
    async with app.run_test() as pilot:
        box = app.query_one("#box")
        assert parts(box, Static) == []
        await box.mount(Static("x"))
        await pilot.pause()
        found = parts(box, Static)
        assert len(found) == 1 and found[0] is box.query_one(Static)
        assert parts(box, Static) is found  # kept once there is something to keep


def test_engine_panel_says_how_much_of_the_model_is_resident():
    """A cold mmap'd model warms up: the share of the file in the page cache; without that
    figure, the share of its CPU-side weights the engine has mapped (the CPU_Mapped buffer of
    llama.cpp's log as the whole where GPU layers took the rest); nothing once whole."""
    from types import MappingProxyType

    from rigtui.engine.stats import fold
    from rigtui.model.engine import EngineState, EngineStats, Loaded, Placement
    from rigtui.ui.engine_panel import _resident

    gib = 1 << 30
    stats = fold(EngineStats(instance="a", profile="p", state=EngineState.STARTING),
                 Loaded("a", 0.0, load_s=1.0, model_path="/m.gguf", model_bytes=4 * gib,
                        n_params=None, n_ctx=512, n_threads=2, n_gpu_layers=0))  # fmt: skip

    def pl(per_node, buffers=None):
        return Placement("a", 0.0, pid=1, cpus_allowed=(0,), mems_allowed=(0,),
                         model_file_bytes_per_node=MappingProxyType(per_node),
                         anon_bytes_per_node=MappingProxyType({}),
                         model_buffers=MappingProxyType(buffers or {}))  # fmt: skip

    # the page cache's share of the file (mincore), whoever mapped it
    from dataclasses import replace

    assert "75% cached" in _resident(replace(pl({0: gib}), model_cached_bytes=3 * gib), stats)
    assert _resident(replace(pl({0: gib}), model_cached_bytes=4 * gib), stats) == ""
    # without it: what the engine has mapped (numa_maps)
    assert "25% mapped" in _resident(pl({0: gib // 2, 1: gib // 2}), stats)
    assert "$warning" in _resident(pl({0: gib}), stats)
    assert _resident(pl({0: 2 * gib, 1: 2 * gib}), stats) == ""
    gpu = fold(stats, Loaded("a", 0.0, load_s=1.0, model_path="/m.gguf", model_bytes=4 * gib,
                             n_params=None, n_ctx=512, n_threads=2, n_gpu_layers=20))  # fmt: skip
    assert _resident(pl({0: gib}), gpu) == ""  # the GPU layers' share of the file is unknown
    assert "50% mapped" in _resident(pl({0: gib}, {"CPU_Mapped": 2 * gib, "CUDA0": 2 * gib}), gpu)
