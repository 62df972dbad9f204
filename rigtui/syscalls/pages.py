"""Where pages sit: `mincore(2)` (is a file page in the page cache?) and `move_pages(2)` with
`nodes=NULL` (which NUMA node holds a page mapped by this process?), through ctypes.

Used by the "model file page cache on one node" check and by `rigtui bench mem` to confirm its
buffers landed on the node it bound them to. Shell equivalents: `fincore FILE` (residency),
`numastat -p PID` / `/proc/PID/numa_maps` (per-node pages of a running process).

move_pages only reports pages present in the *calling process's* page tables (-ENOENT otherwise),
so `file_page_placement` maps the file read-only, asks mincore which pages are cached, touches
exactly those (a minor fault each, no disk read) and then asks move_pages where they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import mmap
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PAGE_SIZE = mmap.PAGESIZE
_CHUNK = 16384  # pages per move_pages call (the kernel itself batches 16 at a time)

_PROT_READ = 0x1
_MAP_SHARED = 0x01
_MAP_FAILED = ctypes.c_void_p(-1).value

# x86_64 / aarch64 / others: the number comes from the libc `syscall` wrapper's table; glibc
# has no move_pages wrapper (libnuma does), so call it by number.
_SYS_MOVE_PAGES = {
    "x86_64": 279,
    "aarch64": 239,
    "ppc64le": 301,
    "ppc64": 301,
    "riscv64": 239,
    "s390x": 310,
    "i686": 317,
    "i386": 317,
}


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.mmap.restype = ctypes.c_void_p
    lib.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    lib.syscall.restype = ctypes.c_long
    return lib


_LIBC: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = _libc()
    return _LIBC


def _oserror(what: str, hint: str = "") -> OSError:
    err = ctypes.get_errno()
    msg = f"{what}: {os.strerror(err)}" + (f" ({hint})" if hint else "")
    return OSError(err, msg)


def resident_vector(addr: int, length: int) -> bytes:
    """mincore over [addr, addr+length): one byte per page, bit 0 set when resident."""
    npages = (length + PAGE_SIZE - 1) // PAGE_SIZE
    vec = (ctypes.c_ubyte * max(npages, 1))()
    if npages and libc().mincore(ctypes.c_void_p(addr), length, vec) != 0:
        raise _oserror("mincore")
    return bytes(vec)[:npages]


def node_of_pages(addresses: Sequence[int]) -> list[int]:
    """NUMA node of each page (addresses in this process), via move_pages(0, n, pages, NULL,
    status, 0). Negative entries are -errno: -ENOENT page not present, -EFAULT not mapped."""
    arch = os.uname().machine
    nr = _SYS_MOVE_PAGES.get(arch)
    if nr is None:
        raise OSError(errno.ENOSYS, f"move_pages: syscall number unknown on {arch}")
    out: list[int] = []
    lib = libc()
    for start in range(0, len(addresses), _CHUNK):
        chunk = addresses[start : start + _CHUNK]
        n = len(chunk)
        pages = (ctypes.c_void_p * n)(*chunk)
        status = (ctypes.c_int * n)()
        rc = lib.syscall(
            ctypes.c_long(nr),
            ctypes.c_long(0),
            ctypes.c_ulong(n),
            pages,
            ctypes.c_void_p(None),
            status,
            ctypes.c_int(0),
        )
        if rc < 0:
            raise _oserror("move_pages", "kernel without NUMA support, or a seccomp filter")
        out.extend(status)
    return out


@dataclass(frozen=True)
class FilePagePlacement:
    """Where a file's cached pages sit. `bytes_per_node` is scaled from the pages examined when
    the file had more resident pages than `max_pages` (`sampled` True)."""

    path: str
    file_bytes: int
    page_size: int
    pages: int
    resident_pages: int
    examined_pages: int
    sampled: bool
    bytes_per_node: dict[int, int] = field(default_factory=dict)
    unplaced_pages: int = 0  # examined pages move_pages could not place (evicted meanwhile)

    @property
    def resident_bytes(self) -> int:
        return min(self.resident_pages * self.page_size, self.file_bytes)


def _map_readonly(fd: int, size: int, what: str) -> int:
    """A shared read-only mapping of `size` bytes of `fd` (munmap it); OSError says `what`."""
    addr = libc().mmap(None, size, _PROT_READ, _MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        raise _oserror(what)
    return int(addr)


def file_page_placement(
    path: str | os.PathLike[str], *, max_pages: int = 262144
) -> FilePagePlacement:
    """Per-node bytes of `path`'s page cache. Examines at most `max_pages` resident pages (an
    even sample beyond that; 262144 pages = 1 GiB of 4 KiB pages, about 0.3 s).

    Raises OSError (with a message) when the file cannot be opened or mapped."""
    path_s = os.fspath(path)
    fd = os.open(path_s, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return FilePagePlacement(path_s, 0, PAGE_SIZE, 0, 0, 0, False)
        addr = _map_readonly(fd, size, f"mmap {path_s}")
    finally:
        os.close(fd)
    lib = libc()
    try:
        vec = resident_vector(addr, size)
        resident = [i for i, b in enumerate(vec) if b & 1]
        sampled = len(resident) > max_pages
        if sampled:
            step = len(resident) / max_pages
            chosen = [resident[int(k * step)] for k in range(max_pages)]
        else:
            chosen = resident
        view = (ctypes.c_ubyte * size).from_address(addr)
        for i in chosen:
            _ = view[i * PAGE_SIZE]  # minor fault: maps the cached page into our page tables
        status = node_of_pages([addr + i * PAGE_SIZE for i in chosen])
        counts: dict[int, int] = {}
        unplaced = 0
        for s in status:
            if s >= 0:
                counts[s] = counts.get(s, 0) + 1
            else:
                unplaced += 1
        scale = len(resident) / len(chosen) if chosen else 0.0
        per_node = {n: int(round(c * scale)) * PAGE_SIZE for n, c in sorted(counts.items())}
        return FilePagePlacement(
            path_s,
            size,
            PAGE_SIZE,
            len(vec),
            len(resident),
            len(chosen),
            sampled,
            per_node,
            unplaced,
        )
    finally:
        lib.munmap(ctypes.c_void_p(addr), size)


_LSB = bytes(b & 1 for b in range(256))  # mincore: bit 0 is residency, the rest reserved


def _cached_bytes_of_fd(fd: int) -> int:
    """Bytes of an open file in the page cache (mmap + mincore; nothing is read or faulted)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    addr = _map_readonly(fd, size, "mmap")
    try:
        vec = resident_vector(addr, size)  # one byte per page: 75 M of them for a 300 GB model
        return min(vec.translate(_LSB).count(1) * PAGE_SIZE, size)
    finally:
        libc().munmap(ctypes.c_void_p(addr), size)


