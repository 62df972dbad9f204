"""`rigtui completion bash`: the script bash sources completes commands, flags, choices and
profile names, as a user's shell would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
pytest_plugins = ["engine_fixtures"]  # fixtures: xdg


def _complete(script: Path, words: list[str], env: dict[str, str]) -> list[str]:
    arr = " ".join(f"'{w}'" for w in words)
    line = " ".join(words)
    r = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; "
                        f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _shtab_rigtui; "
                        'printf "%s\\n" "${COMPREPLY[@]}"'], capture_output=True, text=True,
                       env=env, timeout=60)  # fmt: skip
    return r.stdout.split()


def test_bash_completes_commands_flags_and_profiles(tmp_path, xdg):
    out = subprocess.run([sys.executable, "-m", "rigtui", "completion", "bash"], capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    script = tmp_path / "rigtui.bash"
    script.write_text(out)
    profiles = xdg / "config" / "rigtui" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "my-epyc.toml").write_text('model = "demo:8M"\n')
    bindir = tmp_path / "bin"  # `rigtui` on PATH, as after an install
    bindir.mkdir()
    (bindir / "rigtui").write_text(f"#!/bin/sh\nexec {sys.executable} -m rigtui \"$@\"\n")
    (bindir / "rigtui").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    assert _complete(script, ["rigtui", "pro"], env) == ["probe", "profiles"]
    assert "--listen" in _complete(script, ["rigtui", "serve", "--li"], env)
    assert _complete(script, ["rigtui", "completion", ""], env) == ["bash", "zsh", "tcsh"]
    assert _complete(script, ["rigtui", "run", "my-"], env) == ["my-epyc"]  # the user's profile
    assert "node0-isolate" in _complete(script, ["rigtui", "--launch", "node"], env)  # examples


def test_zsh_and_tcsh_scripts_are_made():
    for shell, head in (("zsh", "#compdef rigtui"), ("tcsh", "complete rigtui")):
        out = subprocess.run([sys.executable, "-m", "rigtui", "completion", shell],
                             capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
        assert head in out
