"""rigtui.engine: the parent side of the inference engine and its child worker (see DESIGN.md).

`EngineProcess(profile)` launches one profile; `system_info()` asks the installed
llama-cpp-python what it was built with; `fold` folds events into EngineStats.
Importing this package never imports llama_cpp (only the worker child does).
"""

from __future__ import annotations

import json
import subprocess
import sys

from rigtui.engine.client import EngineProcess, exit_reason, worker_env
from rigtui.engine.stats import fold
from rigtui.model.engine import EngineSystemInfo


def system_info(timeout: float = 60.0) -> EngineSystemInfo:
    """Runs `python -m rigtui.engine.worker --system-info` in a subprocess (llama_cpp stays out
    of this process). Never raises: failures come back as available=False with the reason."""
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
