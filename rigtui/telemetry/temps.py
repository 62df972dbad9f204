"""Temperatures per socket/CCD and NVMe (hwmon), GPU temperatures are added from NVML by the
sampler (`gpu.py`), so NVML is opened once.

hwmon is read by the probe's `SensorReader` (`rigtui.probes.sensors`: chips matched by their
`name` file, labels mapped to sockets/CCDs exactly as `rigtui probe` shows them; `sensors` in
the shell). A sensor that fails to read (EIO from a sleeping chip) gives `temp_c=None`.
"""

from __future__ import annotations

from rigtui.hostfs import HostFS
from rigtui.model.sample import SourceStatus
from rigtui.model.topology import Sensor, Topology
from rigtui.probes.sensors import SensorReader


class TemperatureSource:
    def __init__(self, fs: HostFS, topology: Topology) -> None:
        # A HostFS of its own: discovery problems must not pile into the caller's fs.problems.
        self._reader: SensorReader | None = None
        try:
            self._reader = SensorReader(HostFS(fs.root), topology, nvml=False)
        except Exception as exc:  # noqa: BLE001 - a strange hwmon tree must not stop sampling
            self.status = SourceStatus("temperatures", None, False, f"hwmon discovery: {exc}")
            return
        self.status = SourceStatus("temperatures", "hwmon", True)

    def read(self) -> tuple[Sensor, ...]:
        if self._reader is None:
            return ()
        try:
            sensors = tuple(self._reader.read())
        except Exception as exc:  # noqa: BLE001
            self.status = SourceStatus("temperatures", "hwmon", False, f"hwmon read failed: {exc}")
            return ()
        failed = [s for s in sensors if s.temp_c is None]
        if not sensors:
            self.status = SourceStatus(
                "temperatures",
                "hwmon",
                False,
                "no temperature sensors (no hwmon drivers; usual in VMs)",
            )
        elif failed:
            names = ", ".join(f"{s.chip}/{s.label}" for s in failed[:4])
            self.status = SourceStatus(
                "temperatures",
                "hwmon",
                True,
                f"{len(failed)} sensor(s) unreadable (I/O error): {names}",
            )
        else:
            self.status = SourceStatus("temperatures", "hwmon", True)
        return sensors

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
