"""SlotTracker, pure: llama-server's /slots and /metrics answers (shapes as recorded from the
build in the user cache dir) folded into the engine's events."""

from __future__ import annotations

from rigtui.engine.server_monitor import SlotTracker, parse_metrics
from rigtui.model.engine import Done, Progress, PromptDone, Requests, Slots

METRICS = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {p}
llamacpp:prompt_seconds_total {ps}
llamacpp:tokens_predicted_total {g}
llamacpp:tokens_predicted_seconds_total {gs}
llamacpp:requests_processing 0
"""


def _metrics(p=0, ps=0.0, g=0, gs=0.0):
    return parse_metrics(METRICS.format(p=p, ps=ps, g=g, gs=gs))


def _slot(busy: bool, task: int | None, decoded: int = 0, prompt: int = 0) -> dict:
    s = {"id": 0, "n_ctx": 1024, "speculative": False, "is_processing": busy}
    if task is not None:
        s.update(id_task=task, n_prompt_tokens=prompt,
                 next_token=[{"has_next_token": busy, "n_remain": -1, "n_decoded": decoded}])
    return s


def kinds(events):
    return [cls for cls, _ in events]


def test_a_request_followed_from_start_to_end():
    tr = SlotTracker()
    assert kinds(tr.step([_slot(False, None)], _metrics(), 0.0)) == [Slots]
    assert not tr.wants_metrics([_slot(True, 0, 0, 11)])  # prompt still being processed
    out = tr.step([_slot(True, 0, 0, 11)], None, 1.0)
    assert (Requests, {"in_flight": 1, "total": 1}) in out
    now = [_slot(True, 0, 5, 11)]
    assert tr.wants_metrics(now)  # the prompt is done: its figures are in /metrics
    out = dict(tr.step(now, _metrics(p=11, ps=0.01), 1.25))
    assert out[PromptDone] == {"n_tokens": 11, "seconds": 0.01}
    out = dict(tr.step([_slot(True, 0, 25, 11)], None, 1.5))
    assert out[Progress]["n_gen"] == 25
    assert abs(out[Progress]["n_gen"] / out[Progress]["seconds"] - 80.0) < 1e-6  # 20 tok / 0.25 s
    end = [_slot(False, 0, 30, 11)]
    assert tr.wants_metrics(end)
    out = dict(tr.step(end, _metrics(p=11, ps=0.01, g=30, gs=0.5), 1.75))
    assert out[Done]["n_gen"] == 30 and out[Done]["gen_tok_s"] == 60.0
    assert out[Done]["n_prompt"] == 11 and out[Requests] == {"in_flight": 0, "total": 1}


def test_a_request_between_two_polls_is_counted_not_lost():
    tr = SlotTracker()
    tr.step([_slot(False, 4, 10)], _metrics(g=10, gs=0.1), 0.0)  # an earlier request: task 4
    assert not tr.wants_metrics([_slot(False, 4, 10)])
    later = [_slot(False, 7, 20)]  # two more came and went: the task id moved on
    assert tr.wants_metrics(later)
    out = dict(tr.step(later, _metrics(p=8, ps=0.02, g=50, gs=0.6), 1.0))
    assert out[Done]["n_gen"] == 40 and out[Requests]["total"] == 1
