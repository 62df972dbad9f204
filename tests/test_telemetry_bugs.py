"""Defects found in a code review of rigtui.telemetry and `rigtui sample`."""

from __future__ import annotations

import argparse

import pytest

from rigtui.cli import EXIT_USAGE
from rigtui.commands import sample


@pytest.mark.parametrize("interval", [float("nan"), float("inf")])
def test_sample_refuses_a_non_finite_interval(interval):
    # nan passed `interval <= 0` and max(0.0, nan) == 0.0: the loop never slept (a busy core)
    args = argparse.Namespace(count=2, interval=interval, replay=None)
    assert sample.run(args) == EXIT_USAGE
