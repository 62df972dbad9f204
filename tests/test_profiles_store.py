from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from engine_helpers import fixture_topology, write_profile

from rigtui.profiles import (
    check_profile,
    delete_profile,
    duplicate_profile,
    example_dir,
    list_profiles,
    load_profile,
    new_profile_text,
    save_profile_text,
    update_profile,
    user_profile_dir,
)

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology


def test_repo_profiles_dir_is_the_shipped_examples():
    repo_files = sorted(p.name for p in (REPO / "profiles").glob("*.toml"))
    assert repo_files == sorted(p.name for p in example_dir().glob("*.toml"))
    for name in repo_files:  # one copy only (a symlink), so they can never diverge
        assert (REPO / "profiles" / name).read_bytes() == (example_dir() / name).read_bytes()


def test_every_key_is_documented_in_the_examples():
    from rigtui.model.profile import PROFILE_KEYS, SAMPLING_KEYS

    text = (example_dir() / "demo.toml").read_text()
    for key in PROFILE_KEYS:
        if key in ("sampling", "env"):
            assert f"[{key}]" in text
        else:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, key
    for key in SAMPLING_KEYS:
        assert f"{key} = " in text


def test_user_dir_and_lookup_order(xdg):
    assert user_profile_dir() == xdg / "config" / "rigtui" / "profiles"
    refs = list_profiles()
    assert refs and all(r.origin == "example" for r in refs)
    save_profile_text(user_profile_dir() / "demo.toml", 'model = "demo:8M"\nctx = 128\n')
    refs = {r.name: r for r in list_profiles()}
    assert refs["demo"].origin == "user"  # the user's copy shadows the example
    assert load_profile("demo").ctx == 128
    assert [r.origin for r in list_profiles()][0] == "user"


def test_save_is_atomic_and_keeps_mode(tmp_path):
    p = tmp_path / "p.toml"
    save_profile_text(p, 'model = "demo:8M"\n')
    os.chmod(p, 0o600)
    save_profile_text(p, 'model = "demo:2M"\n')
    assert p.read_text() == 'model = "demo:2M"\n' and (p.stat().st_mode & 0o777) == 0o600
    assert [x.name for x in tmp_path.iterdir()] == ["p.toml"]


def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "p.toml"
    save_profile_text(p, 'model = "demo:8M"\n')

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        save_profile_text(p, 'model = "demo:2M"\n' * 1000)
    assert p.read_text() == 'model = "demo:8M"\n'
    assert [x.name for x in tmp_path.iterdir()] == ["p.toml"]


def test_update_keeps_comments_round_trip(tmp_path):
    text = (example_dir() / "demo.toml").read_text()
    p = tmp_path / "mine.toml"
    save_profile_text(p, text)
    update_profile(p, {"threads": 2, "ctx": 512, "sampling.temperature": 0.2, "description": None,
                       "env.OMP_WAIT_POLICY": "active"})  # fmt: skip
    new = p.read_text()
    data = tomllib.loads(new)
    assert data["threads"] == 2 and data["ctx"] == 512 and "description" not in data
    assert data["sampling"]["temperature"] == 0.2 and data["env"]["OMP_WAIT_POLICY"] == "active"
    old_comments = [ln for ln in text.splitlines() if ln.startswith("# ") and " = " not in ln]
    for comment in old_comments:
        assert comment in new
    prof = load_profile(p)
    assert prof.threads == 2 and prof.env["OMP_WAIT_POLICY"] == "active"
    update_profile(p, {"threads": None})
    assert "threads" not in tomllib.loads(p.read_text())


def test_new_profile_text_for_a_multi_socket_box(fixture_root, tmp_path):
    topo = fixture_topology(fixture_root("16em64t-4s2c2t"))
    text = new_profile_text(topo, "big", "demo:8M")
    data = tomllib.loads(text)
    assert data["threads"] == 8  # physical cores, not the 16 hardware threads
    assert data["physical_cores_only"] is True
    if len(topo.sockets) > 1:
        assert data["memory_policy"] == "interleave" and data["numa"] == "distribute"
    p = tmp_path / "big.toml"
    save_profile_text(p, text)
    assert [i for i in check_profile(p, topo) if i.severity == "error"] == []
    over = tomllib.loads(new_profile_text(topo, "x", "demo:8M", threads=3, cpus=[0, 1, 2]))
    assert over["threads"] == 3 and over["cpus"] == "0-2"


def test_new_profile_text_for_this_machine(live_topology, tmp_path):
    text = new_profile_text(live_topology, "here", "demo:8M")
    p = tmp_path / "here.toml"
    save_profile_text(p, text)
    assert check_profile(p, live_topology) == []


def test_duplicate_and_delete(xdg):
    dest = duplicate_profile("demo", "mydemo")
    assert dest == user_profile_dir() / "mydemo.toml"
    assert load_profile("mydemo").model == "demo:300M"
    with pytest.raises(FileExistsError):
        duplicate_profile("demo", "mydemo")
    with pytest.raises(ValueError):
        duplicate_profile("demo", "../evil")
    with pytest.raises(PermissionError):
        delete_profile(example_dir() / "demo.toml")
    delete_profile(dest)
    assert not dest.exists()


def test_duplicate_keeps_relative_model_path(xdg, tmp_path):
    (tmp_path / "models").mkdir()
    src = write_profile(tmp_path, "rel", 'model = "models/m.gguf"\n')
    dest = duplicate_profile(src, "rel2")
    assert tomllib.loads(dest.read_text())["model"] == str(tmp_path / "models" / "m.gguf")


def test_a_commented_key_inside_a_multi_line_string_stays_text():
    from rigtui.profiles.store import update_text

    text = 'description = """\nnotes:\n# threads = 8\n"""\nmodel = "demo:8M"\n'
    out = update_text(text, {"threads": 4})
    data = tomllib.loads(out)
    assert data["threads"] == 4 and data["description"] == "notes:\n# threads = 8\n"


def test_an_edit_that_would_change_other_values_is_refused(monkeypatch):
    from rigtui.profiles import store

    text = 'model = "demo:8M"\n# threads = 8\nctx = 256\n'
    real = store._uncomment
    # a faulty line edit (the kind a multi-line string invites) is caught by the final check
    monkeypatch.setattr(store, "_uncomment", lambda t, *a: real(t, *a).replace("ctx = 256", "ctx = 1"))
    out = store.update_text(text, {"threads": 4})  # the line edit is rejected, tomlkit sets it
    assert tomllib.loads(out) == {"model": "demo:8M", "threads": 4, "ctx": 256}


def test_a_read_only_profile_is_not_replaced(tmp_path):
    from rigtui.profiles.store import save_profile_text, update_profile

    p = tmp_path / "ro.toml"
    p.write_text('model = "demo:8M"\n')
    p.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        update_profile(p, {"threads": 2})
    with pytest.raises(PermissionError, match="read-only"):
        save_profile_text(p, "model = 'x'\n")
    assert p.read_text() == 'model = "demo:8M"\n'
    assert list(tmp_path.iterdir()) == [p]  # no temporary left
