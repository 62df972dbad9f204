"""Defects found in a code review of rigtui.profiles (each test failed before its fix)."""

from __future__ import annotations

import os

from rigtui.profiles.store import save_profile_text, update_profile


def test_save_through_a_symlinked_profile_keeps_the_link(tmp_path):
    # ~/.config/rigtui/profiles/big.toml -> ~/dotfiles/big.toml: saving must update the target,
    # not replace the link with a regular file (the dotfiles copy would silently go stale)
    real_dir = tmp_path / "dotfiles"
    real_dir.mkdir()
    target = real_dir / "big.toml"
    target.write_text('name = "big"\n# a comment\nthreads = 8\n', encoding="utf-8")
    link_dir = tmp_path / "profiles"
    link_dir.mkdir()
    link = link_dir / "big.toml"
    link.symlink_to(target)
    update_profile(link, {"threads": 16})
    assert link.is_symlink()
    assert "threads = 16" in target.read_text(encoding="utf-8")
    assert "# a comment" in target.read_text(encoding="utf-8")
    assert not [p for p in link_dir.iterdir() if p.name != "big.toml"]  # no temp left behind


def test_save_new_file_gets_normal_permissions(tmp_path):
    path = tmp_path / "new.toml"
    save_profile_text(path, 'name = "new"\n')
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_unicode_path_and_text(tmp_path):
    path = tmp_path / "模型 profile.toml"
    save_profile_text(path, 'name = "ü"\nprompt = "héllo 🌍"\n')
    assert "🌍" in path.read_text(encoding="utf-8")


def test_delete_a_symlinked_profile_removes_the_link_not_the_target(tmp_path):
    from rigtui.profiles.store import delete_profile

    target = tmp_path / "dotfiles.toml"
    target.write_text('name = "x"\n', encoding="utf-8")
    link = tmp_path / "profiles" / "x.toml"
    link.parent.mkdir()
    link.symlink_to(target)
    delete_profile(link)
    assert not link.is_symlink() and not link.exists()
    assert target.exists()


def _issues(tmp_path, text):
    from rigtui.profiles import check_profile

    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return check_profile(str(path), None)


def test_env_names_the_os_refuses_are_reported_at_their_line(tmp_path):
    # Popen raised "illegal environment variable name" / "embedded null byte" at launch,
    # with no file or line (and the events pipe leaked)
    text = 'model = "demo:8M"\n[env]\n"A=B" = "x"\n"" = "y"\nC = "nul\\u0000"\nOK = "fine"\n'
    bad = {i.key: i for i in _issues(tmp_path, text) if i.severity == "error"}
    assert set(bad) == {"env.A=B", "env.", "env.C"}
    assert bad["env.A=B"].line == 3 and bad["env.C"].line == 5


def test_nan_is_out_of_range(tmp_path):
    # TOML allows nan; `nan < lo` and `nan > hi` are both False, so it passed every range check
    text = 'model = "demo:8M"\n[sampling]\ntemperature = nan\ntop_p = 0.9\n'
    bad = [i for i in _issues(tmp_path, text) if i.severity == "error"]
    assert [i.key for i in bad] == ["sampling.temperature"]
