"""Helpers shared by command modules (output, JSON)."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

from rigtui.model import to_jsonable


def print_json(obj: Any, *, stream=None, indent: int | None = 2) -> None:
    """Write `obj` (dataclasses welcome) as JSON followed by a newline."""
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(obj), indent=indent, ensure_ascii=False))
    stream.write("\n")
    stream.flush()


def print_ndjson(obj: Any, *, stream=None) -> None:
    """One compact JSON object per line (streams, samples, events)."""
    print_json(obj, stream=stream, indent=None)


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a service manager, `kill`, the terminal closing), raised where the
    command waits so that it stops its engine as Ctrl-C does, instead of dying with the engine
    left behind (a worker that was SIGSTOPped could not notice its parent go)."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise StopSignal (a KeyboardInterrupt) in the main thread,
    once: a second signal while the command cleans up is ignored, not raised into it. A signal
    the command was started with ignored stays ignored: `nohup rigtui serve demo &` must keep
    serving when the SSH session that started it hangs up."""
    raised: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not raised:
            raised.append(signum)
            raise StopSignal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) != signal.SIG_IGN}  # fmt: skip
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def place_monitor(args: Any, engine_pid: int | None = None) -> str | None:
    """A monitor command (`sample`, `exporter`) placed beside the engines it watches: on
    --app-cpus when given, else off the CPUs of `engine_pid`; without either (where the engines
    run is unknown) it stays where it is at a lower priority. The line that says where it
    runs. A captured tree (--root) is not this machine: nothing is moved (None)."""
    import os

    from rigtui.cli import app_cpus, make_fs
    from rigtui.syscalls.process import StayOff, placement_enabled

    housekeeping = app_cpus(args)
    if not make_fs(args).is_live or not placement_enabled():
        return None
    stay = StayOff(housekeeping)
    if engine_pid is not None:
        try:
            engine_cpus = set(os.sched_getaffinity(engine_pid))
        except OSError:  # gone, or not ours to read
            engine_cpus = set()
        if engine_cpus:
            return stay.update(engine_cpus)
    return stay.engines_unknown()


def load_profile_or_report(name: str, topology: Any) -> Any | None:
    """The profile `name`, its warnings printed on stderr; None when it does not load (its
    issues printed, file:line each): the caller exits with EXIT_BAD_PROFILE."""
    from rigtui.profiles import ProfileError, load_profile_with_warnings

    try:
        profile, warnings = load_profile_with_warnings(name, topology=topology)
    except ProfileError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return None
    for issue in warnings:
        print(str(issue), file=sys.stderr)
    return profile
