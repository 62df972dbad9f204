"""rigtui.telemetry: live samples of the machine (see DESIGN.md and docs/telemetry.md).

`Sampler(fs, topology).sample(engines) -> Sample`; `rigtui.telemetry.record` writes and replays
NDJSON recordings of samples.
"""

from rigtui.telemetry.sampler import Sampler

__all__ = ["Sampler"]
