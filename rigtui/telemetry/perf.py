"""perf_event_open(2) through ctypes, and the sysfs PMU format encoder.

A PMU under `sys/bus/event_source/devices/NAME/` says how to program it:
- `type`: the number for `perf_event_attr.type`;
- `format/TERM`: where a term's bits go, e.g. `event` -> "config:0-7,32-35" (a 12-bit value whose
  low 8 bits go to config bits 0-7 and the next 4 to bits 32-35), `umask` -> "config:8-15";
- `events/NAME`: a named event as terms, "event=0x05,umask=0xcf", with optional `NAME.scale`
  ("6.103515625e-5") and `NAME.unit` ("MiB") saying what one count is worth;
- `cpumask`: the CPU(s) to open the (system-wide, per-package) event on.
See the kernel's Documentation/ABI/testing/sysfs-bus-event_source-devices-format and -events.
Shell equivalent: `perf stat -a -e uncore_imc_0/cas_count_read/`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
from dataclasses import dataclass

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_TASK_CLOCK = 1
PERF_FORMAT_TOTAL_TIME_ENABLED = 1 << 0
PERF_FORMAT_TOTAL_TIME_RUNNING = 1 << 1
PERF_FLAG_FD_CLOEXEC = 1 << 3
# perf_event_attr.flags bit positions (include/uapi/linux/perf_event.h)
_ATTR_DISABLED = 1 << 0
_ATTR_EXCLUDE_KERNEL = 1 << 5
_ATTR_EXCLUDE_HV = 1 << 6
# PERF_ATTR_SIZE_VER1: up to config2. Older sizes are accepted by every newer kernel.
_ATTR_SIZE = 72
_SYSCALL_NR = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "ppc64": 319, "s390x": 331}
_READ_FMT = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING
_UNIT_BYTES = {"": 1.0, "B": 1.0, "KiB": 1024.0, "MiB": 1024.0**2, "GiB": 1024.0**3}

PMU_DIR = "sys/bus/event_source/devices"


class FormatError(ValueError):
    """A format/ spec or an event term that cannot be encoded."""


# -- the format-string encoder (pure) ---------------------------------------------------------
def parse_format_spec(spec: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """ "config:0-7,32-35" -> ("config", ((0, 7), (32, 35))); "config1:5" -> ("config1", ((5, 5),))."""
    field, sep, ranges = spec.strip().partition(":")
    if not sep or field not in ("config", "config1", "config2", "config3") or not ranges:
        raise FormatError(f"bad format spec {spec!r}")
    out: list[tuple[int, int]] = []
    for part in ranges.split(","):
        lo_s, _, hi_s = part.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s or lo_s)
        except ValueError:
            raise FormatError(f"bad bit range {part!r} in {spec!r}") from None
        if not 0 <= lo <= hi <= 63:
            raise FormatError(f"bit range {part!r} outside 0-63 in {spec!r}")
        out.append((lo, hi))
    return field, tuple(out)


def parse_event_terms(text: str) -> dict[str, int]:
    """ "event=0x05,umask=0xcf,edge" -> {"event": 5, "umask": 207, "edge": 1}."""
    terms: dict[str, int] = {}
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            terms[name.strip()] = int(value.strip(), 0) if sep else 1
        except ValueError:
            raise FormatError(f"bad event term {part!r}") from None
    return terms


def encode_config(terms: dict[str, int], formats: dict[str, str]) -> dict[str, int]:
    """Place each term's value into config/config1/... as the PMU's `format/` files say.

    The value's low bits fill the first range, the next bits the second, and so on (the kernel's
    perf_pmu__format_bits order). A value wider than its ranges is an error, not a truncation.
    """
    out = {"config": 0, "config1": 0, "config2": 0}
    for name, value in terms.items():
        spec = formats.get(name)
        if spec is None:
            raise FormatError(
                f"term {name!r} not in the PMU's format/ ({', '.join(sorted(formats))})"
            )
        field, ranges = parse_format_spec(spec)
        if value < 0:
            raise FormatError(f"negative value for {name!r}")
        shift = 0
        for lo, hi in ranges:
            width = hi - lo + 1
            out[field] = out.get(field, 0) | (((value >> shift) & ((1 << width) - 1)) << lo)
            shift += width
        if value >> shift:
            raise FormatError(f"{name}={value:#x} does not fit in {spec!r}")
    return out


def unit_scale(scale: str | None, unit: str | None) -> float | None:
    """Bytes per count from an event's `.scale` and `.unit` ("6.103515625e-5", "MiB" -> 64.0)."""
    try:
        factor = float(scale) if scale is not None else 1.0
    except ValueError:
        return None
    mult = _UNIT_BYTES.get((unit or "").strip())
    return None if mult is None else factor * mult


