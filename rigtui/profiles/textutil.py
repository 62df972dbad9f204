"""Pure helpers for profile text: cpulists, key -> line numbers, TOML error positions."""

from __future__ import annotations

import re
from collections.abc import Iterable

_KEY_RE = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+)\s*=""")
_TABLE_RE = re.compile(r"""^\s*\[\s*([A-Za-z0-9_\-."']+)\s*\]\s*(?:#.*)?$""")
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_cpulist(text: str) -> tuple[int, ...]:
    """ "0-3,8,10-11" -> (0, 1, 2, 3, 8, 10, 11). Raises ValueError naming the bad part."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f'{part!r} is not a CPU number or range (write e.g. "0-47,96-143")')
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"range {part!r} runs backwards")
        if hi > 1 << 16:
            raise ValueError(f"CPU {hi} is beyond any machine (max 65536)")
        out.update(range(lo, hi + 1))
    if not out:
        raise ValueError("empty CPU list")
    return tuple(sorted(out))


def format_cpulist(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 5) -> "0-2,5" (what `taskset -c` takes)."""
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


def key_lines(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line of its assignment ("sampling.top_k" for `[sampling]` keys).

    Table headers map to their own line ("sampling"). Enough for profile files (flat keys and
    plain tables); keys inside multi-line arrays are not children, so they are skipped.
    """
    lines: dict[str, int] = {}
    table = ""
    depth = 0  # open brackets of a multi-line array value
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line
        if depth == 0:
            m = _TABLE_RE.match(line)
            if m:
                table = m.group(1).strip()
                lines.setdefault(table, lineno)
                continue
            m = _KEY_RE.match(line)
            if m:
                key = m.group(1).strip("\"'")
                lines.setdefault(f"{table}.{key}" if table else key, lineno)
                stripped = line[m.end() :]
        # brackets inside strings and comments do not open arrays
        stripped = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", stripped).split("#", 1)[0]
        depth += stripped.count("[") - stripped.count("]")
        depth = max(depth, 0)
    return lines


def toml_error_line(message: str) -> int | None:
    """The line number in a tomllib.TOMLDecodeError message, if it has one."""
    m = _TOML_POS_RE.search(message)
    return int(m.group(1)) if m else None
