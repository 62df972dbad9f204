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
import threading

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


# -- the monitor beside the engine ------------------------------------------------------------
APP_NICE = 10  # a monitor's threads yield to the engine's when they share CPUs
PLACEMENT_ENV = "RIGTUI_APP_PLACEMENT"  # "off": leave the monitor where it was started


def placement_enabled() -> bool:
    """False when RIGTUI_APP_PLACEMENT=off: the user places rigtui itself (systemd's
    CPUAffinity=, taskset, a cgroup) and wants it left there."""
    return os.environ.get(PLACEMENT_ENV, "").strip().lower() not in ("off", "0", "no")


def this_process_threads() -> list[int]:
    """The thread ids of this process (/proc/self/task; `ps -T -p $$`)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task") if t.isdigit()]
    except OSError:
        return [threading.get_native_id()]


def lower_priority(nice: int = APP_NICE, *, keep: frozenset[int] = frozenset()) -> int | None:
    """Raise the nice value of every thread of this process but `keep` (tids) to `nice`; the
    threads started from them later inherit it. Linux keeps a nice value per thread
    (sched(7)), so the one thread that forks the engines (`keep`) keeps its own and the
    engines start at the priority the user gave rigtui, not the monitor's. Returns the value
    set (None when not allowed)."""
    done = None
    for tid in this_process_threads():
        if tid in keep:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            done = nice
        except OSError:  # the thread ended meanwhile, or a seccomp'd sandbox
            continue
    return done


def pin_threads(cpus: set[int], *, keep: frozenset[int] = frozenset()) -> bool:
    """sched_setaffinity(2) on every thread of this process but `keep` (affinity, too, is per
    thread on Linux; new threads inherit their creator's). False when the kernel refused."""
    ok = False
    for tid in this_process_threads():
        if tid in keep:
            continue
        try:
            os.sched_setaffinity(tid, cpus)
            ok = True
        except OSError:
            continue
    return ok


class StayOff:
    """Keeps a monitor's own threads (the UI, its sampler, an exporter) off the CPUs its
    engines compute on: an engine's threads meet at a barrier every layer, so a core the
    monitor takes from one of them stalls all of them.

    `update(engine_cpus)` after each change of where the engines run: the monitor moves to the
    CPUs it may use that no engine uses (or to the `housekeeping` CPUs the user named); when
    the engines use every one, it stays where it was, at nice APP_NICE, and says so. Returns
    one line for the UI ("app on cpus 4-7, off the engines'"), None when no engine runs."""

    def __init__(self, housekeeping: set[int] | None = None, *,
                 keep: frozenset[int] = frozenset()) -> None:  # fmt: skip
        self.allowed = set(os.sched_getaffinity(0))
        self.asked = set(housekeeping) if housekeeping else None  # --app-cpus as given
        self.housekeeping = self.asked & self.allowed if self.asked else None
        self.keep = keep
        self.where: set[int] = set(self.allowed)
        self.nice: int | None = None

    def _lower(self) -> int | None:
        """Nice APP_NICE for the monitor's threads, once (it cannot be undone without root)."""
        if self.nice is None:
            self.nice = lower_priority(APP_NICE, keep=self.keep)
        return self.nice

    def update(self, engine_cpus: set[int]) -> str | None:
        from rigtui.model.cpulist import format_cpulist

        if not engine_cpus:
            target, note = self.allowed, None
        elif self.housekeeping:
            target = self.housekeeping
            shared = target & engine_cpus
            note = (f"app on cpus {format_cpulist(sorted(target))} (housekeeping)"
                    + (f", {format_cpulist(sorted(shared))} shared with the engines" if shared else ""))  # fmt: skip
        elif self.allowed - engine_cpus:
            target = self.allowed - engine_cpus
            note = f"app on cpus {format_cpulist(sorted(target))}, off the engines'"
        else:
            target = self.allowed
            nice = self._lower()
            niced = f"at nice {nice}" if nice is not None else "(nice refused)"
            note = (f"the engines use every CPU: the app shares them {niced} "
                    "(--app-cpus names CPUs for it)")  # fmt: skip
        if target != self.where and pin_threads(target, keep=self.keep):
            self.where = set(target)
        return note

    def engines_unknown(self) -> str | None:
        """For a monitor that does not know where its engines run (it has their URLs only):
        onto the housekeeping CPUs when they were named, else where it is, at nice APP_NICE."""
        from rigtui.model.cpulist import format_cpulist

        if self.asked:
            if self.housekeeping and pin_threads(self.housekeeping, keep=self.keep):
                self.where = set(self.housekeeping)
                return f"runs on cpus {format_cpulist(sorted(self.housekeeping))} (--app-cpus)"
            return f"cannot run on cpus {format_cpulist(sorted(self.asked))}: not allowed here"
        nice = self._lower()
        return f"runs at nice {nice}" if nice is not None else None
