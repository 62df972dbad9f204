"""HostFS: every read of /sys and /proc goes through here, relative to a root.

`HostFS("/")` reads the live machine; `HostFS("/tmp/tree")` reads a captured tree (the hwloc
fixtures, a `rigtui capture` archive extracted). `--root DIR` and `RIGTUI_FSROOT` select the root,
like hwloc's `HWLOC_FSROOT`.

Reads never raise for the ordinary failures of a captured or live tree (missing file, permission,
EIO from a hwmon sensor, a truncated file): they return `None` and record *why* in `problems`, so
a probe can report "could not read X: reason" and carry on. Paths are always given relative to the
root ("sys/devices/system/cpu/online"); a leading "/" is accepted and stripped.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rigtui.model import Problem

ENV_ROOT = "RIGTUI_FSROOT"


def default_root() -> str:
    """The root from `RIGTUI_FSROOT`, else "/"."""
    return os.environ.get(ENV_ROOT) or "/"


@dataclass
class HostFS:
    """Reads files of a (possibly re-rooted) Linux host.

    `problems` collects every read that failed for a reason other than "file absent", plus absent
    files the caller marks as expected (`required=True`), in the order they happened.
    """

    root: str = "/"
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = os.path.abspath(self.root or "/")

    # -- paths -------------------------------------------------------------------------------
    @property
    def is_live(self) -> bool:
        """True when reading the running machine (root "/"): only then may probes use syscalls,
        NVML or `os.sched_getaffinity`, which describe this machine and not a captured tree."""
        return self.root == "/"

    def path(self, rel: str | os.PathLike[str]) -> Path:
        rel_s = os.fspath(rel).lstrip("/")
        return Path(self.root, rel_s) if rel_s else Path(self.root)

    def _abs(self, rel: str) -> str:
        # os.path.join on strings: pathlib costs ~20 us a call, and a 256-CPU probe makes thousands.
        rel_s = rel.lstrip("/")
        return os.path.join(self.root, rel_s) if rel_s else self.root

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self._abs(rel))

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self._abs(rel))

    def note(self, rel: str, reason: str) -> None:
        """Record that `rel` could not be used, and why (shown by `rigtui probe`)."""
        self.problems.append(Problem(path="/" + rel.lstrip("/"), reason=reason))

    # -- reads -------------------------------------------------------------------------------
    def read_bytes(self, rel: str, *, required: bool = False, limit: int = 1 << 24) -> bytes | None:
        """Bytes of a file, or None (reason recorded unless the file is merely absent)."""
        try:
            with open(self._abs(rel), "rb") as f:
                # Read in small chunks: procfs sysctl handlers allocate the size asked for, and a
                # single 16 MiB read of /proc/sys/kernel/osrelease fails with ENOMEM.
                chunks = []
                size = 0
                while size < limit:
                    chunk = f.read(min(65536, limit - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                return b"".join(chunks)
        except FileNotFoundError:
            if required:
                self.note(rel, "missing")
            return None
        except PermissionError:
            self.note(rel, "permission denied (needs root)")
            return None
        except IsADirectoryError:
            self.note(rel, "is a directory, expected a file")
            return None
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                if required:
                    self.note(rel, "missing")
                return None
            self.note(rel, f"read error: {os.strerror(exc.errno) if exc.errno else exc}")
            return None

    def read_text(self, rel: str, *, required: bool = False) -> str | None:
        """Text of a file (undecodable bytes replaced), or None."""
        data = self.read_bytes(rel, required=required)
        if data is None:
            return None
        return data.decode("utf-8", errors="replace")

    def read_str(self, rel: str, *, required: bool = False) -> str | None:
        """First line of a sysfs attribute, stripped; None if absent/unreadable/empty."""
        text = self.read_text(rel, required=required)
        if text is None:
            return None
        text = text.strip()
        return text.splitlines()[0].strip() if text else None

    def read_int(self, rel: str, *, base: int = 10, required: bool = False) -> int | None:
        """A sysfs integer attribute; garbage is recorded as a problem and gives None."""
        s = self.read_str(rel, required=required)
        if s is None:
            return None
        try:
            return int(s, base)
        except ValueError:
            self.note(rel, f"not an integer: {s[:40]!r}")
            return None

    def listdir(self, rel: str) -> list[str]:
        """Sorted entries of a directory; [] if absent or unreadable (reason recorded)."""
        try:
            return sorted(os.listdir(self._abs(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except PermissionError:
            self.note(rel, "permission denied (needs root)")
            return []
        except OSError as exc:
            self.note(rel, f"cannot list: {exc.strerror or exc}")
            return []

    def glob(self, rel_dir: str, prefix: str = "") -> Iterator[str]:
        """Relative paths of the entries of `rel_dir` whose name starts with `prefix`."""
        base = rel_dir.rstrip("/")
        for name in self.listdir(base):
            if name.startswith(prefix):
                yield f"{base}/{name}"

    def readlink(self, rel: str) -> str | None:
        """Target of a symlink (as stored, possibly relative), or None."""
        try:
            return os.readlink(self._abs(rel))
        except OSError:
            return None

    def realname(self, rel: str) -> str | None:
        """Last path component of where a symlink points (e.g. a PCI address from
        `sys/class/hwmon/hwmon0/device`), resolved inside the root."""
        target = self.readlink(rel)
        if target is None:
            return None
        return os.path.basename(os.path.normpath(target))
