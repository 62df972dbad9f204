"""The package a stranger installs: the wheel carries the licence, the stylesheet and the example
profiles, says its licence, and installs a `rigtui` that knows its version."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from serve_helpers import REPO

from rigtui import __version__


def test_the_wheel_has_what_rigtui_needs_at_run_time(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("rigtui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rigtui/ui/rigtui.tcss" in names
    assert "rigtui/profiles/examples/demo.toml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)  # test data stays out of the package
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in meta and f"Version: {__version__}" in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    assert b"rigtui = rigtui.cli:main" in entry


def test_version():
    r = subprocess.run([sys.executable, "-m", "rigtui", "--version"], capture_output=True, text=True,
                       timeout=60, cwd=REPO)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == f"rigtui {__version__}"
