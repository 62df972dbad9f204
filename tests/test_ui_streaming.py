"""What streaming costs the UI (issue 13): a burst of tokens arrives as a few snapshots and
renders the same text as slow streaming; screens other than Run do not redraw per snapshot;
the app moves off the engines' CPUs (StayOff) and says where it runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from textual.widgets import Log, Static
from ui_helpers import FakeEngine, aio, make_services, selected_stats, topology_of, until

from rigtui.model.engine import EngineState
from rigtui.ui.app import RENDER_EVERY_S, RigApp
from rigtui.ui.engine_panel import EnginePanel

WAIT_S = 10.0  # a launch or a reply, on a loaded CI machine
WORDS = [f"word{k} " if k % 50 else f"line{k}\n" for k in range(1000)]


def _services(topo, engines: list[FakeEngine], **kw):
    def factory(profile, on_event):
        engines.append(FakeEngine(profile, on_event, reply=WORDS, **kw))
        return engines[-1]

    profiles = SimpleNamespace(load_profile=lambda name, topology=None: SimpleNamespace(
        name=name, threads=2, is_demo=False))  # fmt: skip
    return make_services(topo, profiles=profiles, engine_factory=factory, mode="live")


async def _reply_on_run_screen(topo, token_delay: float) -> tuple[str, int, int]:
    """(the Log's text after one reply, snapshots the app handled, Run screen redraws)."""
    engines: list[FakeEngine] = []
    app = RigApp(_services(topo, engines, token_delay=token_delay))
    async with app.run_test(size=(100, 30)) as pilot:
        app.launch_profile("demo")
        assert await until(pilot, lambda: selected_stats(app) is not None
                           and selected_stats(app).state is EngineState.READY, WAIT_S)  # fmt: skip
        await pilot.press("r")
        await pilot.pause(0.2)
        screen = app.screen
        counts = {"snapshots": 0, "redraws": 0}
        handled, redraw = app._apply, screen.refresh_data

        def count_snapshot(snap):
            counts["snapshots"] += 1
            return handled(snap)

        def count_redraw():
            counts["redraws"] += 1
            return redraw()

        app._apply = count_snapshot  # type: ignore[method-assign]
        screen.refresh_data = count_redraw  # type: ignore[method-assign]
        assert app.send_prompt("tell me")
        assert await until(pilot, lambda: app.current.last_done is not None, 30)
        await pilot.pause(0.3)
        log = screen.query_one("#transcript", Log)
        return "\n".join(log.lines), counts["snapshots"], counts["redraws"]


@aio
async def test_a_burst_of_1000_tokens_renders_the_same_text_as_slow_streaming(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    burst, burst_snapshots, burst_redraws = await _reply_on_run_screen(topo, 0.0)
    slow, slow_snapshots, _ = await _reply_on_run_screen(topo, 0.003)
    assert burst == slow
    assert burst.startswith("> tell me\nline0\nword1 word2 ") and "word999" in burst
    # 1,000 tokens reached the app as a handful of snapshots, each redraw bounded in rate
    assert burst_snapshots < 20, burst_snapshots
    assert burst_redraws < 20, burst_redraws
    # slow streaming (3 s and more): at most one snapshot per STREAM_EVERY_S, not per token
    assert slow_snapshots < 100, slow_snapshots


@aio
async def test_the_dashboard_does_not_redraw_per_streamed_snapshot(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    services = _services(topo, engines, token_delay=0.002)
    app = RigApp(services)
    async with app.run_test(size=(160, 50)) as pilot:
        app.launch_profile("demo")
        assert await until(pilot, lambda: selected_stats(app) is not None
                           and selected_stats(app).state is EngineState.READY, WAIT_S)  # fmt: skip
        screen = app.screen
        redraws = {"n": 0, "snapshots": 0}
        redraw, applied = screen.refresh_data, app._apply

        def count():
            redraws["n"] += 1
            return redraw()

        def count_snapshot(snap):
            redraws["snapshots"] += 1
            return applied(snap)

        screen.refresh_data = count  # type: ignore[method-assign]
        app._apply = count_snapshot  # type: ignore[method-assign]
        t0 = asyncio.get_running_loop().time()
        assert app.send_prompt("hello")
        assert await until(pilot, lambda: app.current.last_done is not None, 30)
        seconds = asyncio.get_running_loop().time() - t0
        # no sampler in this test: the streamed stats redraw at RENDER_EVERY_S (2 s and more
        # of tokens: a few redraws), plus the state changes (sent, generating, done) at once
        assert redraws["n"] <= seconds / RENDER_EVERY_S + 8, (redraws, seconds)
        await pilot.pause(0.6)
        panel = screen.query_one(EnginePanel)
        assert "tokens 1000" in str(panel.query_one("#engine-detail", Static).render())


@aio
async def test_the_app_is_moved_off_the_engine_cpus_and_says_where_it_runs(fixture_root):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    services = _services(topo, engines, cpus=(0, 1, 2, 3))
    calls: list[set[int]] = []

    def place_app(cpus: set[int]) -> str | None:
        calls.append(set(cpus))
        return "app on cpus 4-7, off the engines'" if cpus else None

    services.place_app = place_app
    app = RigApp(services)
    async with app.run_test(size=(160, 50)) as pilot:
        app.launch_profile("demo")
        assert await until(pilot, lambda: calls and calls[-1] == {0, 1, 2, 3}, WAIT_S)
        await pilot.pause(0.2)
        app._refresh_active()
        await pilot.pause(0.1)
        detail = str(app.screen.query_one(EnginePanel).query_one("#engine-detail", Static).render())
        assert "app on cpus 4-7, off the engines'" in detail
        n = len(calls)
        assert app.send_prompt("hi")  # streaming does not move the app again
        assert await until(pilot, lambda: app.current.last_done is not None, 30)
        assert len(calls) == n


STAY_OFF = textwrap.dedent("""
    import json, os, threading, time
    from rigtui.syscalls.process import StayOff
    kept_tid = []
    ready = threading.Event()
    def kept():
        kept_tid.append(threading.get_native_id()); ready.set(); time.sleep(5)
    threading.Thread(target=kept, daemon=True).start()
    ready.wait()
    allowed = sorted(os.sched_getaffinity(0))
    nice_before = os.getpriority(os.PRIO_PROCESS, kept_tid[0])
    stay = StayOff(keep=frozenset(kept_tid))
    out = {"allowed": allowed}
    out["off"] = stay.update({allowed[0]})
    out["main_after_off"] = sorted(os.sched_getaffinity(0))
    out["kept_after_off"] = sorted(os.sched_getaffinity(kept_tid[0]))
    late = []
    t = threading.Thread(target=lambda: late.append(sorted(os.sched_getaffinity(0))))
    t.start(); t.join()
    out["new_thread"] = late[0]
    out["all"] = stay.update(set(allowed))
    out["main_after_all"] = sorted(os.sched_getaffinity(0))
    out["nice_main"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    out["nice_kept"] = os.getpriority(os.PRIO_PROCESS, kept_tid[0])
    out["nice_before"] = nice_before
    out["none"] = stay.update(set())
    print(json.dumps(out))
""")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to move between")
def test_stay_off_moves_every_thread_but_the_spawner_and_nices_when_no_cpu_is_free():
    import json

    run = subprocess.run([sys.executable, "-c", STAY_OFF], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    out = json.loads(run.stdout)
    allowed = out["allowed"]
    assert out["main_after_off"] == allowed[1:]  # off the engine's CPU...
    assert out["new_thread"] == allowed[1:]  # ...and so are the threads started after
    assert out["kept_after_off"] == allowed  # the spawner keeps the engines' inheritance
    assert "off the engines'" in out["off"]
    # every CPU taken: back on all of them, at nice 10, and said so
    assert out["main_after_all"] == allowed
    assert "every CPU" in out["all"] and "nice 10" in out["all"]
    assert out["nice_main"] == max(10, out["nice_before"])
    assert out["nice_kept"] == out["nice_before"]  # the spawner's is left as it was
    assert out["none"] is None


def test_monitor_commands_take_app_cpus(tmp_path):
    from rigtui.cli import app_cpus, build_parser

    args = build_parser().parse_args(["sample", "--app-cpus", "0-1,3"])
    assert app_cpus(args) == {0, 1, 3}
    with pytest.raises(ValueError, match="CPU list"):
        app_cpus(build_parser().parse_args(["exporter", "--app-cpus", "two"]))
    assert app_cpus(build_parser().parse_args(["--app-cpus", "1"])) == {1}
    # RIGTUI_APP_PLACEMENT=off (set for this test process): nothing is moved or niced
    from rigtui.commands._common import place_monitor

    before = (os.sched_getaffinity(0), os.getpriority(os.PRIO_PROCESS, 0))
    assert place_monitor(build_parser().parse_args(["sample", "--app-cpus", "0"])) is None
    assert (os.sched_getaffinity(0), os.getpriority(os.PRIO_PROCESS, 0)) == before


def test_stream_wrap_keeps_lines_within_the_width_whatever_the_chunks():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rigtui.ui.fmt import StreamWrap

    text = ("the quick brown fox jumps over the lazy dog and keeps running\n" * 3
            + "a" * 75 + " tail words here\n")  # fmt: skip

    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=40),
           st.integers(min_value=10, max_value=40))  # fmt: skip
    def check(cuts, width):
        whole = StreamWrap(width).feed(text)
        w, pos, parts, k = StreamWrap(width), 0, [], 0
        while pos < len(text):
            cut = cuts[k % len(cuts)]
            parts.append(w.feed(text[pos : pos + cut]))
            pos, k = pos + cut, k + 1
        assert "".join(parts) == whole  # the chunking does not change the result
        assert all(len(line) <= width for line in whole.split("\n"))
        # nothing lost or added but line breaks (a word longer than the width is broken)
        assert whole.replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")

    check()
    out = StreamWrap(20).feed("one two three four five six seven\n")
    assert out == "one two three four \nfive six seven\n"


class _LoadsInStart(FakeEngine):
    """An engine whose events all come before start() returns (a fast load): the launch's own
    "started" snapshot is published after them."""

    def start(self) -> None:
        import time as _time

        from rigtui.model.engine import Loaded, Starting

        self._emit(Starting("fake", _time.time(), 999, self._stats.profile or ""), pid=999)
        self._emit(Loaded("fake", _time.time(), 0.1, "/m.gguf", 8_000_000, 1000, 512, 2, 0),
                   state=EngineState.READY, model_bytes=8_000_000, model_path="/m.gguf")  # fmt: skip


@aio
async def test_a_launch_that_loads_before_it_is_started_is_drawn_at_once(fixture_root):
    # The "started" snapshot (no event) was taken for a streamed flush and only redrawn
    # RENDER_EVERY_S later: the engine list read '' right after both engines were READY.
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    profiles = SimpleNamespace(load_profile=lambda name, topology=None: SimpleNamespace(
        name=name, threads=2, is_demo=False))  # fmt: skip
    services = make_services(topo, profiles=profiles, mode="live",
                             engine_factory=lambda p, cb: _LoadsInStart(p, cb))  # fmt: skip
    app = RigApp(services)
    async with app.run_test(size=(160, 50)) as pilot:
        app.launch_profile("first")
        assert await until(pilot, lambda: app.current is not None and app.current.started, WAIT_S)
        app.launch_profile("second")
        assert await until(pilot, lambda: len(app.board.running()) == 2
                           and all(i.started for i in app.board.running()), WAIT_S)  # fmt: skip
        await pilot.pause(0.05)  # the handler's redraw, well inside RENDER_EVERY_S
        listing = str(app.screen.query_one(EnginePanel).query_one("#engine-list", Static).render())
        assert "▸2 READY" in listing and " 1 READY" in listing, listing


@aio
async def test_the_transcript_jumps_half_a_page_instead_of_a_layout_per_line(monkeypatch):
    """A new line in a plain Log is a new virtual size: a reflow of the screen and a repaint of
    the whole Log, per line. The Transcript reflows once per half page and keeps the last
    line in view, with the same text."""
    from textual.app import App
    from textual.screen import Screen

    from rigtui.ui.transcript import Transcript

    layouts = {"n": 0}
    original = Screen._refresh_layout

    def counted(self, *args, **kwargs):
        layouts["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", counted)

    class Tiny(App):
        CSS = "Transcript { height: 20; overflow-x: hidden; scrollbar-visibility: hidden; }"

        def compose(self):
            yield Transcript(id="t")

    app = Tiny()
    async with app.run_test(size=(60, 24)) as pilot:
        log = app.query_one(Transcript)
        await pilot.pause(0.1)
        assert log.scrollable_content_region.height == 20
        layouts["n"] = 0
        for k in range(120):
            log.write(f"word{k} ")
            log.write(f"line {k}\n")
            await pilot.pause()
            last = len(log.lines) - 2  # the line just finished (an empty one follows it)
            assert log.scroll_y <= last < log.scroll_y + 20, (k, log.scroll_y, last)
        # 120 new lines: the first page without a layout, then a jump every 10 lines, not 120
        assert layouts["n"] <= 15, layouts
        assert log.lines[20] == "word20 line 20" and log.lines[119] == "word119 line 119"
        assert log.virtual_size.height % 10 == 0 and log.virtual_size.height >= len(log.lines)


@aio
async def test_streamed_snapshots_come_at_the_sample_rate_while_no_screen_shows_the_text(
    fixture_root,
):
    from rigtui.engine.supervisor import Streamed
    from rigtui.ui.app import STREAM_AWAY_S, STREAM_EVERY_S

    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    engines: list[FakeEngine] = []
    app = RigApp(_services(topo, engines, token_delay=0.003))  # 1,000 tokens: 3 s and more
    async with app.run_test(size=(160, 50)) as pilot:
        app.launch_profile("demo")
        assert await until(pilot, lambda: selected_stats(app) is not None
                           and selected_stats(app).state is EngineState.READY, WAIT_S)  # fmt: skip
        assert app.supervisor.stream_interval == STREAM_AWAY_S  # the dashboard: stats only
        streamed = {"n": 0}
        original = app.on_engines_changed

        def count(msg):
            streamed["n"] += isinstance(msg.event, Streamed)
            return original(msg)

        app.on_engines_changed = count  # type: ignore[method-assign]
        t0 = asyncio.get_running_loop().time()
        assert app.send_prompt("hello")
        assert await until(pilot, lambda: app.current.last_done is not None, 30)
        seconds = asyncio.get_running_loop().time() - t0
        assert streamed["n"] <= seconds / STREAM_AWAY_S + 2, (streamed, seconds)
        await pilot.press("r")
        await pilot.pause(0.2)
        assert app.supervisor.stream_interval == STREAM_EVERY_S  # the Run screen shows the text
        await pilot.press("escape", "d")  # out of the prompt, to the dashboard
        await pilot.pause(0.2)
        assert app.supervisor.stream_interval == STREAM_AWAY_S
