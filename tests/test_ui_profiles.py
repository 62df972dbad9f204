"""Profiles screen with the real profiles package in a temporary config dir: show with inline
errors, edit and save (comments kept), create from the machine, duplicate, delete, launch."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static
from ui_helpers import FakeEngine, aio, make_services, selected_engine, selected_stats, topology_of

from rigtui.commands.tui import profiles_api
from rigtui.ui.app import RigApp
from rigtui.ui.modals import ConfirmModal, FormModal
from rigtui.ui.screens.profiles import ProfilesScreen, form_value_to_toml, render_profile

MINE = """# my tuned profile
description = "mine"
model = "demo:8M"  # the small synthetic model
ctx = 256
# threads = 4

[sampling]
max_tokens = 16
"""
BROKEN = """description = "broken"
model = "demo:8M"
ctx = "lots"
"""


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = tmp_path / "config" / "rigtui" / "profiles"
    d.mkdir(parents=True)
    (d / "mine.toml").write_text(MINE)
    (d / "broken.toml").write_text(BROKEN)
    return d


@pytest.fixture
def topo(fixture_root):
    return topology_of(fixture_root("8em64t-2s4c-asymcaches"))


async def _open(app, pilot, name: str):
    await pilot.press("p")
    await pilot.pause(0.2)
    screen = app.screen
    assert isinstance(screen, ProfilesScreen)
    row = next(i for i, r in enumerate(screen.refs) if r.name == name)
    screen.query_one(DataTable).move_cursor(row=row)
    for _ in range(40):
        await pilot.pause(0.05)
        if (
            screen.current is not None
            and screen.current.name == name
            and "·" in str(screen.query_one("#profile-status", Static).render())
        ):
            break
    return screen


@aio
async def test_list_and_inline_errors(cfg, topo):
    app = RigApp(make_services(topo, profiles=profiles_api()))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(app, pilot, "broken")
        names = [r.name for r in screen.refs]
        assert "mine" in names and "demo" in names  # user and shipped example
        text = str(screen.query_one("#profile-text", Static).render())
        assert "3 ▌ctx" in text and "↳ ctx:" in text  # the issue sits under line 3
        assert "error" in str(screen.query_one("#profile-status", Static).render())


@aio
async def test_edit_and_save_keeps_comments(cfg, topo):
    app = RigApp(make_services(topo, profiles=profiles_api()))
    async with app.run_test(size=(100, 40)) as pilot:
        await _open(app, pilot, "mine")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert isinstance(app.screen, FormModal)
        threads = app.screen.query_one("#field-threads", Input)
        threads.value = "3"
        ctx = app.screen.query_one("#field-ctx", Input)
        ctx.value = "512"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        saved = (cfg / "mine.toml").read_text()
        assert "threads = 3" in saved and "ctx = 512" in saved
        assert "# my tuned profile" in saved and "# the small synthetic model" in saved
        assert "max_tokens = 16" in saved  # untouched keys stay


@aio
async def test_saving_a_read_only_profile_says_so_and_leaves_it(cfg, topo):
    path = cfg / "mine.toml"
    path.chmod(0o444)
    notes: list[str] = []
    app = RigApp(make_services(topo, profiles=profiles_api()))
    async with app.run_test(size=(100, 40)) as pilot:
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        await _open(app, pilot, "mine")
        await pilot.press("e")
        await pilot.pause(0.1)
        app.screen.query_one("#field-threads", Input).value = "3"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
    assert path.read_text() == MINE and (path.stat().st_mode & 0o777) == 0o444
    assert any("read-only" in n and "Could not save" in n for n in notes), notes
    assert not any(n.startswith("Saved") for n in notes)


@aio
async def test_bad_form_value_is_refused(cfg, topo):
    app = RigApp(make_services(topo, profiles=profiles_api()))
    async with app.run_test(size=(100, 40)) as pilot:
        await _open(app, pilot, "mine")
        await pilot.press("e")
        await pilot.pause(0.1)
        app.screen.query_one("#field-ctx", Input).value = "big"
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert isinstance(app.screen, FormModal)  # reopened with the text entered
        assert app.screen.query_one("#field-ctx", Input).value == "big"
        assert "ctx = 256" in (cfg / "mine.toml").read_text()


@aio
async def test_new_duplicate_delete(cfg, topo):
    api = profiles_api()
    if not hasattr(api, "new_profile_text"):
        pytest.skip("rigtui.profiles has no new_profile_text yet")
    app = RigApp(make_services(topo, profiles=api))
    async with app.run_test(size=(100, 40)) as pilot:
        await _open(app, pilot, "mine")
        await pilot.press("n")
        await pilot.pause(0.1)
        app.screen.query_one("#field-name", Input).value = "fresh"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert (cfg / "fresh.toml").is_file()
        assert "demo:8M" in (cfg / "fresh.toml").read_text()

        await _open(app, pilot, "mine")
        await pilot.press("y")
        await pilot.pause(0.1)
        app.screen.query_one("#field-name", Input).value = "mine2"
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert (cfg / "mine2.toml").read_text().startswith("# my tuned profile")

        await _open(app, pilot, "mine2")
        await pilot.press("D")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert (cfg / "mine2.toml").exists()
        await pilot.press("D")
        await pilot.pause(0.1)
        await pilot.press("y")
        await pilot.pause(0.3)
        assert not (cfg / "mine2.toml").exists()


@aio
async def test_shipped_examples_are_not_edited_in_place(cfg, topo):
    app = RigApp(make_services(topo, profiles=profiles_api()))
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(app, pilot, "demo")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ProfilesScreen)  # no form for an example
        await pilot.press("D")
        await pilot.pause(0.1)
        assert isinstance(app.screen, ProfilesScreen)


@aio
async def test_launch_and_stop_from_profiles_with_a_fake_engine(cfg, topo):
    engines: list[FakeEngine] = []

    def factory(profile, on_event):
        engines.append(FakeEngine(profile, on_event))
        return engines[-1]

    app = RigApp(make_services(topo, profiles=profiles_api(), engine_factory=factory, mode="live"))
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(app, pilot, "mine")
        await pilot.press("l")
        for _ in range(40):
            await pilot.pause(0.05)
            if selected_stats(app) and selected_stats(app).state.value == "ready":
                break
        assert selected_stats(app).state.value == "ready"
        assert engines and engines[0].profile.name == "mine"
        await pilot.press("x")
        await pilot.pause(0.2)
        assert engines[0].stopped and selected_engine(app) is None


def test_form_values_and_render():
    assert form_value_to_toml("int", " 12 ") == 12
    assert form_value_to_toml("ints", "0, 1") == [0, 1]
    assert form_value_to_toml("str", "") is None
    with pytest.raises(ValueError, match="whole number"):
        form_value_to_toml("int", "x")

    class Issue:
        file, line, key, message, hint, severity = (
            "f",
            2,
            "ctx",
            "must be a number",
            "ctx = 2048",
            "error",
        )

    out = render_profile("a = 1\nctx = 'x'\n", [Issue()])
    lines = out.splitlines()
    assert "ctx" in lines[1] and "↳" in lines[2] and "hint: ctx = 2048" in lines[3]


def test_every_shipped_profile_renders_as_valid_markup():
    """The preview is Textual markup: a line like `override_tensors = ["exps=CPU"]` must show as
    written (textual.markup.escape leaves `["` alone and the parser then raised)."""
    from textual.content import Content

    from rigtui.profiles.store import example_dir

    for path in example_dir().glob("*.toml"):
        text = path.read_text()
        plain = Content.from_markup(render_profile(text, [])).plain
        assert '["exps=CPU"]' in plain or "exps" not in text, path.name
        assert all(line.split(" ", 1)[-1].strip() in plain for line in text.splitlines()[:5])


@aio
async def test_the_profile_shows_its_plan_on_this_machine(cfg, topo, fixture_root):
    """Under the file: `rigtui plan --profile`'s fit and ceilings; a demo model not generated
    yet is planned once it exists (selecting a profile does not generate gigabytes)."""
    from rigtui.commands.tui import _plan_profile
    from rigtui.engine.demo_model import ensure_demo_model
    from rigtui.hostfs import HostFS

    fs = HostFS(str(fixture_root("8em64t-2s4c-asymcaches")))
    app = RigApp(make_services(topo, profiles=profiles_api(), plan_profile=_plan_profile(fs, topo)))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open(app, pilot, "mine")

        async def plan_text() -> str:
            for _ in range(60):
                await pilot.pause(0.05)
                text = str(screen.query_one("#profile-plan", Static).render())
                if text.strip():
                    return text
            return ""

        assert "demo:8M is generated on first launch" in await plan_text()
        ensure_demo_model("8M")
        await pilot.press("v")
        text = await plan_text()
        assert "Plan on this machine" in text and "rigtui plan --profile mine" in text
        assert "generation ≤" in text and "tok/s" in text and "GB read per token" in text


def test_render_plan_lists_the_placements(tmp_path):
    from analysis_helpers import epyc, gpu

    from rigtui.analysis.gguf_facts import read_gguf_facts
    from rigtui.analysis.plan import make_plan
    from rigtui.engine.demo_model import write_demo_model
    from rigtui.ui.plan_view import render_plan

    facts = read_gguf_facts(write_demo_model(tmp_path / "m.gguf", size="40M", experts=4).path)
    full = make_plan(facts, epyc(gpus=(gpu(),)), n_ctx=512, placements=False)
    need = full.fit["cpu_bytes"] // 2  # about half the model's bytes fit the GPU
    text = render_plan(make_plan(facts, epyc(gpus=(gpu(),)), n_ctx=512, vram_free={0: need}), "m")
    assert "placements" in text and "[b]*[/] MoE hybrid" in text and "--override-tensor exps=CPU" in text
    assert "does not fit" in text  # full offload
    assert "use cases UC1 [$success]interactive[/]" in text
