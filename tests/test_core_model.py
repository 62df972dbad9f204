"""Model types: JSON conversion and the engine event round trip."""

from __future__ import annotations

import json
import math
from types import MappingProxyType

import pytest

from rigtui.model import Done, Exit, Placement, Token, event_from_json, event_to_json, to_jsonable


def test_to_jsonable_handles_nan_mappings_and_tuples():
    out = to_jsonable({"a": (1, 2), 3: MappingProxyType({1: math.nan}), "s": frozenset({2, 1})})
    assert out == {"a": [1, 2], "3": {"1": None}, "s": [1, 2]}
    json.dumps(out)


@pytest.mark.parametrize(
    "ev",
    [
        Token(instance="a", t=1.5, text="hé", index=0),
        Done(
            instance="a",
            t=2.0,
            n_prompt=5,
            n_gen=8,
            prompt_s=0.1,
            gen_s=0.4,
            prompt_tok_s=50.0,
            gen_tok_s=20.0,
            ttft_s=0.12,
            stop_reason="length",
        ),
        Placement(
            instance="a",
            t=3.0,
            pid=42,
            cpus_allowed=(1,),
            mems_allowed=(0,),
            model_file_bytes_per_node=MappingProxyType({0: 4096, 1: 8192}),
            anon_bytes_per_node=MappingProxyType({}),
        ),
        Exit(
            instance="b",
            t=4.0,
            code=None,
            signal=9,
            reason="killed by SIGKILL",
            stderr_tail=("x", "y"),
        ),
    ],
)
def test_event_round_trip_through_json_text(ev):
    line = json.dumps(event_to_json(ev))
    back = event_from_json(json.loads(line))
    assert back == ev


def test_event_from_json_rejects_unknown_and_incomplete():
    with pytest.raises(ValueError, match="unknown engine event"):
        event_from_json({"event": "nope"})
    with pytest.raises(ValueError, match="bad token event"):
        event_from_json({"event": "token", "instance": "a", "t": 1.0})


def test_every_public_name_resolves_and_lazy_ones_stay_lazy():
    import subprocess
    import sys

    import rigtui.model as m

    for name in m.__all__:
        assert getattr(m, name) is not None
    from rigtui.model import Plan, Profile, parse_cpulist  # resolved on first use

    assert parse_cpulist("0-2,5") == (0, 1, 2, 5)
    assert (
        Plan.__module__ == "rigtui.model.analysis" and Profile.__module__ == "rigtui.model.profile"
    )
    # A fresh interpreter that only imports the model does not build the analysis/profile types.
    code = "import sys, rigtui.model; print('rigtui.model.analysis' in sys.modules, 'rigtui.model.profile' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    with pytest.raises(AttributeError):
        m.NoSuchThing  # noqa: B018
