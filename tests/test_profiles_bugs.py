"""Defects found in a code review of rigtui.profiles (each test failed before its fix)."""

from __future__ import annotations

import os

import pytest

from rigtui.profiles.store import save_profile_text, update_profile

pytest_plugins = ["engine_fixtures"]  # demo8m, live_topology


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


def test_a_relative_extends_is_the_profiles_not_the_working_dirs(tmp_path, monkeypatch):
    from rigtui.profiles import load_profile

    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "base.toml").write_text('model = "demo:8M"\nthreads = 3\n')
    (tmp_path / "rigs" / "child.toml").write_text('extends = "./base.toml"\nctx = 256\n')
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "base.toml").write_text('model = "demo:8M"\nthreads = 1\n')
    monkeypatch.chdir(tmp_path / "elsewhere")  # a base.toml here must not be the one used
    assert load_profile(str(tmp_path / "rigs" / "child.toml")).threads == 3
    (tmp_path / "rigs" / "child.toml").write_text('extends = "base.toml"\nctx = 256\n')
    assert load_profile(str(tmp_path / "rigs" / "child.toml")).threads == 3


def test_profiles_that_cannot_load_are_errors(tmp_path):
    from rigtui.profiles import check_profile

    p = tmp_path / "q.toml"
    p.write_text('model = "demo:8M"\ncache_type_v = "q8_0"\n')
    issues = check_profile(str(p), None)
    assert [(i.key, i.line, i.severity) for i in issues] == [("cache_type_v", 2, "error")]
    assert "flash_attn = true" in issues[0].hint
    p.write_text('model = "demo:8M"\ncache_type_v = "q8_0"\nflash_attn = true\n')
    assert check_profile(str(p), None) == []
    p.write_text('model = "demo:1T"\n')
    issues = check_profile(str(p), None)
    assert [(i.key, i.severity) for i in issues] == [("model", "error")]
    assert "goes up to 16G" in issues[0].message


def test_a_ctx_whose_kv_cache_is_beyond_ram_fails_the_check(tmp_path, demo8m, live_topology):
    import dataclasses
    import subprocess
    import sys

    from rigtui.analysis.profile_fit import memory_fit_issues
    from rigtui.commands.profiles import check_with_fit
    from rigtui.profiles import load_profile

    p = tmp_path / "huge-ctx.toml"
    p.write_text(f'model = "{demo8m}"\nthreads = 1\nctx = 16777216\n')
    issues = check_with_fit(str(p), live_topology)
    assert [(i.key, i.line, i.severity) for i in issues] == [("ctx", 3, "error")], issues
    assert "cannot load" in issues[0].message and "lower ctx (up to ~" in issues[0].hint
    r = subprocess.run([sys.executable, "-m", "rigtui", "profiles", "check", str(p)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 3 and "KV cache of" in r.stdout
    # the ctx the hint names does fit
    fits = int(issues[0].hint.split("up to ~", 1)[1].split()[0])
    prof = dataclasses.replace(load_profile(str(p)), ctx=fits)
    assert [i for i in memory_fit_issues(prof, live_topology, str(p), 3) if i.severity == "error"] == []
    p.write_text(f'model = "{demo8m}"\nthreads = 1\nctx = 2048\n')
    assert check_with_fit(str(p), live_topology) == []


def test_a_gguf_with_no_tensors_is_not_a_model(tmp_path):
    import struct

    from rigtui.analysis.gguf_facts import GgufError, read_gguf_facts
    from rigtui.profiles import check_profile

    vocab_only = tmp_path / "ggml-vocab-llama.gguf"
    key = b"general.architecture"
    vocab_only.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key))
                           + key + struct.pack("<IQ", 8, 5) + b"llama")  # fmt: skip
    with pytest.raises(GgufError, match="no tensors"):
        read_gguf_facts(vocab_only)
    p = tmp_path / "v.toml"
    p.write_text(f'model = "{vocab_only}"\n')
    issues = check_profile(str(p), None)
    assert [(i.key, i.severity) for i in issues] == [("model", "error")]
    assert "no tensors" in issues[0].message
