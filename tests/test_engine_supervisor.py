"""EngineSupervisor: launches of any backend, one fold, frozen snapshots, the chat through the
endpoint, stop and stop_all — with the real engine on the demo model, and a failing profile."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from engine_helpers import write_profile

from rigtui.engine import EngineProcess
from rigtui.engine.supervisor import EnginesSnapshot, EngineSupervisor
from rigtui.model.engine import EngineState
from rigtui.profiles import ProfileError, load_profile

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(240)


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[EnginesSnapshot] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, snap, key, ev) -> None:
        with self.lock:
            self.snapshots.append(snap)
            self.threads.add(threading.current_thread().name)


def _until(sup: EngineSupervisor, cond, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = sup.snapshot()
        if cond(snap):
            return snap
        time.sleep(0.05)
    raise AssertionError(f"timed out; last snapshot: {sup.snapshot()}")


def test_launch_chat_and_stop_through_snapshots(tmp_path, demo8m, live_topology):
    prof = write_profile(tmp_path, "sup", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n'
                                          "[sampling]\nmax_tokens = 5\n")  # fmt: skip

    def factory(profile, on_event):
        return EngineProcess(profile, on_event=on_event, topology=live_topology, log_events=False,
                             listen=("127.0.0.1", 0))  # fmt: skip

    rec = Recorder()
    sup = EngineSupervisor(factory, load_profile, topology=live_topology, publish=rec)
    key = sup.launch(str(prof))
    snap = _until(sup, lambda s: s.get(key).stats.url is not None)
    view = snap.get(key)
    assert view.profile == "sup" and view.started and view.pid and view.active
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.stats = None  # type: ignore[misc]
    assert sup.prompt(key, "hello", max_tokens=6) is None
    snap = _until(sup, lambda s: s.get(key).transcript and s.get(key).transcript[-1].endswith("\n")
                  and len(s.get(key).transcript) > 1 and s.get(key).last_done is not None)  # fmt: skip
    view = snap.get(key)
    assert view.transcript[0] == "> hello\n" and "".join(view.transcript[1:]).strip()
    assert view.last_done.n_gen == 6 and view.stats.requests_total == 1
    versions = [s.version for s in rec.snapshots]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert snap.stats == (view.stats,)  # what the sampler gets
    # no count asked (the TUI's Run screen): the profile's sampling.max_tokens, not 128
    assert sup.prompt(key, "again") is None
    snap = _until(sup, lambda s: s.get(key).stats.requests_total == 2
                  and s.get(key).last_done is not None and s.get(key).last_done.n_gen != 6)  # fmt: skip
    assert snap.get(key).last_done.n_gen == 5
    done = threading.Event()
    sup.stop(key, on_done=lambda k, err: done.set())
    assert done.wait(30)
    view = sup.snapshot().get(key)
    assert view.stats.state is EngineState.EXITED and not view.active and not view.started
    assert sup.stop_all(5.0)


def test_a_profile_that_does_not_load_is_a_failed_view(tmp_path, live_topology):
    bad = write_profile(tmp_path, "bad", 'model = "demo:8M"\nctx = "many"\n')
    sup = EngineSupervisor(lambda p, cb: None, load_profile, topology=live_topology)
    key = sup.launch(str(bad))
    snap = _until(sup, lambda s: s.get(key).stats.state is EngineState.FAILED)
    view = snap.get(key)
    assert "ctx" in view.note and view.issues and not view.started
    with pytest.raises(ProfileError):
        load_profile(bad)
    assert sup.prompt(key, "x") is not None  # refused, with the reason
    key2 = sup.launch(str(bad))  # the failed one is pruned from the list
    assert [v.key for v in sup.snapshot().instances] == [key2]
