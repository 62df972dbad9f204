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
    snap = _until(sup, lambda s: s.get(key).transcript.endswith("\n")
                  and s.get(key).transcript != "> hello\n" and s.get(key).last_done is not None)  # fmt: skip
    view = snap.get(key)
    assert view.transcript.startswith("> hello\n") and view.transcript[8:].strip()
    assert view.transcript_end == len(view.transcript)
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


class StreamingEngine:
    """A stand-in engine that streams `n` tokens from a thread as fast as it can."""

    def __init__(self, profile, on_event) -> None:
        self.on_event, self.pid = on_event, 4242
        self.log_tail = ("llama: loaded", "llama: oops")

    def start(self) -> None:
        from rigtui.model.engine import Loaded

        self.on_event(Loaded(instance="x", t=0.0, load_s=0.1, model_path="m.gguf", model_bytes=1,
                             n_params=None, n_ctx=64, n_threads=1, n_gpu_layers=0))  # fmt: skip

    def burst(self, words: list[str]) -> None:
        from rigtui.model.engine import Done, Token

        for i, word in enumerate(words):
            self.on_event(Token(instance="x", t=float(i), text=word, index=i))
        self.on_event(Done(instance="x", t=1.0, n_prompt=1, n_gen=len(words), prompt_s=0.1,
                           gen_s=1.0, prompt_tok_s=10.0, gen_tok_s=float(len(words)),
                           ttft_s=0.1, stop_reason="length"))  # fmt: skip

    def stop(self, timeout: float | None = None) -> None:
        pass


def _streamed_launch(stream_interval: float):
    from types import SimpleNamespace

    engines: list[StreamingEngine] = []

    def factory(profile, on_event):
        engines.append(StreamingEngine(profile, on_event))
        return engines[-1]

    rec = Recorder()
    sup = EngineSupervisor(factory, lambda name, topology=None: SimpleNamespace(name=name),
                           publish=rec, stream_interval=stream_interval)  # fmt: skip
    key = sup.launch("burst")
    _until(sup, lambda s: s.get(key).started)
    return sup, key, engines[0], rec


def test_a_burst_of_tokens_is_published_as_a_few_snapshots_with_all_its_text():
    words = [f"w{i} " for i in range(1000)]
    sup, key, engine, rec = _streamed_launch(0.05)
    before = len(rec.snapshots)
    engine.burst(words)
    snap = _until(sup, lambda s: s.get(key).last_done is not None, 10)
    view = snap.get(key)
    # Done is published at once, with every token before it folded in
    assert view.transcript == "".join(words) and view.transcript_end == len(view.transcript)
    assert view.stats.n_gen == 1000
    time.sleep(0.2)  # a flush still pending publishes nothing new
    assert len(rec.snapshots) - before <= 5, len(rec.snapshots) - before
    # the same tokens one per publish (no coalescing): one snapshot each
    sup2, key2, engine2, rec2 = _streamed_launch(0.0)
    before2 = len(rec2.snapshots)
    engine2.burst(words)
    assert len(rec2.snapshots) - before2 == 1001
    assert sup2.snapshot().get(key2).transcript == view.transcript


def test_slow_streaming_is_published_within_the_interval():
    sup, key, engine, rec = _streamed_launch(0.05)
    from rigtui.model.engine import Token

    engine.on_event(Token(instance="x", t=0.0, text="first ", index=0))
    assert sup.snapshot().get(key).transcript == ""  # not published yet...
    snap = _until(sup, lambda s: s.get(key).transcript == "first ", 2)  # ...but soon
    assert snap.get(key).stats.n_gen == 1
    assert rec.snapshots[-1] is snap and snap.version == max(s.version for s in rec.snapshots)


def test_the_transcript_keeps_its_tail_and_counts_everything():
    from rigtui.engine.supervisor import TRANSCRIPT_CHARS

    sup, key, engine, rec = _streamed_launch(0.0)
    words = ["x" * 1000] * (TRANSCRIPT_CHARS // 1000 + 10)
    engine.burst(words)
    view = sup.snapshot().get(key)
    assert len(view.transcript) == TRANSCRIPT_CHARS
    assert view.transcript_end == 1000 * len(words)


def test_a_failure_carries_the_engine_log_tail():
    from rigtui.model.engine import Exit

    sup, key, engine, rec = _streamed_launch(0.05)
    engine.on_event(Exit(instance="x", t=2.0, code=1, signal=None, reason="exit code 1",
                         stderr_tail=("oops",)))  # fmt: skip
    view = sup.snapshot().get(key)
    assert view.log_tail == ("llama: loaded", "llama: oops")
    assert "engine exited: exit code 1" in view.event_lines
