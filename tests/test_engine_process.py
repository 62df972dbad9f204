"""The real engine: llama-cpp-python in a pinned child process, with an 8M demo model."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from engine_helpers import usable_cpu

from rigtui.engine import EngineProcess, system_info
from rigtui.model.engine import (
    Done,
    EngineState,
    Error,
    Exit,
    Loaded,
    Placement,
    PolicyApplied,
    PromptDone,
    Starting,
    Token,
)
from rigtui.model.profile import Profile, Sampling

pytestmark = pytest.mark.timeout(120)

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology


def profile(model, **kw) -> Profile:
    kw.setdefault("ctx", 512)
    kw.setdefault("threads", 1)
    return Profile(name="t", path=None, model=str(model), sampling=Sampling(temperature=0.0), **kw)


def collect_until(engine, kind, timeout=60.0):
    out = []
    for ev in engine.events(timeout=timeout):
        out.append(ev)
        if isinstance(ev, kind):
            return out
    raise AssertionError(f"no {kind.__name__} event; got {[type(e).__name__ for e in out]}")


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_launch_stream_stats_and_pinning(demo8m, live_topology):
    cpu = usable_cpu()
    engine = EngineProcess(profile(demo8m, cpus=str(cpu)), instance="pin", topology=live_topology)
    engine.start()
    try:
        engine.prompt("Hello rig", max_tokens=8)
        events = collect_until(engine, Done)
        (start,) = of(events, Starting)
        assert start.pid == engine.pid and start.instance == "pin"
        (policy,) = of(events, PolicyApplied)
        assert policy.cpus == (cpu,)
        (loaded,) = of(events, Loaded)
        assert loaded.n_params > 3_000_000 and loaded.model_bytes == demo8m.stat().st_size
        placement = of(events, Placement)[0]
        assert placement.cpus_allowed == (cpu,)  # /proc/PID/status Cpus_allowed_list
        assert placement.thread_cpus_allowed == (cpu,)  # every thread's, /proc/PID/task/*/status
        assert sum(placement.model_file_bytes_per_node.values()) > 0  # numa_maps saw the model
        (pd,) = of(events, PromptDone)
        tokens = of(events, Token)
        done = of(events, Done)[0]
        assert [t.index for t in tokens] == list(range(done.n_gen)) and done.n_gen == 8
        assert pd.n_tokens == done.n_prompt > 1
        assert (
            done.gen_tok_s
            and done.gen_tok_s > 0
            and done.ttft_s > 0
            and done.stop_reason == "length"
        )
        with open(f"/proc/{engine.pid}/status") as f:
            assert f"Cpus_allowed_list:\t{cpu}\n" in f.read()
        stats = engine.stats
        assert stats.state is EngineState.READY and stats.n_gen == 8 and stats.total_gen == 8
        assert stats.gen_tok_s == done.gen_tok_s and stats.model_path == str(demo8m)
    finally:
        ex = engine.stop()
    assert ex is not None and ex.code == 0 and ex.reason == "exited normally"
    assert engine.stats.state is EngineState.EXITED


def test_memory_policy_applied_before_load(demo8m, live_topology):
    engine = EngineProcess(
        profile(demo8m, memory_policy="interleave", memory_nodes=(0,)), topology=live_topology
    )
    engine.start()
    try:
        events = collect_until(engine, Placement)
        (policy,) = of(events, PolicyApplied)
        assert policy.memory_policy == "interleave" and policy.policy_nodes == (0,)
        with open(f"/proc/{engine.pid}/numa_maps") as f:
            maps = f.read()
        model_lines = [ln for ln in maps.splitlines() if str(demo8m) in ln]
        assert model_lines and all("interleave:0" in ln for ln in model_lines)
    finally:
        engine.stop()


def test_cancel_mid_generation(demo8m, live_topology):
    engine = EngineProcess(profile(demo8m, ctx=2048), topology=live_topology)
    engine.start()
    try:
        engine.prompt("count", max_tokens=1500)
        seen = 0
        for ev in engine.events(timeout=60):
            if isinstance(ev, Token):
                seen += 1
                if seen == 3:
                    engine.cancel()
            if isinstance(ev, Done):
                break
        assert ev.stop_reason == "cancelled" and ev.n_gen < 1500
        engine.prompt("again", max_tokens=4)  # the engine still serves
        done = of(collect_until(engine, Done), Done)[0]
        assert done.n_gen == 4 and done.stop_reason == "length"
    finally:
        engine.stop()


def test_sigkill_mid_generation_becomes_exit_event(demo8m, live_topology):
    got: list = []
    exited = threading.Event()

    def on_event(ev):
        got.append(ev)
        if isinstance(ev, Token) and ev.index == 2:
            os.kill(ev_pid[0], signal.SIGKILL)
        if isinstance(ev, Exit):
            exited.set()

    ev_pid: list[int] = []
    engine = EngineProcess(profile(demo8m, ctx=2048), on_event=on_event, topology=live_topology)
    engine.start()
    ev_pid.append(engine.pid)
    engine.prompt("go", max_tokens=1500)
    assert exited.wait(60)
    (ex,) = of(got, Exit)
    assert ex.signal == signal.SIGKILL and ex.code is None and "SIGKILL" in ex.reason
    assert ex.stderr_tail  # llama.cpp's last log lines
    assert engine.stats.state is EngineState.FAILED and not engine.running
    assert engine.stop() == ex  # stopping a dead engine is fine


def test_unloadable_model_fails_cleanly(tmp_path, live_topology):
    bad = tmp_path / "bad.gguf"
    bad.write_text("this is not a model\n")
    engine = EngineProcess(profile(bad), topology=live_topology)
    engine.start()
    events = list(engine.events(timeout=60))
    err = of(events, Error)[0]
    assert err.kind == "load" and "bad.gguf" in err.message
    ex = of(events, Exit)[0]
    assert ex.code == 3 and ex.reason == "failed to load the model"
    assert engine.stats.state is EngineState.FAILED


def test_policy_failure_is_reported(demo8m, live_topology):
    if len(live_topology.nodes) > 7:
        pytest.skip("node 7 exists here")
    engine = EngineProcess(
        profile(demo8m, memory_policy="bind", memory_nodes=(7,)), topology=live_topology
    )
    engine.start()
    events = list(engine.events(timeout=60))
    err = of(events, Error)[0]
    assert err.kind == "policy" and "online nodes" in err.message
    assert of(events, Exit)[0].code == 2 and not of(events, Loaded)


def test_two_engines_at_once_and_restart(demo8m, live_topology):
    a = EngineProcess(profile(demo8m), instance="a", topology=live_topology)
    b = EngineProcess(profile(demo8m), instance="b", topology=live_topology)
    a.start()
    b.start()
    try:
        assert a.pid != b.pid
        a.prompt("one", max_tokens=3)
        b.prompt("two", max_tokens=5)
        done_a = of(collect_until(a, Done), Done)[0]
        done_b = of(collect_until(b, Done), Done)[0]
        assert (done_a.instance, done_a.n_gen) == ("a", 3) and (done_b.instance, done_b.n_gen) == (
            "b",
            5,
        )
        old = a.pid
        a.restart()
        assert a.pid != old
        a.prompt("three", max_tokens=2)
        assert of(collect_until(a, Done), Done)[0].n_gen == 2
    finally:
        a.stop()
        b.stop()


def test_stop_kills_a_hung_worker(demo8m, live_topology):
    engine = EngineProcess(profile(demo8m), topology=live_topology)
    engine.start()
    collect_until(engine, Loaded)
    os.kill(engine.pid, signal.SIGSTOP)  # a worker that no longer reads its stdin
    t0 = time.monotonic()
    ex = engine.stop(timeout=1.0)
    assert (
        time.monotonic() - t0 < 10
        and ex is not None
        and ex.signal in (signal.SIGTERM, signal.SIGKILL)
    )


def test_bench_op(demo8m, live_topology):
    from rigtui.model.engine import BenchResult

    engine = EngineProcess(profile(demo8m), topology=live_topology)
    engine.start()
    try:
        engine.bench(n_prompt=32, n_gen=8, reps=2)
        events = collect_until(engine, BenchResult)
        pp = of(events, BenchResult)[0]
        tg = of(collect_until(engine, BenchResult), BenchResult)[0]
        assert (pp.test, pp.n_prompt, len(pp.samples_s)) == ("pp", 32, 2)
        assert (tg.test, tg.n_gen, len(tg.samples_s)) == ("tg", 8, 2) and all(
            s > 0 for s in tg.samples_s
        )
    finally:
        engine.stop()


def test_system_info():
    info = system_info()
    assert info.available and "CPU" in info.system_info and isinstance(info.gpu_offload, bool)
