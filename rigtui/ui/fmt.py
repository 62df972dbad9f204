"""Pure text helpers for the widgets: sizes, rates, bars and load cells.

Everything here is readable without colour (NO_COLOR, a monochrome terminal): levels are shown
by glyph height, and colour only repeats what the glyph already says.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len

# Eight heights of a block: a load cell is readable without colour.
LOAD_GLYPHS = " ▁▂▃▄▅▆▇█"


def gib(n: int | float | None, digits: int = 1) -> str:
    if n is None:
        return "?"
    return f"{n / 2**30:.{digits}f}"


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def num(v: float | None, fmt: str = ".1f", none: str = "–") -> str:
    return none if v is None else format(v, fmt)


def tok_s(v: float | None) -> str:
    """Generation speed as `<number> tok/s` (the fixed interface), or a dash."""
    return "– tok/s" if v is None else f"{v:.1f} tok/s"


def load_glyph(pct: float | None) -> str:
    if pct is None:
        return "·"
    pct = max(0.0, min(100.0, pct))
    # an idle core is the lowest bar, not a blank: every core stays visible
    return LOAD_GLYPHS[min(8, 1 + int(pct / 100 * 8))]


def load_level(pct: float | None) -> str:
    """'idle' | 'low' | 'mid' | 'high' — picks the style of a cell."""
    if pct is None:
        return "none"
    if pct < 5:
        return "idle"
    if pct < 50:
        return "low"
    if pct < 85:
        return "mid"
    return "high"


def bar(fraction: float | None, width: int) -> str:
    """A left-to-right gauge of `width` cells with eighth-block precision."""
    width = max(1, width)
    if fraction is None:
        return "·" * width
    f = max(0.0, min(1.0, fraction))
    eighths = round(f * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest and full < width else ""
    return ("█" * full + partial).ljust(width, "░")[:width]


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def short_cpu_list(cpus: Iterable[int]) -> str:
    """(0,1,2,3,8,9) -> '0-3,8-9' (the kernel's cpulist format)."""
    ids = sorted(set(cpus))
    if not ids:
        return "none"
    parts: list[str] = []
    start = prev = ids[0]
    for c in ids[1:]:
        if c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = c
    parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(parts)


SPARK_GLYPHS = "▁▂▃▄▅▆▇█"


def spark(values: list[float | None], width: int, top: float | None = None) -> str:
    """One glyph per sample, newest on the right, scaled to `top` (a ceiling) or the maximum.

    Unlike a resampling sparkline, a sample is always one column, so the line scrolls like
    `top`'s history and an unknown sample is a gap (space), not a zero.
    """
    width = max(1, width)
    tail = values[-width:]
    known = [v for v in tail if v is not None]
    scale = top if top else max(known, default=0.0)
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        elif scale <= 0:
            out.append(SPARK_GLYPHS[0])
        else:
            frac = max(0.0, min(1.0, v / scale))
            out.append(SPARK_GLYPHS[min(7, int(frac * 8))])
    return "".join(out).rjust(width)


def spark_rows(
    values: list[float | None], width: int, rows: int, top: float | None = None
) -> list[str]:
    """A `rows`-high sparkline (top line first): each column fills bottom-up in eighths of a
    row, one column per sample like `spark`, so a taller panel shows finer steps."""
    if rows <= 1:
        return [spark(values, width, top)]
    width = max(1, width)
    tail = values[-width:]
    known = [v for v in tail if v is not None]
    scale = top if top else max(known, default=0.0)
    eighths: list[int | None] = []
    for v in tail:
        if v is None:
            eighths.append(None)
        else:
            frac = 0.0 if scale <= 0 else max(0.0, min(1.0, v / scale))
            eighths.append(max(1, round(frac * rows * 8)))  # a known zero still shows a floor
    lines = []
    for r in range(rows - 1, -1, -1):
        cells = []
        for e in eighths:
            cell = 0 if e is None else e - r * 8
            cells.append("█" if cell >= 8 else " " if cell <= 0 else SPARK_GLYPHS[cell - 1])
        lines.append("".join(cells).rjust(width))
    return lines


def escape(text: str) -> str:
    """`text` safe inside Textual markup: every "[" escaped. textual.markup.escape leaves a
    "[" that is not followed by a tag-like character alone, yet Textual's own parser reads
    `["exps=CPU"]` as a tag and raises (a profile line `override_tensors = ["exps=CPU"]`
    emptied the profile preview)."""
    return text.replace("[", "\\[")


class StreamWrap:
    """Word-wraps streamed text to `width` columns as it arrives, for a `Log` (which does not
    wrap: a reply without newlines was one long line cut at the right edge). Only whole
    words are let out, so what is written is never taken back: the Log's last line only grows
    until the next word does not fit, which starts a new line. A word longer than a line is
    broken at the width."""

    def __init__(self, width: int) -> None:
        self.width = max(10, width)
        self.col = 0  # the column the next character goes to
        self.word = ""  # the word under way: let out once a space or newline ends it

    def feed(self, text: str) -> str:
        """What to append to the Log for `text` (newlines inserted where lines wrap)."""
        out: list[str] = []
        for ch in text:
            if ch == "\n":
                out.append(self._word())
                out.append("\n")
                self.col = 0
            elif ch == " " or ch == "\t":
                out.append(self._word())
                if self.col + 1 > self.width:
                    out.append("\n")
                    self.col = 0
                elif self.col:  # no space at the start of a wrapped line
                    out.append(" ")
                    self.col += 1
            else:
                self.word += ch
                if len(self.word) >= self.width:
                    out.append(self._word())
        return "".join(out)

    def _word(self) -> str:
        word, self.word = self.word, ""
        if not word:
            return ""
        n = cell_len(word)
        if self.col and self.col + n > self.width:
            self.col = n
            return "\n" + word
        self.col += n
        return word
