"""The engine worker's guard against outliving its parent (the TUI or CLI that spawned it)."""

from __future__ import annotations

import os
import threading
import time


def watch_parent(interval_s: float = 0.5) -> None:
    """Exit as soon as the parent dies (even by SIGKILL), whatever the main thread is doing.

    Otherwise a dead parent is noticed only at the next event write (EPIPE) or, when idle, at
    stdin EOF: a long bench or prompt would keep an orphan, and the model's GBs, alive for
    minutes. Not PR_SET_PDEATHSIG: it fires when the parent *thread* that forked us exits,
    and the TUI starts engines from short-lived worker threads."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:  # reparented to init or a subreaper
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