def counter_delta(prev: int, cur: int, bits: int = 64) -> int | None:
    """Increase of a `bits`-wide counter from `prev` to `cur`, across one wrap.

    A drop of more than half the range is not a wrap but a reset (re-created group, PMU reloaded):
    None, so the caller skips that interval instead of showing a huge spike.
    """
    span = 1 << bits
    delta = (cur - prev) % span
    return None if delta >= span >> 1 else delta


# -- perf_event_open through ctypes ------------------------------------------------------------
_libc: ctypes.CDLL | None = None


def _syscall() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc.syscall


def build_attr(
    type_: int, config: int, config1: int = 0, config2: int = 0, *, exclude_kernel: bool = False
) -> bytes:
    """A zeroed `struct perf_event_attr` (PERF_ATTR_SIZE_VER1 bytes) with what we set filled in:
    counting mode (no sampling), total time enabled/running read back for multiplex scaling."""
    flags = _ATTR_EXCLUDE_KERNEL | _ATTR_EXCLUDE_HV if exclude_kernel else 0
    # u32 type, u32 size, u64 config, u64 sample_period, u64 sample_type, u64 read_format,
    # u64 flags, u32 wakeup_events, u32 bp_type, u64 config1, u64 config2
    return struct.pack(
        "=IIQQQQQIIQQ", type_, _ATTR_SIZE, config, 0, 0, _READ_FMT, flags, 0, 0, config1, config2
    )


def perf_event_open(attr: bytes, pid: int, cpu: int, group_fd: int = -1) -> int:
    """The raw syscall; returns an fd or raises OSError(errno)."""
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise OSError(
            errno.ENOSYS, f"perf_event_open: unknown syscall number on {platform.machine()}"
        )
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _syscall()(
        ctypes.c_long(nr),
        buf,
        ctypes.c_int(pid),
        ctypes.c_int(cpu),
        ctypes.c_int(group_fd),
        ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


@dataclass
class Counter:
    """One open perf event: `read()` -> (value, time_enabled_ns, time_running_ns)."""

    fd: int

    def read(self) -> tuple[int, int, int]:
        data = os.read(self.fd, 24)
        if len(data) != 24:
            # A zero-length read means the event is dead (its PMU or CPU went away).
            raise OSError(errno.ENODEV, f"perf counter read returned {len(data)} bytes")
        value, enabled, running = struct.unpack("=QQQ", data)
        return value, enabled, running

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            finally:
                self.fd = -1


def open_counter(
    type_: int, config: dict[str, int], *, cpu: int, pid: int = -1, exclude_kernel: bool = False
) -> Counter:
    attr = build_attr(
        type_,
        config.get("config", 0),
        config.get("config1", 0),
        config.get("config2", 0),
        exclude_kernel=exclude_kernel,
    )
    return Counter(perf_event_open(attr, pid, cpu))


def open_task_clock() -> Counter:
    """A software counter of this process's CPU time (needs no PMU, allowed at paranoid 2)."""
    return open_counter(
        PERF_TYPE_SOFTWARE, {"config": PERF_COUNT_SW_TASK_CLOCK}, cpu=-1, pid=0, exclude_kernel=True
    )


def scaled(value: int, enabled: int, running: int) -> float | None:
    """Count corrected for multiplexing (PMU shared by more events than counters)."""
    if running <= 0:
        return None
    return value * (enabled / running) if enabled != running else float(value)


def refusal_reason(err: OSError, paranoid: int | None) -> str:
    """What to tell the user when the kernel refuses a system-wide uncore event."""
    if err.errno in (errno.EACCES, errno.EPERM):
        now = "unknown" if paranoid is None else str(paranoid)
        return (
            f"needs perf_event_paranoid <= 0 (now {now}) or CAP_PERFMON: "
            "sudo sysctl kernel.perf_event_paranoid=0"
        )
    if err.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return f"the PMU is gone or does not support this event ({os.strerror(err.errno)})"
    if err.errno == errno.EMFILE:
        return "too many open files (raise ulimit -n)"
    if err.errno == errno.EBUSY:
        return "the counters are in use by another tool (perf, PCM, a BMC agent)"
    return f"perf_event_open failed: {os.strerror(err.errno) if err.errno else err}"
