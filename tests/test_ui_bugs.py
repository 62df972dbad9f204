"""Regression tests for defects found in a code review of rigtui.ui (one test per bug)."""

from __future__ import annotations

from types import SimpleNamespace

from rigtui.model.engine import EngineState, EngineStats
from rigtui.ui.instances import Instance


def test_engine_log_lines_cannot_carry_terminal_escapes():
    # llama.cpp's log repeats strings from the GGUF file (model name, token texts): an ESC in
    # them reached the terminal through the run screen's "last engine log lines" (Textual strips
    # BEL/BS/CR from content but not ESC), where it can clear the screen or retitle the window.
    inst = Instance("1", "p", EngineStats("e", "p", EngineState.FAILED),
                    log_tail=("BOS token = 1 '\x1b[2J'", "ok line"),
                    event_lines=("exit: \x1b]0;pwned\x07 code 1",))  # fmt: skip
    lines = inst.log_lines(10)
    assert len(lines) == 3
    assert not any(ch in line for line in lines for ch in "\x1b\x07")
    assert lines[1] == "ok line"


def test_failed_engine_reason_cannot_carry_terminal_escapes():
    # last_error / the exit reason quote the engine's stderr, as the log lines do.
    from rigtui.ui.engine_panel import EnginePanel

    stats = EngineStats("e", "p", EngineState.FAILED, last_error="bad model '\x1b[2J'")
    inst = Instance("1", "p", stats)
    text = EnginePanel._state_text(None, inst, None, None, False)  # type: ignore[arg-type]
    assert "\x1b" not in text and "bad model" in text


def test_an_engine_started_while_the_app_quits_is_stopped_not_leaked(fixture_root):
    # q during a launch (the engine still spawning: no Instance.engine yet) exits at once; the
    # launch worker then started the engine and handed it to an app that was gone
    # (call_from_thread raised), so the child, in its own session, outlived the UI.
    import asyncio
    import threading
    import time

    from ui_helpers import FakeEngine, make_services, topology_of

    from rigtui.ui.app import RigApp

    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    release = threading.Event()
    engines: list[FakeEngine] = []

    def factory(profile, on_event):
        release.wait(2)  # the app (quitting) waits for its workers: keep this short
        engines.append(FakeEngine(profile, on_event))
        return engines[-1]

    profiles = SimpleNamespace(
        load_profile=lambda name, topology=None: SimpleNamespace(name=name, is_demo=False)
    )
    services = make_services(topo, profiles=profiles, engine_factory=factory, mode="live")
    app = RigApp(services)

    async def go() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            app.launch_profile("first")
            await pilot.pause(0.2)
            await pilot.press("q")
            for _ in range(40):
                if not app.is_running:
                    break
                await pilot.pause(0.05)

    asyncio.run(go())
    release.set()
    for _ in range(100):
        if engines and engines[0].stopped:
            break
        time.sleep(0.05)
    assert engines and engines[0].stopped
