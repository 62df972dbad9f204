"""The kernel's cpulist format ("0-3,8", "0-62:2"), used by /sys files, taskset, numactl and
launch profiles alike. Pure functions; lives in the model layer so probes and profiles (siblings
that may not import each other) share one implementation."""

from __future__ import annotations

import re
from collections.abc import Iterable

# The most CPUs a Linux kernel takes is NR_CPUS = 8192 (x86-64 MAXSMP); ids past this bound
# are garbage, and expanding "0-4294967295" would take gigabytes.
MAX_CPUS = 1 << 16


def parse_cpulist(s: str) -> tuple[int, ...]:
    """Kernel cpulist syntax -> sorted ids: "0-3,8", "", "0-62:2" (stride), "0-7:2/4" (groups).

    The strided forms are what `bitmap_parselist` accepts (Documentation/core-api/...): `a-b:u/g`
    takes the first `u` of every `g` CPUs in a-b. lscpu prints "0-62:2" for a stride of 2.
    """
    out: set[int] = set()
    text = s.strip()
    if not text:
        return ()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+)(?:/(\d+))?)?)?", part)
        if not m:
            raise ValueError(f"{part[:40]!r} is not a CPU number or range")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"range {part[:40]!r} runs backwards")
        if hi >= MAX_CPUS:
            raise ValueError(f"CPU {hi} is beyond any machine")
        if m.group(3) is None:
            out.update(range(lo, hi + 1))
            continue
        used, group = int(m.group(3)), int(m.group(4) or m.group(3))
        if m.group(4) is None:  # lscpu's "a-b:stride"
            out.update(range(lo, hi + 1, max(used, 1)))
        else:  # kernel's "a-b:used/group"
            for start in range(lo, hi + 1, max(group, 1)):
                out.update(range(start, min(start + used, hi + 1)))
    return tuple(sorted(out))


def format_cpulist(cpus: Iterable[int]) -> str:
    """Sorted ids -> "0-3,8" (the form `taskset -c` and `numactl -C` take)."""
    ids = sorted(set(cpus))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)
