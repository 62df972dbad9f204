"""Dying with the parent: prctl(PR_SET_PDEATHSIG).

A child rigtui starts (an engine worker, llama-server after the exec, a `rigtui web` app) must
not outlive rigtui, however rigtui ends — SIGKILL included, and with the child stopped
(SIGSTOP), when no watcher thread of its own can run. The kernel's parent-death signal does
that: SIGKILL, delivered when the parent goes, kills a stopped process too, and it survives
execve (llama-server keeps it). The "parent" is the *thread* that forked the child, so the
parent forks from a thread that lives as long as it does (engine/client.py's spawner).
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
PARENT_ENV = "RIGTUI_PARENT_PID"  # set by the parent: which pid the child should die with

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Ask for `sig` when the parent goes. False when the parent is already gone (it died
    before the call, so no signal will come: the caller should exit) or is not `parent_pid`."""
    if _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if parent_pid is None:
        env = os.environ.get(PARENT_ENV, "")
        parent_pid = int(env) if env.isdigit() else None
    ppid = os.getppid()
    return ppid != 1 and (parent_pid is None or ppid == parent_pid)
