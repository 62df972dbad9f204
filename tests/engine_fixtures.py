"""Fixtures of the engine/profile tests, loaded with `pytest_plugins = ["engine_fixtures"]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigtui.engine.demo_model import write_demo_model
from rigtui.hostfs import HostFS
from rigtui.model.topology import Topology
from rigtui.probes import detect


@pytest.fixture(scope="session")
def demo8m(tmp_path_factory) -> Path:
    """An 8M f16 demo model, written once per test session."""
    return write_demo_model(tmp_path_factory.mktemp("models") / "demo-8M.gguf", size="8M").path


@pytest.fixture()
def xdg(tmp_path, monkeypatch) -> Path:
    """Empty user config and cache dirs (a fresh machine)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="session")
def live_topology() -> Topology:
    return detect(HostFS("/"), nvml=False)
