"""Helpers for the engine/profile tests (fixtures are in engine_fixtures.py)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from rigtui.hostfs import HostFS
from rigtui.model.topology import Topology
from rigtui.probes import detect


def fixture_topology(root: Path) -> Topology:
    return detect(HostFS(str(root)), nvml=False)


def write_profile(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def usable_cpu() -> int:
    """CPU 1 when this process may use it (the placement test of the issue), else the last one."""
    allowed = sorted(os.sched_getaffinity(0))
    return 1 if 1 in allowed else allowed[-1]
