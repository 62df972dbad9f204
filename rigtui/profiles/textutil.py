"""Pure helpers for profile text: cpulists, key -> line numbers, TOML error positions."""

from __future__ import annotations

import re

from rigtui.model.cpulist import format_cpulist  # noqa: F401 (re-exported)
from rigtui.model.cpulist import parse_cpulist as _parse_cpulist

_KEY_RE = re.compile(r"""^\s*("[^"\\]*+(?:\\.[^"\\]*+)*+"|'[^']*+'|[A-Za-z0-9_\-]++)\s*=""")
_TABLE_RE = re.compile(r"""^\s*\[\s*([A-Za-z0-9_\-."']+)\s*\]\s*(?:#.*)?$""")
# a basic or literal string, possessive so the engine keeps no backtracking state per
# character or escape ("(?:a|b)*" cost ~120 bytes a character: 1.2 GB for a 10 MB line)
_STRINGS_RE = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|\'[^\']*+\'')
_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_cpulist(text: str) -> tuple[int, ...]:
    """ "0-3,8,10-11" -> (0, 1, 2, 3, 8, 10, 11), with errors worded for a profile's author.

    The syntax is the kernel's (rigtui.model.cpulist); an empty list is an error here.
    """
    try:
        out = _parse_cpulist(text)
    except ValueError as exc:
        raise ValueError(f'{exc} (write e.g. "0-47,96-143")') from None
    if not out:
        raise ValueError("empty CPU list")
    if out[-1] > 1 << 16:
        raise ValueError(f"CPU {out[-1]} is beyond any machine (max 65536)")
    return out


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
        stripped = _STRINGS_RE.sub("", stripped).split("#", 1)[0]
        depth += stripped.count("[") - stripped.count("]")
        depth = max(depth, 0)
    return lines


def toml_error_line(message: str) -> int | None:
    """The line number in a tomllib.TOMLDecodeError message, if it has one."""
    m = _TOML_POS_RE.search(message)
    return int(m.group(1)) if m else None
