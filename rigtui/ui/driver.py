"""The terminal driver, made safe against the terminal going away under the app.

When the terminal closes (an SSH session drops, a tmux window is killed) every write to it
fails with EIO. Textual's writer thread dies at the first one; the app's next 30 frames fill
its queue, and then the event loop blocks forever in a write, so not even SIGHUP's handler
runs: the app, and the engines it launched, stayed alive with nobody to see them. Here a
failed write is swallowed, and the first one asks the app to quit (engines stopped, as `q`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from textual.driver import Driver


class HangupTolerantFile:
    """The terminal's file: writes after a failure are dropped; `on_gone` is called once."""

    def __init__(self, file: Any, on_gone: Callable[[], None]) -> None:
        self._file = file
        self._on_gone = on_gone
        self._gone = threading.Event()

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    def _failed(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            self._on_gone()

    def write(self, text: str) -> int:
        if not self._gone.is_set():
            try:
                return self._file.write(text)
            except (OSError, ValueError):  # EIO/EPIPE: the terminal is gone; ValueError: closed
                self._failed()
        return len(text)

    def flush(self) -> None:
        if not self._gone.is_set():
            try:
                self._file.flush()
            except (OSError, ValueError):
                self._failed()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...
        return getattr(self._file, name)


def hangup_safe(base: type[Driver], on_gone: Callable[[], None]) -> type[Driver]:
    """`base` (a terminal driver with a `_file`) writing through HangupTolerantFile."""

    class HangupSafeDriver(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            file = getattr(self, "_file", None)
            if file is not None:
                self._file = HangupTolerantFile(file, on_gone)

    HangupSafeDriver.__name__ = f"HangupSafe{base.__name__}"
    return HangupSafeDriver
