"""rigtui: see, launch and check LLM inference on big CPU/GPU rigs."""

from __future__ import annotations

__version__ = "0.1.0"
