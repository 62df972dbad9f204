"""A parent for test_engine_bugs: start an engine on argv[1], start a long bench, print the
worker's pid, then sleep until killed (the test SIGKILLs this process)."""

from __future__ import annotations

import sys
import time

from rigtui.engine import EngineProcess
from rigtui.model.engine import Loaded
from rigtui.model.profile import Profile, Sampling

eng = EngineProcess(
    Profile(name="t", path=None, model=sys.argv[1], ctx=512, threads=1,
            sampling=Sampling(temperature=0.0)),
    log_events=False,
)  # fmt: skip
eng.start()
for ev in eng.events(timeout=60):
    if isinstance(ev, Loaded):
        break
eng.bench(n_prompt=32, n_gen=64, reps=100000)  # minutes of work, no event until it ends
time.sleep(0.5)
print(eng.pid, flush=True)
time.sleep(600)
