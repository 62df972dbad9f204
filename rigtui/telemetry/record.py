"""Recording and replay of telemetry: NDJSON, one object per line.

File layout (`rigtui sample --record FILE`, `Recorder`):
- line 1, the header: `{"rigtui_recording": 1, "topology": {...}, "fingerprint": {...},
  "recorded": "how/where", "t": unix_time, "version": "0.1.0"}`;
- every other line: one sample, exactly as `rigtui sample --json` prints it (`sample_to_json`).
A plain `rigtui sample --json > FILE` output (no header) also replays; its topology is None.

`replay(path) -> (topology | None, iterator of Samples)`: lines that do not decode are skipped
and described in the `problems` list passed in (file:line: why), never raised.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from typing import IO, Any

from rigtui import __version__
from rigtui.model.common import Problem, to_jsonable
from rigtui.model.sample import Sample
from rigtui.model.topology import Topology
from rigtui.telemetry.jsoncodec import DecodeError, from_jsonable

HEADER_KEY = "rigtui_recording"
FORMAT_VERSION = 1


def sample_to_json(s: Sample) -> dict[str, Any]:
    """A Sample as plain JSON values (the `rigtui sample --json` object)."""
    return to_jsonable(s)


def sample_from_json(d: dict[str, Any]) -> Sample:
    """Inverse of `sample_to_json`; raises DecodeError (a ValueError) on a malformed object."""
    return from_jsonable(Sample, d)


def topology_to_json(topology: Topology) -> dict[str, Any]:
    return to_jsonable(topology)


def topology_from_json(d: dict[str, Any]) -> Topology:
    return from_jsonable(Topology, d)


def make_header(topology: Topology | None, recorded: str = "") -> dict[str, Any]:
    return {
        HEADER_KEY: FORMAT_VERSION,
        "version": __version__,
        "t": time.time(),
        "recorded": recorded,
        "fingerprint": topology.fingerprint() if topology is not None else None,
        "topology": topology_to_json(topology) if topology is not None else None,
    }


class Recorder:
    """Appends samples to an NDJSON file; writes the header first when the file is new/empty.

    Each line is flushed as written, so a recording cut short (Ctrl-C, crash) is still usable.
    """

    def __init__(
        self, path: str | os.PathLike[str], topology: Topology | None = None, *, recorded: str = ""
    ) -> None:
        self.path = os.fspath(path)
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        self._f: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        if new:
            self._write(make_header(topology, recorded))

    def _write(self, obj: dict[str, Any]) -> None:
        if self._f is None:
            raise ValueError(f"recorder for {self.path} is closed")
        self._f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        self._f.write("\n")
        self._f.flush()

    def write(self, s: Sample) -> None:
        self._write(sample_to_json(s))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MAX_LINE = 16 << 20  # a sample of a 1,000-CPU machine is ~100 KB; a longer line is not one


def _regular(path: str) -> None:
    """OSError unless `path` is a regular file: a FIFO blocks on open, /dev/zero never ends."""
    import stat

    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else \
            "a device or socket"  # fmt: skip
        raise OSError(errno.EINVAL, f"not a recording: {kind}, not a regular file")


def _lines(f: IO[str]) -> Iterator[str | None]:
    """The file's lines, each read with a bound: a line longer than MAX_LINE is skipped whole
    (yielded as None) without holding it in memory."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith("\n"):
            while True:  # the rest of the over-long line, read and dropped in bounded chunks
                rest = f.readline(MAX_LINE)
                if not rest or rest.endswith("\n"):
                    break
            yield None
            continue
        yield line


def read_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The header object of a recording, or None (a bare --json capture, or unreadable)."""
    try:
        _regular(os.fspath(path))
        with open(path, encoding="utf-8") as f:
            first = next(_lines(f), None) or ""
        obj = json.loads(first)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and HEADER_KEY in obj else None


def _iter_samples(path: str, problems: list[Problem] | None) -> Iterator[Sample]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(_lines(f), 1):
            if raw is None:
                if problems is not None:
                    problems.append(Problem(f"{path}:{lineno}", f"line longer than {MAX_LINE} "
                                            "bytes: not a sample"))  # fmt: skip
                continue
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise DecodeError("not a JSON object")
                if HEADER_KEY in obj:
                    continue
                yield sample_from_json(obj)
            except (ValueError, TypeError) as exc:
                if problems is not None:
                    problems.append(Problem(f"{path}:{lineno}", f"not a sample: {exc}"[:300]))


def replay(
    path: str | os.PathLike[str], problems: list[Problem] | None = None
) -> tuple[Topology | None, Iterator[Sample]]:
    """Open a recording: (the recorded machine's Topology or None, its samples in order).

    Raises OSError only if the file cannot be opened; a header whose topology does not decode
    gives None plus a problem.
    """
    path = os.fspath(path)
    _regular(path)  # fail early with the OSError the caller reports
    with open(path, encoding="utf-8"):
        pass
    topology: Topology | None = None
    header = read_header(path)
    if header and header.get("topology"):
        try:
            topology = topology_from_json(header["topology"])
        except (ValueError, TypeError) as exc:
            if problems is not None:
                problems.append(Problem(f"{path}:1", f"header topology unreadable: {exc}"[:300]))
    return topology, _iter_samples(path, problems)
