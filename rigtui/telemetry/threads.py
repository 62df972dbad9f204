"""CPU load of each thread of the engine process (`top -H -p PID`).

Reads `proc/PID/task/TID/stat` (utime + stime in clock ticks, fields 14 and 15), files kept open
per thread; threads that appear are opened, threads that end are dropped.
"""

from __future__ import annotations

import os

from rigtui.hostfs import HostFS
from rigtui.model.sample import SourceStatus
from rigtui.telemetry.files import KeptFile, open_kept

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_task_cpu_ticks(data: bytes) -> int | None:
    """utime + stime from a /proc/.../stat line; the comm may hold spaces and ')' so split at
    the last ')'."""
    _, sep, rest = data.rpartition(b")")
    if not sep:
        return None
    fields = rest.split()
    try:
        return int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


class ThreadLoad:
    """Per-thread % of one CPU over the last interval for one PID."""

    def __init__(self, fs: HostFS) -> None:
        self._fs = fs
        self._pid: int | None = None
        self._task_path: str | None = None
        self._files: dict[int, KeptFile] = {}
        self._prev: dict[int, int] = {}
        self.status = SourceStatus("engine_threads", None, False, "no engine PID known")

    def _reset(self, pid: int | None) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._prev.clear()
        self._pid = pid
        self._task_path = None

    def read(self, pid: int | None, interval_s: float | None) -> tuple[tuple[int, float], ...]:
        if pid != self._pid:
            self._reset(pid)
        if pid is None:
            self.status = SourceStatus("engine_threads", None, False, "no engine PID known")
            return ()
        task_dir = f"proc/{pid}/task"
        if self._task_path is None:
            # a plain str, built once per PID: pathlib would re-parse (and intern) every sample
            self._task_path = os.fspath(self._fs.path(task_dir))
        try:
            tids = sorted(int(t) for t in os.listdir(self._task_path) if t.isdigit())
        except OSError:
            self._reset(pid)
            self.status = SourceStatus(
                "engine_threads",
                "procfs",
                False,
                f"engine PID {pid} is not running (/proc/{pid} is gone)",
            )
            return ()
        out: list[tuple[int, float]] = []
        seen: set[int] = set()
        for tid in tids:
            f = self._files.get(tid)
            if f is None:
                f = open_kept(self._fs, f"{task_dir}/{tid}/stat", size_hint=1024)
                if f is None:
                    continue
                self._files[tid] = f
            try:
                ticks = parse_task_cpu_ticks(f.read())
            except OSError:  # ESRCH: the thread ended between listdir and read
                ticks = None
            if ticks is None:
                continue
            seen.add(tid)
            prev = self._prev.get(tid)
            self._prev[tid] = ticks
            if prev is not None and interval_s:
                pct = 100.0 * (ticks - prev) / CLK_TCK / interval_s
                out.append((tid, round(max(0.0, pct), 1)))
        for tid in list(self._files):
            if tid not in seen:
                self._files.pop(tid).close()
                self._prev.pop(tid, None)
        if not seen:
            self.status = SourceStatus(
                "engine_threads", "procfs", False, f"engine PID {pid} exited between two reads"
            )
        else:
            self.status = SourceStatus("engine_threads", "procfs", True)
        return tuple(out)

    def close(self) -> None:
        self._reset(None)
