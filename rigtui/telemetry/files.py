"""Files kept open between samples and re-read with pread(2) at offset 0.

Opening a file costs a path walk and, for /proc, a permission check; re-reading an open
seq_file/sysfs attribute from offset 0 makes the kernel regenerate it, which is all we need.
This is what keeps a sample of a 256-CPU machine under a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os

from rigtui.hostfs import HostFS


class KeptFile:
    """One file opened once; `read()` gives its current contents (bytes)."""

    def __init__(self, fs: HostFS, rel: str, *, size_hint: int = 4096) -> None:
        self.rel = rel
        self._size = max(256, size_hint)
        self.fd: int | None = os.open(fs.path(rel), os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> bytes:
        """Whole contents; raises OSError (ESRCH when a /proc/PID file's process is gone)."""
        if self.fd is None:
            raise OSError(9, f"{self.rel} is closed")
        while True:
            data = os.pread(self.fd, self._size, 0)
            if len(data) < self._size:
                return data
            self._size *= 2  # buffer was full: the file grew (more CPUs, more lines)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def open_kept(fs: HostFS, rel: str, *, size_hint: int = 4096) -> KeptFile | None:
    """A KeptFile, or None if the file cannot be opened (absent, permission)."""
    try:
        return KeptFile(fs, rel, size_hint=size_hint)
    except OSError:
        return None
