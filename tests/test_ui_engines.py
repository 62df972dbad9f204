"""Several engines at once (issue 3), selecting and stopping one, quitting without freezing,
the engine's log_tail in the error panel, and the running model handed to the checks —
with `FakeEngine` (ui_helpers), so these run in seconds."""

from __future__ import annotations

import time
from types import SimpleNamespace

from textual.widgets import Static
from ui_helpers import (
    FakeEngine,
    aio,
    make_services,
    selected_engine,
    selected_stats,
    topology_of,
    until,
)

from rigtui.model.engine import EngineState
from rigtui.ui.app import RigApp
from rigtui.ui.engine_panel import EnginePanel


def _profiles() -> SimpleNamespace:
    def load_profile(name, topology=None):
        if name == "broken":
            raise ValueError("no such profile: broken")
        return SimpleNamespace(name=name, threads=2, is_demo=False)

    return SimpleNamespace(load_profile=load_profile)


def _services(topo, engines: list[FakeEngine], **fake_kw):
    def factory(profile, on_event):
        kw = dict(fake_kw)
        if profile.name == "second":  # the second engine's threads run on other CPUs
            kw["cpus"] = kw["thread_cpus"] = (2, 3)
        engines.append(FakeEngine(profile, on_event, **kw))
        return engines[-1]

    return make_services(topo, profiles=_profiles(), engine_factory=factory, mode="live")


def _text(widget: Static) -> str:
    return str(widget.render())


@aio
async def test_a_second_launch_starts_a_second_engine_and_s_x_act_on_the_selected(
    fixture_root,
):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    app = RigApp(_services(topo, engines, thread_cpus=(0, 1, 4)))
    async with app.run_test(size=(160, 50)) as pilot:
        app.launch_profile("first")
        assert await until(pilot, lambda: selected_stats(app).state is EngineState.READY)
        app.launch_profile("second")  # not refused, not a replacement
        assert await until(
            pilot, lambda: len(app.board.running()) == 2 and all(i.started for i in app.board.running())
        )
        await until(pilot, lambda: all(i.stats.state is EngineState.READY for i in app.board.running()))
        assert [e.profile.name for e in engines] == ["first", "second"]
        assert app.current.profile == "second"  # the newest launch is selected
        panel = app.screen.query_one(EnginePanel)
        listing = _text(panel.query_one("#engine-list", Static))
        assert "▸2 READY" in listing and " 1 READY" in listing, listing
        assert "second" in listing and "cpus 2-3" in listing, listing
        detail = _text(panel.query_one("#engine-detail", Static))
        assert "cpus 2-3 · threads there too" in detail, detail
        # the footer offers the switch key once two engines exist
        assert app.check_action("next_engine", ()) is True
        await pilot.press("s")
        assert app.current.profile == "first"
        detail = _text(panel.query_one("#engine-detail", Static))
        assert "cpus 0-1 · threads on 0-1,4" in detail, detail  # re-pinned compute threads
        await pilot.press("x")
        assert await until(pilot, lambda: engines[0].stopped)
        await pilot.pause(0.1)
        assert not engines[1].stopped  # only the selected engine stops
        assert app.current.profile == "second" and selected_engine(app) is engines[1]
        assert len(app.board.instances) == 1 and app.check_action("next_engine", ()) is False


@aio
async def test_quit_stops_engines_in_a_worker_without_freezing(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    # stops of 3 s each: wide margins, so a loaded CI machine's slow key press (it took over
    # 0.5 s there once) cannot pass for a UI that waited on a stop, nor the other way round
    app = RigApp(_services(topo, engines, stop_delay=3.0))
    async with app.run_test(size=(100, 30)) as pilot:
        app.launch_profile("first")
        app.launch_profile("second")
        assert await until(pilot, lambda: sum(1 for i in app.board.running() if i.started) == 2)
        t0 = time.monotonic()
        await pilot.press("q")
        assert time.monotonic() - t0 < 2.0  # the UI thread did not wait for a 3 s stop
        assert app.quitting and app.sub_title == "stopping…"
        assert app.is_running
        await pilot.pause(0.3)
        assert app.is_running  # still drawing while the engines stop (3 s each, in parallel)
        await until(pilot, lambda: not app.is_running, 10)
        assert time.monotonic() - t0 < 5.5  # in parallel: 3 s, not 2 x 3 s one after the other
    assert all(e.stopped for e in engines)
    assert app.return_code == 0


@aio
async def test_error_panel_shows_the_engines_log_tail(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    app = RigApp(_services(topo, engines, fail_load=True))
    async with app.run_test(size=(100, 30)) as pilot:
        app.launch_profile("first")
        assert await until(pilot, lambda: selected_stats(app).state is EngineState.FAILED)
        await pilot.press("r", "escape")
        await pilot.pause(0.1)
        text = _text(app.screen.query_one("#error-panel", Static))
        assert "Engine failed" in text
        assert "gguf: tensor data cut" in text  # read from engine.log_tail, not from events


@aio
async def test_checks_are_given_the_running_engines_model(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    calls: list[dict] = []

    def run_checks(topology, **kw):
        calls.append(kw)
        return []

    services = _services(topo, engines)
    services.run_checks = run_checks
    app = RigApp(services)
    async with app.run_test(size=(100, 30)) as pilot:
        app.launch_profile("first")
        assert await until(pilot, lambda: selected_stats(app).state is EngineState.READY)
        await pilot.press("c")
        # checks that started before the engine's model was known run again once it is (CI
        # caught the first run without it)
        assert await until(pilot, lambda: bool(calls) and "model_path" in calls[-1])
        assert calls[-1] == {"model_path": "/m.gguf", "profile_threads": 2, "profile": "first"}
        assert await until(pilot, lambda: "/m.gguf" in _text(
            app.screen.query_one("#checks-summary", Static)))  # fmt: skip
        summary = _text(app.screen.query_one("#checks-summary", Static))
        assert "/m.gguf" in summary


@aio
async def test_l_on_the_dashboard_launches_what_its_idle_panel_offers(fixture_root):
    # the idle engine panel says "l to launch"; the key did nothing on the dashboard itself
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    app = RigApp(_services(topo, engines))
    async with app.run_test(size=(120, 40)) as pilot:
        state = app.screen.query_one(EnginePanel).query_one("#engine-state", Static)
        assert "l to launch" in _text(state)
        await pilot.press("l")
        assert await until(pilot, lambda: selected_stats(app) is not None
                           and selected_stats(app).state is EngineState.READY)  # fmt: skip
        assert [e.profile.name for e in engines] == ["demo"]
        assert await until(pilot, lambda: "READY" in _text(state)), _text(state)
