"""Recording and replay: NDJSON round trips, bad lines, the `rigtui sample` command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from telemetry_helpers import make_topology, proc_tree

from rigtui.cli import main
from rigtui.hostfs import HostFS
from rigtui.model.engine import EngineState, EngineStats
from rigtui.telemetry import Sampler
from rigtui.telemetry.record import (
    Recorder,
    read_header,
    replay,
    sample_from_json,
    sample_to_json,
    topology_from_json,
    topology_to_json,
)

DEMO = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"
FIXED_KEYS = {
    "t",
    "cpu",
    "memory_traffic",
    "nodes",
    "temperatures",
    "gpus",
    "placement",
    "sample_cost_ms",
}
TRAFFIC_KEYS = {"socket", "read_gbs", "write_gbs", "source", "available", "reason"}


def _samples(tmp_path, n=3):
    proc_tree(tmp_path, cpus=4, nodes=2)
    topo = make_topology(sockets=2, cpus_per_socket=2, root=str(tmp_path))
    e = EngineStats("e1", "demo", EngineState.GENERATING, pid=None, gen_tok_s=12.5, n_gen=7)
    with Sampler(HostFS(str(tmp_path)), topo, bytes_per_token=1e8) as sm:
        return topo, [sm.sample((e,)) for _ in range(n)]


def test_record_and_replay_round_trip(tmp_path):
    topo, samples = _samples(tmp_path / "tree")
    path = tmp_path / "rec.ndjson"
    with Recorder(path, topo, recorded="unit test") as rec:
        for s in samples:
            rec.write(s)
    header = read_header(path)
    assert header["recorded"] == "unit test" and header["fingerprint"]["sockets"] == 2
    problems = []
    got_topo, it = replay(path, problems)
    assert got_topo == topo
    assert list(it) == samples and not problems
    # appending to an existing recording does not write a second header
    with Recorder(path, topo) as rec:
        rec.write(samples[0])
    assert sum('"rigtui_recording"' in line for line in path.read_text().splitlines()) == 1


def test_replay_skips_bad_lines_and_bare_json(tmp_path):
    _, samples = _samples(tmp_path / "tree", n=2)
    path = tmp_path / "bare.ndjson"
    lines = [
        json.dumps(sample_to_json(samples[0])),
        "{not json",
        "[1, 2]",
        json.dumps({"t": "yesterday"}),
        "",
        json.dumps(sample_to_json(samples[1])),
    ]
    path.write_text("\n".join(lines) + "\n")
    problems = []
    topo, it = replay(path, problems)
    assert topo is None
    assert list(it) == samples
    assert [p.path for p in problems] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    with pytest.raises(OSError):
        replay(tmp_path / "missing.ndjson")


def test_topology_of_a_real_machine_round_trips(fixture_root):
    from rigtui.probes import detect

    for fs in (HostFS("/"), HostFS(str(fixture_root("16em64t-4s2c2t")))):
        topo = detect(fs)
        back = topology_from_json(json.loads(json.dumps(topology_to_json(topo))))
        assert back == topo


def test_sample_command_live_json(capsys):
    assert main(["sample", "--count", "2", "--interval", "0.1", "--json", "--no-nvml"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert set(obj) >= FIXED_KEYS
        assert len(obj["cpu"]["per_cpu"]) == len(obj["cpu"]["cpu_ids"]) >= 1
        assert obj["memory_traffic"] and set(obj["memory_traffic"][0]) >= TRAFFIC_KEYS
        assert obj["sample_cost_ms"] < 50
        sample_from_json(obj)


def test_sample_command_record_then_replay_text(tmp_path, capsys):
    rec = tmp_path / "s.ndjson"
    assert (
        main(["sample", "--count", "1", "--interval", "0.05", "--record", str(rec), "--no-nvml"])
        == 0
    )
    text = capsys.readouterr().out
    assert "cpu" in text and "mem traffic s0" in text
    assert read_header(rec)["topology"] is not None
    assert main(["sample", "--replay", str(rec), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out.splitlines()[0])) >= FIXED_KEYS
    assert main(["sample", "--replay", str(tmp_path / "nope.ndjson")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["sample", "--count", "0"]) == 2


def test_sample_command_missing_pid(capsys):
    assert main(["sample", "--pid", "999999999", "--count", "1"]) == 2
    assert "no process 999999999" in capsys.readouterr().err


@pytest.mark.skipif(not DEMO.exists(), reason="tests/data/replay-vm-demo.ndjson not recorded yet")
def test_demo_recording_replays():
    problems = []
    topo, it = replay(DEMO, problems)
    samples = list(it)
    assert topo is not None and not problems
    assert len(samples) >= 15
    assert all(s.interval_s for s in samples)
    assert samples == sorted(samples, key=lambda s: s.t)
    generating = [s for s in samples if any(e.state == EngineState.GENERATING for e in s.engines)]
    assert generating
    est = [m for s in generating for m in s.memory_traffic if m.source == "estimate"]
    assert est and all(m.read_gbs and m.read_gbs > 0 for m in est)
    assert any(s.placement and s.placement.model_file_bytes_per_node for s in samples)
    assert any(s.cpu.engine_threads for s in samples)
    assert read_header(DEMO)["recorded"]
    assert time.time() > samples[-1].t


def test_text_mode_says_a_missing_source_reason_once(tmp_path, capsys):
    from rigtui.commands.sample import format_sample

    rec = tmp_path / "s.ndjson"
    assert main(["sample", "--count", "2", "--interval", "0.05", "--record", str(rec),
                 "--no-nvml", "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    _, it = replay(rec, [])
    first, second = list(it)
    if first.memory_traffic[0].available:
        pytest.skip("this machine reports memory traffic")
    shown: set[str] = set()
    reason = first.memory_traffic[0].reason
    assert reason in format_sample(first, shown) and reason in shown
    assert second.memory_traffic[0].reason == reason  # the same machine, a moment later
    again = format_sample(second, shown)
    assert "n/a (as above)" in again and reason not in again
    assert reason in format_sample(second)  # without the set: always said


def test_record_into_the_replayed_file_or_a_missing_folder_is_refused(tmp_path, capsys):
    from rigtui.cli import EXIT_USAGE, main

    rec = tmp_path / "r.ndjson"
    assert main(["sample", "--count", "2", "--interval", "0.05", "--json", "--record",
                 str(rec), "--no-nvml"]) == 0  # fmt: skip
    capsys.readouterr()
    size = rec.stat().st_size
    # the same file by another name: it would read its own lines back forever
    assert main(["sample", "--replay", str(rec), "--record",
                 str(tmp_path / "." / "r.ndjson")]) == EXIT_USAGE  # fmt: skip
    assert "is the file being replayed" in capsys.readouterr().err
    assert rec.stat().st_size == size
    assert main(["sample", "--count", "1", "--record", str(tmp_path / "no/such/r.ndjson"),
                 "--no-nvml"]) == EXIT_USAGE  # fmt: skip
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", "--replay", str(rec), "--record", str(tmp_path / "copy.ndjson")]) == 0


def test_replay_of_a_fifo_or_device_is_refused_not_a_hang(tmp_path, capsys):
    import os

    from rigtui.cli import main

    fifo = tmp_path / "rec.fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        assert main(["sample", "--replay", path]) == 1  # returns: no open() that blocks
        assert "not a regular file" in capsys.readouterr().err


def test_an_over_long_line_is_skipped_in_bounded_memory(tmp_path, monkeypatch):
    import rigtui.telemetry.record as record

    src = tmp_path / "a.ndjson"
    assert main(["sample", "--count", "1", "--interval", "0.05", "--json", "--record", str(src),
                 "--no-nvml"]) == 0  # fmt: skip
    header, sample = src.read_text().splitlines()
    cap = max(len(header), len(sample)) + 10
    monkeypatch.setattr(record, "MAX_LINE", cap)
    rec = tmp_path / "b.ndjson"  # two lines past the cap (one of 3 caps), around a real sample
    rec.write_text("\n".join([header, "x" * (cap + 1), sample, "y" * (3 * cap), sample]) + "\n")
    problems: list = []
    _, samples = record.replay(rec, problems)
    assert len(list(samples)) == 2
    assert [p.path.rsplit(":", 1)[1] for p in problems] == ["2", "4"], problems
    assert all("longer than" in p.reason for p in problems)
