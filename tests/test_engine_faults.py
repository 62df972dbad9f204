"""Bad input and faults of `rigtui run` / `rigtui bench` / the engine: each a clear message, a
non-zero exit, no hang (the issue's "Bad input" list, end to end where it matters)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from engine_helpers import write_profile

from rigtui.cli import EXIT_ENGINE, EXIT_OK, EXIT_USAGE, main
from rigtui.engine import EngineProcess
from rigtui.engine.bench import bench_profile
from rigtui.engine.compat import private_api_problem
from rigtui.model.engine import Done, Exit, Log, Placement
from rigtui.model.profile import Profile, Sampling

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def prof(tmp_path, demo8m):
    return write_profile(
        tmp_path,
        "tiny",
        f'model = "{demo8m}"\nctx = 4096\nthreads = 1\n[sampling]\ntemperature = 0\n',
    )


def test_bench_with_nothing_to_measure_is_a_usage_error_not_a_hang(demo8m, live_topology, capsys):
    t0 = time.monotonic()
    assert main(["bench", "--model", str(demo8m), "-p", "0", "-n", "0"]) == EXIT_USAGE
    assert "-p 0 -n 0: nothing to measure" in capsys.readouterr().err
    assert time.monotonic() - t0 < 10
    with pytest.raises(ValueError, match="nothing to measure"):
        bench_profile(Profile(name="x", path=None, model=str(demo8m)), live_topology,
                      n_prompt=0, n_gen=0)  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["-t", "2,0"], "-t 2,0: every thread count must be at least 1"),
        (["-ngl", "-5"], "-ngl -5: GPU layers must be -1"),
        (["--numa", "disabled,interleave"], "--numa interleave: not a llama.cpp NUMA strategy"),
        (["-r", "0"], "-r 0: at least 1"),
        (["-n", "-1"], "cannot be negative"),
    ],
)
def test_bench_usage_errors_name_the_flag(demo8m, capsys, flags, needle):
    assert main(["bench", "--model", str(demo8m), *flags]) == EXIT_USAGE
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-3"])
def test_run_rejects_a_token_count_below_one(prof, capsys, n):
    assert main(["run", str(prof), "-p", "x", "-n", n]) == EXIT_USAGE
    assert f"-n {n}: the number of tokens to generate must be at least 1" in capsys.readouterr().err


def test_run_proves_placement_on_stderr(prof, capsys):
    assert main(["run", str(prof), "-p", "Hello", "-n", "2"]) == EXIT_OK
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("placement: "))
    allowed = sorted(os.sched_getaffinity(0))
    assert "CPUs " in line and "model pages node" in line and "%)" in line
    assert str(allowed[0]) in line.split("|")[0]


def _cli_until(args: list[str], events: tuple[str, ...]) -> tuple[subprocess.Popen, int]:
    """The real CLI (`rigtui ARGS --json`) in a subprocess, read until one of `events`:
    (the process, its worker's pid)."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "rigtui", *args, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    worker = None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "starting":
                worker = ev["pid"]
            if ev["event"] in events:
                assert worker is not None, "no starting event"
                return proc, worker
    except BaseException:
        proc.kill()
        raise
    proc.kill()
    raise AssertionError(f"rigtui {' '.join(args)} ended before {events}: {proc.stderr.read()}")


def test_run_engine_sigkilled_mid_generation(prof):
    """The real CLI in a subprocess; the worker is SIGKILLed after its first token."""
    proc, worker = _cli_until(["run", str(prof), "-p", "go", "-n", "4000"], ("token",))
    try:
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_ENGINE
    assert json.loads(out.splitlines()[-1])["signal"] == signal.SIGKILL
    assert "killed by SIGKILL" in err and "dmesg | grep -i oom" in err


def _gone(pid: int, within: float) -> bool:
    """The process is gone (or a zombie nobody waits for) within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_worker_does_not_outlive_rigtui(prof, command, sig):
    """`kill -STOP` the worker, then SIGTERM (or SIGHUP: the terminal closed) rigtui: the
    worker must not stay behind, stopped forever under init."""
    tail = ["-p", "go", "-n", "4000"] if command == "run" else ["--listen", "127.0.0.1:0"]
    proc, worker = _cli_until([command, str(prof), *tail], ("token", "serving"))
    try:
        os.kill(worker, signal.SIGSTOP)
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        assert _gone(worker, 2.0), f"worker {worker} outlived rigtui {command}"
    finally:
        if proc.poll() is None:
            proc.kill()
        if not _gone(worker, 0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)


def test_log_lines_kept_as_a_bounded_tail_without_events(demo8m, live_topology):
    p = Profile(name="t", path=None, model=str(demo8m), ctx=256, threads=1,
                sampling=Sampling(temperature=0.0))  # fmt: skip
    engine = EngineProcess(p, topology=live_topology, log_events=False)
    engine.start()
    try:
        engine.prompt("hi", max_tokens=2)
        events = []
        for ev in engine.events(timeout=60):
            events.append(ev)
            if isinstance(ev, Done):
                break
        assert not [e for e in events if isinstance(e, Log)]
        assert [e for e in events if isinstance(e, Placement)]
        tail = engine.log_tail
        assert 0 < len(tail) <= 200 and any("llama" in line for line in tail)
    finally:
        ex = engine.stop()
    assert isinstance(ex, Exit) and ex.stderr_tail and ex.stderr_tail == engine.log_tail[-20:]


def test_private_sampler_api_of_the_installed_llama_cpp():
    """rigtui's worker uses Llama._init_sampler: this fails when an upgrade renames it."""
    from llama_cpp import Llama

    class Fake:  # what the check sees on a Llama instance: the class's method + the attribute
        _sampler = None
        _init_sampler = Llama._init_sampler

    assert private_api_problem(Fake()) is None

    class Renamed:
        _sampler = None

        def _build_sampler(self, top_k=40):
            return None

    assert private_api_problem(Renamed()) == "Llama._init_sampler is missing"

    class NewSignature:
        _sampler = None

        def _init_sampler(self, top_k=40, top_p=0.95, min_p=0.05, temperature=0.8):
            return None

    assert "no temp, repeat_penalty argument" in private_api_problem(NewSignature())


def test_exit_reasons_tell_oom_from_kill_and_crash():
    from rigtui.engine import exit_reason

    assert exit_reason(-9, 4, 5) == (None, 9, "killed by the kernel's OOM killer (out of memory)")
    assert exit_reason(-9, 4, 4)[2] == "killed by SIGKILL (`kill -9`, or the OOM killer)"
    assert exit_reason(-9, None, None)[2].startswith("killed by SIGKILL")  # no /proc/vmstat
    assert exit_reason(-11, 0, 0) == (None, 11, "crashed (SIGSEGV) inside llama.cpp")
    assert exit_reason(-15, 0, 0)[2] == "terminated by SIGTERM"
    assert exit_reason(3, 0, 0) == (3, None, "failed to load the model")
    assert exit_reason(1, 0, 0) == (1, None, "exited with code 1")


def test_stop_from_an_event_handler_does_not_deadlock(demo8m, live_topology):
    import threading

    exited = threading.Event()
    engine_box: list[EngineProcess] = []

    def on_event(ev):
        if isinstance(ev, Done):
            t0 = time.monotonic()
            assert engine_box[0].stop() is None and time.monotonic() - t0 < 1.0
        if isinstance(ev, Exit):
            exited.set()

    p = Profile(name="t", path=None, model=str(demo8m), ctx=256, threads=1,
                sampling=Sampling(temperature=0.0))  # fmt: skip
    engine = EngineProcess(p, topology=live_topology, on_event=on_event)
    engine_box.append(engine)
    engine.start()
    engine.prompt("hi", max_tokens=2)
    assert exited.wait(30)
    assert engine.stats.exit is not None and engine.stats.exit.code == 0


def test_llama_cpp_error_lines_reach_the_user(tmp_path, demo8m, live_topology):
    """llama.cpp says why a load failed at its ERROR level, which llama-cpp-python 0.3.x maps to
    DEBUG and drops: the message must carry it ("Failed to create llama_context" alone does not
    say what to change). `profiles check` now refuses this profile before any load, so the
    engine is handed it directly, as a profile that slipped past a check would be."""
    import dataclasses

    from rigtui.model.engine import Error
    from rigtui.profiles import load_profile

    p = write_profile(tmp_path, "qv", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    profile = dataclasses.replace(load_profile(str(p)), cache_type_v="q8_0", flash_attn=False)
    engine = EngineProcess(profile, topology=live_topology, log_events=False)
    engine.start()
    try:
        errors = [ev for ev in engine.events(timeout=120) if isinstance(ev, Error)]
    finally:
        engine.stop()
    load = next(e for e in errors if e.kind == "load")
    assert "quantized V cache requires flash_attn" in load.message, errors


def test_which_llama_cpp_log_lines_are_shown():
    from rigtui.engine.worker import (
        GGML_CONT,
        GGML_DEBUG,
        GGML_ERROR,
        GGML_INFO,
        GGML_WARN,
        log_line_shown,
    )

    # ggml.h: DEBUG 1 < INFO 2 < WARN 3 < ERROR 4; CONT 5 continues the previous line
    assert [log_line_shown(lv, GGML_INFO, False) for lv in (GGML_DEBUG, GGML_INFO, GGML_WARN,
                                                            GGML_ERROR)] == [False, True, True, True]  # fmt: skip
    assert [log_line_shown(lv, GGML_WARN, False) for lv in (GGML_INFO, GGML_WARN, GGML_ERROR)] == [
        False, True, True]  # fmt: skip
    assert log_line_shown(GGML_CONT, GGML_WARN, True) and not log_line_shown(GGML_CONT, GGML_WARN, False)
