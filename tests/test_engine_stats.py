from __future__ import annotations

from rigtui.engine.stats import fold
from rigtui.model.engine import (
    Done,
    EngineState,
    Error,
    Exit,
    Loaded,
    LoadProgress,
    PromptDone,
    Starting,
    Token,
    event_from_json,
    event_to_json,
)

INST = "e1"


def run(events):
    s = None
    states = []
    for ev in events:
        s = fold(s, ev)
        states.append(s)
    return states


def test_lifecycle_and_live_rate():
    evs = [
        Starting(INST, 100.0, pid=42, profile="demo"),
        LoadProgress(INST, 100.5, progress=0.5),
        Loaded(
            INST,
            101.0,
            load_s=1.0,
            model_path="/m.gguf",
            model_bytes=10,
            n_params=5,
            n_ctx=512,
            n_threads=2,
            n_gpu_layers=0,
        ),  # fmt: skip
        PromptDone(INST, 102.0, n_tokens=10, seconds=0.5),
        Token(INST, 102.5, text="a", index=0),
        Token(INST, 103.0, text="b", index=1),
        Done(
            INST,
            103.1,
            n_prompt=10,
            n_gen=2,
            prompt_s=0.5,
            gen_s=1.1,
            prompt_tok_s=20.0,
            gen_tok_s=2 / 1.1,
            ttft_s=0.6,
            stop_reason="length",
        ),  # fmt: skip
        Exit(INST, 104.0, code=0, signal=None, reason="exited normally"),
    ]
    states = run(evs)
    assert [s.state for s in states] == [
        EngineState.STARTING, EngineState.LOADING, EngineState.READY, EngineState.GENERATING,
        EngineState.GENERATING, EngineState.GENERATING, EngineState.READY, EngineState.EXITED,
    ]  # fmt: skip
    assert states[0].pid == 42 and states[0].profile == "demo"
    assert states[1].load_progress == 0.5 and states[2].load_progress == 1.0
    assert states[3].prompt_tok_s == 20.0
    assert states[4].gen_tok_s == 1 / 0.5 and states[5].gen_tok_s == 2 / 1.0  # live
    assert states[6].gen_tok_s == 2 / 1.1 and states[6].total_gen == 2 and states[6].ttft_s == 0.6


def test_crash_and_errors():
    s = run(
        [Starting(INST, 1.0, pid=1, profile="p"), Error(INST, 2.0, message="no file", kind="load")]
    )[-1]
    assert s.state is EngineState.FAILED and s.last_error == "no file"
    s = fold(s, Exit(INST, 3.0, code=3, signal=None, reason="failed to load the model"))
    assert s.state is EngineState.FAILED and s.last_error == "no file"
    killed = fold(fold(None, Starting(INST, 1.0, pid=1, profile="p")),
                  Exit(INST, 2.0, code=None, signal=9, reason="killed by SIGKILL"))  # fmt: skip
    assert killed.state is EngineState.FAILED and killed.last_error == "killed by SIGKILL"
    prompt_err = run([Starting(INST, 1.0, pid=1, profile="p"), PromptDone(INST, 2.0, n_tokens=1, seconds=0.1),
                      Error(INST, 3.0, message="ctx full", kind="prompt")])[-1]  # fmt: skip
    assert prompt_err.state is EngineState.READY


def test_restart_keeps_total():
    s = run([Starting(INST, 1.0, pid=1, profile="p"), PromptDone(INST, 2.0, n_tokens=1, seconds=0.1),
             Token(INST, 2.1, text="x", index=0)])[-1]  # fmt: skip
    s = fold(s, Starting(INST, 5.0, pid=2, profile="p"))
    assert s.pid == 2 and s.total_gen == 1 and s.n_gen == 0


def test_bench_event_round_trips():
    from rigtui.model.engine import BenchResult

    ev = BenchResult(INST, 1.0, test="tg", n_prompt=0, n_gen=8, n_threads=2, samples_s=(0.1, 0.2))
    assert event_from_json(event_to_json(ev)) == ev
    assert fold(None, ev).state is EngineState.IDLE


def test_fold_served_requests_without_token_events():
    """A served request sends prompt_done, a few progress events and done: no tokens."""
    from rigtui.engine.stats import fold
    from rigtui.model.engine import (
        Done,
        EngineState,
        Exit,
        Progress,
        PromptDone,
        Requests,
        Serving,
    )

    s = fold(None, Serving(instance="a", t=1.0, url="http://127.0.0.1:8080/v1", host="127.0.0.1",
                           port=8080, model="demo"))  # fmt: skip
    assert s.url == "http://127.0.0.1:8080/v1"
    s = fold(s, Requests(instance="a", t=1.1, in_flight=1, total=1))
    s = fold(s, PromptDone(instance="a", t=1.2, n_tokens=20, seconds=0.1))
    s = fold(s, Progress(instance="a", t=1.5, n_gen=10, seconds=0.25))
    assert s.state is EngineState.GENERATING and s.gen_tok_s == 40.0 and s.total_gen == 10
    s = fold(s, Done(instance="a", t=2.0, n_prompt=20, n_gen=31, prompt_s=0.1, gen_s=0.8,
                     prompt_tok_s=200.0, gen_tok_s=37.5, ttft_s=0.12, stop_reason="length"))  # fmt: skip
    assert s.state is EngineState.READY and s.total_gen == 31 and s.ttft_s == 0.12
    s = fold(s, Requests(instance="a", t=2.1, in_flight=0, total=1))
    assert (s.requests_in_flight, s.requests_total) == (0, 1)
    s = fold(s, Exit(instance="a", t=3.0, code=0, signal=None, reason="exited normally"))
    assert s.url is None and s.state is EngineState.EXITED
