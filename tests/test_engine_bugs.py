"""Defects found in a code review of rigtui.engine (each test failed before its fix)."""

from __future__ import annotations

import contextlib
import os

from rigtui.engine.placement import model_pages, read_process_placement

pytest_plugins = ["engine_fixtures"]  # live_topology, demo8m


def test_numa_maps_model_path_with_space_is_matched(tmp_path):
    # numa_maps writes a space in a path as \040 (seq_file_path escapes "\n\t= ")
    model = tmp_path / "my model.gguf"
    model.write_bytes(b"x")
    escaped = str(model).replace(" ", "\\040")
    text = (
        f"7f0000000000 default file={escaped} mapped=10 N0=10 kernelpagesize_kB=4\n"
        "7f1000000000 default anon=2 dirty=2 N0=2 kernelpagesize_kB=4\n"
    )
    file_bytes, anon = model_pages(text.encode(), str(model))
    assert file_bytes == {0: 10 * 4096}
    assert anon == {0: 2 * 4096}


def test_numa_maps_hugepage_file_mapping_counts_2mib_pages(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    text = f"7f0000000000 default file={model} huge dirty=3 N0=3 N1=1 kernelpagesize_kB=2048\n"
    file_bytes, _ = model_pages(text.encode(), str(model))
    assert file_bytes == {0: 3 * 2 << 20, 1: 2 << 20}


def test_read_placement_survives_non_utf8_mapping_name(tmp_path):
    # Any mapped file whose name is not UTF-8 used to raise UnicodeDecodeError out of
    # read_placement, which crashed the worker right after the model loaded.
    name = os.fsencode(str(tmp_path)) + b"/lib\xe9.so"
    with open(name, "wb") as f:
        f.write(b"\0" * 4096)
    import mmap

    with open(name, "rb") as f:
        mm = mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ)
        try:
            mm[0]  # fault the page in so numa_maps lists it with N<node>=
            out = read_process_placement("self", None)
        finally:
            mm.close()
    assert isinstance(out["anon"], dict)


def _fake_worker(tmp_path, body: str):
    """An executable that EngineProcess runs in place of `python -m rigtui.engine.worker`."""
    import sys

    script = tmp_path / "fake_python"
    script.write_text(
        f"#!{sys.executable}\nimport os, sys\nfd = int(sys.argv[sys.argv.index('--events-fd') + 1])\n"
        + body
    )
    script.chmod(0o755)
    return str(script)


def test_non_object_event_line_still_ends_in_exit(tmp_path, live_topology):
    # A JSON line that is not an object used to raise AttributeError in the events reader
    # thread: no Exit event, events() blocked, stop() fell through to SIGKILL.
    from rigtui.engine import EngineProcess
    from rigtui.model.engine import Error, Exit
    from rigtui.model.profile import Profile

    python = _fake_worker(tmp_path, "os.write(fd, b'[1, 2]\\n\"x\"\\nnull\\n')\n")
    eng = EngineProcess(
        Profile(name="t", path=None, model=str(tmp_path / "m.gguf"), threads=1),
        topology=live_topology,
        python=python,
    )
    eng.start()
    events = list(eng.events(timeout=20))
    assert isinstance(events[-1], Exit), events
    assert sum(isinstance(e, Error) for e in events) == 3
    assert eng.wait_exit(5)


def test_start_stop_loop_leaks_no_fds(tmp_path, live_topology):
    from rigtui.engine import EngineProcess
    from rigtui.model.profile import Profile

    python = _fake_worker(tmp_path, "sys.stdin.read()\n")
    kept = []  # the UI keeps stopped engines in its list
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        eng = EngineProcess(
            Profile(name="t", path=None, model=str(tmp_path / "m.gguf"), threads=1),
            topology=live_topology,
            python=python,
            log_events=False,
        )
        eng.start()
        if len(kept) % 2:
            eng.kill()  # the stdin pipe stayed open after a kill
        else:
            eng.stop(timeout=10)
        assert eng.wait_exit(10)
        kept.append(eng)
    for eng in kept:
        for t in eng._threads:
            t.join(5)
    assert len(os.listdir("/proc/self/fd")) - before <= 0


def test_worker_exits_when_the_parent_is_sigkilled(demo8m, tmp_path):
    # The worker only noticed a dead parent on its next event write or, idle, on stdin EOF: a
    # long bench or prompt kept an orphaned worker (and its GBs of model) alive for minutes.
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from rigtui.engine.client import worker_env

    helper = Path(__file__).with_name("engine_orphan_parent.py")
    parent = subprocess.Popen([sys.executable, str(helper), str(demo8m)], stdout=subprocess.PIPE,
                              env=worker_env(), text=True)  # fmt: skip
    worker = None
    try:
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{worker}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        break  # exited; a PID 1 that does not reap leaves a zombie
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"worker {worker} still alive 10 s after its parent was killed")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker, signal.SIGKILL)


def test_refused_spawn_closes_the_events_pipe(tmp_path, live_topology):
    from types import MappingProxyType

    import pytest

    from rigtui.engine import EngineProcess
    from rigtui.model.profile import Profile

    prof = Profile(name="t", path=None, model=str(tmp_path / "m.gguf"), threads=1,
                   env=MappingProxyType({"A=B": "x"}))  # fmt: skip
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(ValueError):
            EngineProcess(prof, topology=live_topology).start()
    assert len(os.listdir("/proc/self/fd")) - before <= 0
