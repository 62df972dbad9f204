"""SVG snapshots of every screen on fixture machines at 80x24 and 160x50 (the dashboard also at
200x60, on 1-, 2-, 4- and 8-socket machines).

Deterministic: samples are constructed (ui_helpers.synthetic_sample) or replayed from
tests/data/replay-vm-demo.ndjson (this VM with the demo engine), checks run on the fixture tree,
bench results are constructed, the engine is the scripted FakeEngine; no clock text is drawn.
Update after an intended change with `pytest tests/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from ui_helpers import (
    FakeEngine,
    make_services,
    selected_stats,
    synthetic_sample,
    topology_of,
    with_gpu,
)

from rigtui.commands.tui import _checks
from rigtui.hostfs import HostFS
from rigtui.model.analysis import LatencyCell, MemBandwidth, MemBenchResult
from rigtui.ui.app import RigApp
from rigtui.ui.services import Services

REPLAY = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"
MACHINES = [
    "32em64t-gpu",
    "8em64t-2s4c-asymcaches",
    "16amd64-8n2c",
    "vm-replay",
]
SIZES = [(80, 24), (160, 50)]
# the dashboard on 1 (the VM), 2, 4 and 8 sockets, at the three sizes users run it at
DASH_MACHINES = [*MACHINES, "16em64t-4s2c2t"]
DASH_SIZES = [*SIZES, (200, 60)]

MINE = """# tuned for this box
description = "demo model on node 0"
model = "demo:8M"
ctx = "big"  # wrong type: shown inline
nodes = [0]
memory_policy = "bind"
"""


def _membench() -> MemBenchResult:
    def bw(label: str, c: tuple[int, ...], m: tuple[int, ...], read: float) -> MemBandwidth:
        theory = 51.2 * len(set(c))
        return MemBandwidth(label, c, m, 4, 2**27, read, read * 0.85, theory,
                            "test: 4 ch DDR4-1600", copy_gbs=read * 0.7)  # fmt: skip

    lat = tuple(LatencyCell(c, m, 0, 92.4 if c == m else 141.8, 2**28, 10**6)
                for c in (0, 1) for m in (0, 1))  # fmt: skip

    return MemBenchResult(
        t=0.0, kernel="c:cc -O3", fingerprint={},
        nodes=(bw("node 0", (0,), (0,), 38.5), bw("node 1", (1,), (1,), 37.9)),
        sockets=(bw("socket 0", (0,), (0,), 38.5), bw("socket 1", (1,), (1,), 37.9)),
        matrix=(bw("0->0", (0,), (0,), 38.5), bw("0->1", (0,), (1,), 21.2),
                bw("1->0", (1,), (0,), 20.8), bw("1->1", (1,), (1,), 37.9)),
        machine=bw("machine", (0, 1), (0, 1), 75.1), seconds=12.5,
        interleaved=bw("interleaved", (0, 1), (0, 1), 52.3), latency=lat,
        latency_note="idle latency: one thread chasing a random cycle of 64 B lines in 256 MiB "
                     "per memory node, ns per load",
    )  # fmt: skip


def _app(machine: str, fixture_root) -> tuple[RigApp, list]:
    if machine == "vm-replay":
        from rigtui.telemetry.record import replay

        topo, samples_iter = replay(REPLAY)
        samples = list(samples_iter)
        checks = None
    else:
        root = fixture_root(machine.replace("-gpu", "-2n8c+dax+nvme+mic+dimms"))
        topo = topology_of(root)
        if machine.endswith("-gpu"):
            topo = with_gpu(topo)
        samples = [synthetic_sample(topo, i) for i in range(30)]
        checks = _checks(HostFS(str(root)))
    services = make_services(
        topo,
        mode="replay" if machine == "vm-replay" else "captured",
        mode_detail=machine,
        run_checks=checks,
        load_membench=_membench if machine != "vm-replay" else (lambda: None),
    )
    return RigApp(services), samples


@pytest.mark.parametrize("size", DASH_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("machine", DASH_MACHINES)
def test_dashboard(snap_compare, fixture_root, machine, size):
    test_machine_screens(snap_compare, fixture_root, machine, "dashboard", size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("screen", ["topology"])
def test_machine_screens(snap_compare, fixture_root, machine, screen, size):
    app, samples = _app(machine, fixture_root)

    async def before(pilot):
        for s in samples:
            app.ingest_sample(s)
        if screen != "dashboard":
            await pilot.press(screen[0])
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", ["checks", "bench"])
def test_analysis_screens(snap_compare, fixture_root, screen, size):
    app, _ = _app("8em64t-2s4c-asymcaches", fixture_root)

    async def before(pilot):
        await pilot.press(screen[0])
        for _ in range(50):
            await pilot.pause(0.05)
            if screen == "checks" and app.screen.query_one("#checks-table").row_count:
                break
            if screen == "bench" and app.screen.bench_result is not None:
                break
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("form", [False, True], ids=["list", "edit-form"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_profiles_screen(snap_compare, fixture_root, tmp_path, monkeypatch, size, form):
    from rigtui.commands.tui import profiles_api
    from rigtui.model.profile import ProfileRef

    monkeypatch.chdir(tmp_path)  # relative paths: the status line shows no temp dir
    Path("profiles").mkdir()
    Path("profiles/mine.toml").write_text(MINE)
    Path("profiles/small.toml").write_text('description = "ok"\nmodel = "demo:8M"\nctx = 256\n')
    real = profiles_api()
    api = types.SimpleNamespace(**vars(real))
    api.list_profiles = lambda: [
        ProfileRef("mine", "profiles/mine.toml", "user"),
        ProfileRef("small", "profiles/small.toml", "user"),
    ]
    app, _ = _app("8em64t-2s4c-asymcaches", fixture_root)
    app.services.profiles = api

    async def before(pilot):
        await pilot.press("p")
        for _ in range(50):
            await pilot.pause(0.05)
            if "error" in str(app.screen.query_one("#profile-status").render()):
                break
        if form:
            await pilot.press("e")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("fail", [False, True], ids=["reply", "failed"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen(snap_compare, fixture_root, size, fail):
    topo = topology_of(fixture_root("8em64t-2s4c-asymcaches"))
    profile = types.SimpleNamespace(name="demo", is_demo=False)
    api = types.SimpleNamespace(load_profile=lambda name, topology=None: profile)
    services = Services(
        topology=topo,
        source=None,
        mode="live",
        profiles=api,
        engine_factory=lambda p, on_event: FakeEngine(p, on_event, fail_load=fail),
    )
    app = RigApp(services)

    async def before(pilot):
        await pilot.press("r")
        app.launch_profile("demo")
        for _ in range(50):
            await pilot.pause(0.05)
            if selected_stats(app) and selected_stats(app).state.value in ("ready", "failed"):
                break
        if not fail:
            app.screen.query_one("#prompt").value = "Why is token generation memory bound?"
            await pilot.press("enter")
            for _ in range(50):
                await pilot.pause(0.05)
                if selected_stats(app).total_gen:
                    break
        await pilot.press("escape")
        await pilot.pause(0.3)  # the throttled redraw

    assert snap_compare(app, terminal_size=size, run_before=before)
