"""rigtui.engine: the parent side of the inference engine and its child worker (see DESIGN.md).

`EngineProcess(profile)` launches one profile; `system_info()` asks the installed
llama-cpp-python what it was built with; `fold` folds events into EngineStats.
Importing this package never imports llama_cpp (only the worker child does), and imports
nothing else until a name is asked for: the children (`python -m rigtui.engine.worker`,
`rigtui.engine.exec_server`) run this file first, and every module they do not need costs
their start (0.2 s here, 10 s in the TCG guest of tests/vm) before the policy is applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigtui.engine.client import EngineProcess, exit_reason
    from rigtui.engine.stats import fold
    from rigtui.model.engine import EngineSystemInfo

_LAZY = {"EngineProcess": "rigtui.engine.client", "exit_reason": "rigtui.engine.client",
         "fold": "rigtui.engine.stats", "EngineSystemInfo": "rigtui.model.engine"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rigtui.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def system_info(timeout: float = 60.0) -> EngineSystemInfo:
    """Runs `python -m rigtui.engine.worker --system-info` in a subprocess (llama_cpp stays out
    of this process). Never raises: failures come back as available=False with the reason."""
    from rigtui.engine.client import worker_env
    from rigtui.model.engine import EngineSystemInfo

    cmd = [sys.executable, "-m", "rigtui.engine.worker", "--system-info"]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, env=worker_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return EngineSystemInfo(available=False, reason=f"could not run the engine worker: {exc}")
    last = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
    if out.returncode != 0 or last is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return EngineSystemInfo(
            available=False, reason="llama-cpp-python failed to load: " + " / ".join(tail)
        )
    data = json.loads(last)
    return EngineSystemInfo(available=True, version=data.get("llama_cpp_python"),
                            system_info=data.get("system_info"), gpu_offload=data.get("gpu_offload"),
                            mmap=data.get("mmap"), mlock=data.get("mlock"))  # fmt: skip


__all__ = ["EngineProcess", "EngineSystemInfo", "exit_reason", "fold", "system_info"]
