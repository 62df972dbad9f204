"""The memory kernels of `rigtui bench mem`: a read reduction, STREAM's triad and copy (the
read:write mixes 1:0, 2:1 and 1:1) and a pointer chase (idle latency).

A tiny C file compiled on first use with `cc -O3 -march=native -shared` into the user cache dir
(`$XDG_CACHE_HOME/rigtui/`, else ~/.cache/rigtui/), loaded with ctypes and called from pinned
Python threads (ctypes drops the GIL for the duration of a foreign call, so the threads stream
memory in parallel). Without a compiler, numpy kernels stand in; numpy's triad needs two passes
(`a = s*c; a += b`: 5 streams for STREAM's 3), so it under-reports triad, and the result says so.
`benchmarks/membw_vs_stream.py` measured the C kernel against a STREAM-style OpenMP loop.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

C_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>

/* Sum of 64-bit words: an integer reduction, so -O3 vectorizes it without -ffast-math.
   32 independent lanes = four 512-bit (or eight 256-bit) accumulators, so the loop is loads
   and adds only; on this project's test VM it matched the STREAM-style OpenMP loop. */
uint64_t rig_read(const uint64_t *restrict a, size_t n) {
    uint64_t lane[32] = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 32; k++) lane[k] += a[i + k];
    uint64_t s = 0;
    for (int k = 0; k < 32; k++) s += lane[k];
    for (; i < n; i++) s += a[i];
    return s;
}

/* STREAM triad: a = b + s*c (STREAM counts 24 bytes per element). */
void rig_triad(double *restrict a, const double *restrict b, const double *restrict c,
               double s, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

/* STREAM copy: a = b (16 bytes per element: one read, one write). */
void rig_copy(double *restrict a, const double *restrict b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = b[i];
}

/* The chase's chain: one random cycle through the buffer's 64-byte lines (Sattolo's shuffle),
   the first word of each line holding the address of the next. Every load then depends on the
   one before and no prefetcher can guess the next line: MLC's idle-latency method. */
void rig_chain(uint64_t *a, size_t n_lines, uint64_t seed) {
    const size_t w = 8;
    for (size_t i = 0; i < n_lines; i++) a[i * w] = i;
    uint64_t x = seed | 1;
    for (size_t i = n_lines - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t j = (size_t)(x % i);
        uint64_t t = a[i * w]; a[i * w] = a[j * w]; a[j * w] = t;
    }
    for (size_t i = 0; i < n_lines; i++) a[i * w] = (uint64_t)(uintptr_t)(a + a[i * w] * w);
}

/* Follow the chain `hops` times from `p`; returns where it stopped (the next call's start). */
uint64_t rig_chase(const uint64_t *p, size_t hops) {
    for (size_t i = 0; i < hops; i++) p = (const uint64_t *)(uintptr_t)*p;
    return (uint64_t)(uintptr_t)p;
}

/* First touch: allocates the pages under the calling thread's memory policy. */
void rig_fill(double *restrict a, size_t n, double v) {
    for (size_t i = 0; i < n; i++) a[i] = v;
}
"""


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/rigtui`, else `~/.cache/rigtui` (created)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "rigtui"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Kernel:
    """What the bench calls: addresses and element counts, never Python objects in the loop."""

    name: str

    def read(self, addr: int, n_words: int) -> int:
        raise NotImplementedError

    def triad(self, a: int, b: int, c: int, scalar: float, n: int) -> None:
        raise NotImplementedError

    def fill(self, addr: int, n: int, value: float) -> None:
        raise NotImplementedError

    def copy(self, a: int, b: int, n: int) -> None:
        raise NotImplementedError

    # the pointer chase; a kernel without it (numpy) has can_chase False
    can_chase = False

    def chain(self, addr: int, n_lines: int, seed: int) -> None:
        raise NotImplementedError

    def chase(self, start: int, hops: int) -> int:
        raise NotImplementedError


class CKernel(Kernel):
    def __init__(self, lib: ctypes.CDLL, name: str) -> None:
        self.name = name
        self._read = lib.rig_read
        self._read.restype = ctypes.c_uint64
        self._read.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self._triad = lib.rig_triad
        self._triad.restype = None
        self._triad.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_double,
            ctypes.c_size_t,
        ]
        self._fill = lib.rig_fill
        self._fill.restype = None
        self._fill.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_double]
        self._copy = lib.rig_copy
        self._copy.restype = None
        self._copy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        self._chain = lib.rig_chain
        self._chain.restype = None
        self._chain.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64]
        self._chase = lib.rig_chase
        self._chase.restype = ctypes.c_uint64
        self._chase.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

    can_chase = True

    def read(self, addr: int, n_words: int) -> int:
        return int(self._read(addr, n_words))

    def triad(self, a: int, b: int, c: int, scalar: float, n: int) -> None:
        self._triad(a, b, c, scalar, n)

    def fill(self, addr: int, n: int, value: float) -> None:
        self._fill(addr, n, value)

    def copy(self, a: int, b: int, n: int) -> None:
        self._copy(a, b, n)

    def chain(self, addr: int, n_lines: int, seed: int) -> None:
        self._chain(addr, n_lines, seed)

    def chase(self, start: int, hops: int) -> int:
        return int(self._chase(start, hops))


class NumpyKernel(Kernel):
    name = "numpy (no C compiler; triad under-reports: two passes)"

    def __init__(self) -> None:
        import numpy as np

        self._np = np

    def _view(self, addr: int, n: int, ctype):
        return self._np.ctypeslib.as_array((ctype * n).from_address(addr))

    def read(self, addr: int, n_words: int) -> int:
        return int(self._np.add.reduce(self._view(addr, n_words, ctypes.c_uint64)))

    def triad(self, a: int, b: int, c: int, scalar: float, n: int) -> None:
        av = self._view(a, n, ctypes.c_double)
        self._np.multiply(self._view(c, n, ctypes.c_double), scalar, out=av)
        self._np.add(av, self._view(b, n, ctypes.c_double), out=av)

    def fill(self, addr: int, n: int, value: float) -> None:
        self._view(addr, n, ctypes.c_double).fill(value)

    def copy(self, a: int, b: int, n: int) -> None:
        self._np.copyto(self._view(a, n, ctypes.c_double), self._view(b, n, ctypes.c_double))


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _cc_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


def compile_kernel(directory: Path | None = None, cc: str | None = None) -> tuple[Path, str]:
    """Compile C_SOURCE into `directory` (default: the cache dir) once per source+compiler+CPU;
    return (path of the .so, flags used). Raises RuntimeError with the compiler's message."""
    cc = cc or _compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) on PATH")
    directory = directory or cache_dir()
    key = hashlib.sha256(
        (C_SOURCE + _cc_version(cc) + os.uname().machine + _cpu_signature()).encode()
    ).hexdigest()[:16]
    so = directory / f"membw-{key}.so"
    attempts = (["-O3", "-march=native"], ["-O3", "-mcpu=native"], ["-O3"])
    if so.exists():
        flags_file = so.with_suffix(".flags")
        flags = flags_file.read_text().strip() if flags_file.exists() else "-O3"
        return so, flags
    errors: list[str] = []
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp, "membw.c")
        src.write_text(C_SOURCE)
        for flags in attempts:
            out = Path(tmp, "membw.so")
            cmd = [cc, *flags, "-std=c99", "-fPIC", "-shared", "-o", str(out), str(src)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0:
                os.replace(out, so)  # atomic: a concurrent bench never loads half a file
                so.with_suffix(".flags").write_text(" ".join(flags))
                return so, " ".join(flags)
            errors.append(f"{' '.join(cmd)}: {proc.stderr.strip()[-300:]}")
    raise RuntimeError("cannot compile the bandwidth kernel: " + " | ".join(errors))


def _cpu_signature() -> str:
    """-march=native code is only valid on the CPU it was built for: key the cache on it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "cpu\t")):
                    return line
    except OSError:
        pass
    return ""


def load_kernel(prefer: str = "c") -> Kernel:
    """The C kernel (compiled on first use), else numpy. `prefer="numpy"` forces numpy."""
    if prefer == "c":
        try:
            so, flags = compile_kernel()
            cc = _compiler() or "cc"
            return CKernel(ctypes.CDLL(str(so)), f"c ({cc} {flags})")
        except (RuntimeError, OSError, subprocess.SubprocessError):
            pass
    return NumpyKernel()