def file_cached_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of `path` in the page cache now ("% of the model resident"). Raises OSError."""
    fd = os.open(os.fspath(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _cached_bytes_of_fd(fd)
    finally:
        os.close(fd)


def evict_file(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Drop one file's pages from the page cache, without root: POSIX_FADV_DONTNEED asks the
    kernel to drop the file's clean pages that no process maps (a model cached by an earlier
    run, so that a NUMA launch faults it in again under its memory policy). Pages another
    process maps, dirty pages and tmpfs/ramfs pages stay. Returns (cached bytes before, after).
    Raises OSError when the file cannot be opened (`dd if=FILE iflag=nocache count=0` is the
    same request from a shell)."""
    fd = os.open(os.fspath(path), os.O_RDONLY | os.O_CLOEXEC)
    try:
        before = _cached_bytes_of_fd(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return before, _cached_bytes_of_fd(fd)
    finally:
        os.close(fd)


def prefault_file(path: str | os.PathLike[str], chunk: int = 8 << 20,
                  progress: Callable[[float], None] | None = None) -> tuple[int, float]:  # fmt: skip
    """Read the whole file once, so that its pages enter the page cache now, allocated under
    the calling thread's memory policy (the kernel allocates page cache in the reader's
    context): (bytes read, seconds). Pages already cached stay where they are (evict_file
    first). `progress(fraction)` every ~2%. Raises OSError."""
    import time

    fd = os.open(os.fspath(path), os.O_RDONLY | os.O_CLOEXEC)
    t0 = time.monotonic()
    try:
        size = os.fstat(fd).st_size
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        buf = bytearray(chunk)
        done, last = 0, -1.0
        while True:
            n = os.readv(fd, [buf])
            if n <= 0:
                break
            done += n
            if progress and size and (done / size - last >= 0.02 or done >= size):
                last = done / size
                progress(min(1.0, last))
        return done, time.monotonic() - t0
    finally:
        os.close(fd)
