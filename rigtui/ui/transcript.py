"""The Run screen's transcript: a Log that scrolls in half-page jumps while a reply streams.

Textual's Log grows its virtual height by one with every new line, and a new virtual size is a
layout change: the whole screen is reflowed and the whole Log repainted and sent to the
terminal, several times a second while a reply streams (measured in tmux at 160x50: about 35 ms
of CPU per new line against 4 ms for a line that only grows; on a machine whose every core runs
the engine that is tokens/s lost). This Log counts its lines up to the next half page instead,
and starts at the view's height, so the text fills the blank page (then the blank lower half)
without any layout, and the view moves once per half page (xterm's "jump scroll"): one reflow
every `height // 2` lines, not one per line.
"""

from __future__ import annotations

from textual.widgets import Log


class Transcript(Log):
    """A Log at least as tall as its view, whose virtual height grows by half pages."""

    @property
    def line_count(self) -> int:
        n = len(self._lines)
        height = self.scrollable_content_region.height
        if height < 2:
            return n
        if n <= height:  # the first page: already as tall as the view, nothing to scroll
            return height
        step = height // 2
        return height + -(-(n - height) // step) * step  # ceil to the next half page
