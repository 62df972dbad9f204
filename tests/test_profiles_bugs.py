"""Defects found in a code review of rigtui.profiles (each test failed before its fix)."""

from __future__ import annotations

import os

import pytest

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


def test_a_long_line_costs_memory_in_proportion(tmp_path):
    """A 900 KB description (just under the profile cap) once cost ~116 MB in the key-line
    regex (1.2 GB at 10 MB): the string pattern no longer backtracks per character."""
    import tracemalloc

    from rigtui.profiles.loader import read_profile_text
    from rigtui.profiles.textutil import key_lines

    text = 'model = "demo:8M"\ndescription = "' + "a\\\"b" * 225_000 + '"\nthreads = 2\n'
    tracemalloc.start()
    try:
        lines = key_lines(text)
        peak = tracemalloc.get_traced_memory()[1]
        values, issues = read_profile_text(text, "big.toml")  # tomllib itself: ~32 MB here
        peak_all = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines["threads"] == 3 and values["threads"].value == 2 and not issues
    assert peak < 8 << 20, f"key_lines: {peak >> 20} MB for a 900 KB profile"
    assert peak_all < 96 << 20, f"{peak_all >> 20} MB for a 900 KB profile"


def test_profiles_that_are_not_files_or_too_big_are_refused_without_hanging(tmp_path, monkeypatch):
    import subprocess
    import sys

    from rigtui.profiles import ProfileError, load_profile

    d = tmp_path / "config" / "rigtui" / "profiles"
    d.mkdir(parents=True)
    os.mkfifo(d / "fifo.toml")  # open() would wait for a writer forever
    (d / "huge.toml").write_text('model = "demo:8M"\n#' + "x" * (2 << 20) + "\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name, why in (("fifo", "not a regular file"), ("huge", "not a launch profile")):
        with pytest.raises(ProfileError, match=why):
            load_profile(name)
        with pytest.raises(ProfileError, match=why):
            load_profile(str(d / f"{name}.toml"))
    r = subprocess.run([sys.executable, "-m", "rigtui", "profiles", "list"], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0
    assert "fifo" in r.stdout and "not a regular file" in r.stdout
    assert "huge" in r.stdout and "not a launch profile" in r.stdout
    r = subprocess.run([sys.executable, "-m", "rigtui", "profiles", "show", "fifo"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 3 and "not a regular file" in r.stderr
