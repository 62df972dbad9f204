"""`rigtui run`, `rigtui bench`, `rigtui profiles` end to end with an 8M demo model."""

from __future__ import annotations

import json

import pytest
from engine_helpers import write_profile

from rigtui.cli import EXIT_BAD_PROFILE, EXIT_ENGINE, EXIT_OK, main

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology
pytestmark = pytest.mark.timeout(180)


@pytest.fixture()
def prof(tmp_path, demo8m):
    return write_profile(
        tmp_path,
        "tiny",
        f'model = "{demo8m}"\nctx = 256\nthreads = 1\n[sampling]\ntemperature = 0\n',
    )


def test_run_streams_text_and_stats(prof, capsys):
    assert main(["run", str(prof), "-p", "Hello", "-n", "6"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.endswith("\n") and len(out) >= 1
    assert "gen 6 tok" in err and "tok/s" in err and "stop: length" in err


def test_run_json_events(prof, capsys):
    assert main(["run", str(prof), "-p", "Hello", "-n", "3", "--json"]) == EXIT_OK
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "starting" and kinds[-1] == "exit" and "log" not in kinds
    assert kinds.count("token") == 3 and "done" in kinds and "placement" in kinds
    assert events[-1]["code"] == 0


SLOW_PLACEMENT = """
import time
import rigtui.engine.placement as placement

_real, _calls = placement.placement_fields, []


def _slow(*args, **kwargs):
    _calls.append(1)
    if len(_calls) == 2:  # the read after generating: as slow as numa_maps of a 400 GB model
        time.sleep(6.5)
    return _real(*args, **kwargs)


placement.placement_fields = _slow
"""


def test_run_waits_for_the_placement_after_generating(prof, tmp_path, monkeypatch, capsys):
    """The worker reports where the pages are after the prompt; `run` must not stop it first
    (stop() gives 5 s before SIGTERM, and numa_maps of a big model can take longer)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_PLACEMENT)  # imported by the worker child
    monkeypatch.setenv("PYTHONPATH", str(hook))
    assert main(["run", str(prof), "-p", "Hello", "-n", "2", "--json"]) == EXIT_OK
    kinds = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    done = kinds.index("done")
    assert "placement" in kinds[:done] and "placement" in kinds[done:], kinds


def test_run_bad_profile_exit_code(tmp_path, demo8m, capsys):
    bad = write_profile(tmp_path, "bad", f'model = "{demo8m}"\nthreads = 0\ngpu_layers = -5\n')
    assert main(["run", str(bad), "-p", "x"]) == EXIT_BAD_PROFILE
    err = capsys.readouterr().err
    assert f"{bad}:2: threads: error" in err and f"{bad}:3: gpu_layers: error" in err
    assert main(["run", "no-such-profile", "-p", "x"]) == EXIT_BAD_PROFILE


def test_run_engine_failure_exit_code(tmp_path, capsys):
    import gguf
    import numpy as np

    path = tmp_path / "alien.gguf"  # a valid GGUF llama.cpp cannot load
    w = gguf.GGUFWriter(str(path), arch="nosucharch")
    w.add_tensor("x.weight", np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    p = write_profile(tmp_path, "alien", 'model = "alien.gguf"\n')
    assert main(["run", str(p), "-p", "x"]) == EXIT_ENGINE
    err = capsys.readouterr().err
    assert "load error" in err and "failed to load the model" in err


def test_bench_json_fields(prof, capsys):
    assert main(["bench", str(prof), "-p", "16", "-n", "4", "-r", "2", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in rows] == ["pp16", "tg4"]
    for r in rows:
        assert {"n_prompt", "n_gen", "avg_ts", "stddev_ts", "samples_ts", "n_threads"} <= r.keys()
        assert r["avg_ts"] > 0 and len(r["samples_ts"]) == 2 and r["profile"] == "tiny"
        assert r["fingerprint"]["cpus"] >= 1
        # where it ran, read from the worker after the tests (numa_maps, Cpus_allowed_list)
        assert sum(r["model_bytes_per_node"].values()) > 0 and r["cpus_allowed"]


def test_bench_model_and_csv_and_usage(demo8m, capsys):
    assert (
        main(["bench", "--model", str(demo8m), "-p", "0", "-n", "4", "-r", "1", "--csv"]) == EXIT_OK
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("profile,model_filename") and len(lines) == 2 and ",tg4," in lines[1]
    assert main(["bench"]) == 2
    assert main(["bench", "--model", str(demo8m), "-t", "0"]) == 2
    assert main(["bench", "--model", str(demo8m), "-d", "-5"]) == 2


def test_bench_at_depth_reads_a_deeper_context(demo8m, capsys):
    """llama-bench's -d: the tests run after that many tokens are in the context; the rows say
    so (n_depth, "tg4 @ d256"), and the engine's context is sized for the deepest."""
    assert main(["bench", "--model", str(demo8m), "-p", "8", "-n", "4", "-r", "1",
                 "-d", "0,256", "--json"]) == EXIT_OK  # fmt: skip
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") :])
    assert [(r["test"], r["n_depth"]) for r in rows] == [
        ("pp8", 0), ("tg4", 0), ("pp8 @ d256", 256), ("tg4 @ d256", 256)]  # fmt: skip
    assert all(r["avg_ts"] > 0 and "energy" in r and "tok_per_j" in r for r in rows)


def test_bench_concurrent_runs_the_instances_at_once_and_sums_them(prof, tmp_path, demo8m, capsys):
    """--concurrent: both engines load, then run the same tests together; the totals are the
    sum of the instances' rates, and each instance says where it ran."""
    other = write_profile(tmp_path, "other", f'model = "{demo8m}"\nctx = 256\nthreads = 1\n')
    assert main(["bench", str(prof), "--concurrent", str(other), "-p", "16", "-n", "4", "-r", "2",
                 "--json"]) == EXIT_OK  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    rows, totals = got["instances"], got["totals"]
    assert [(r["profile"], r["test"]) for r in rows] == [
        ("tiny", "pp16"), ("tiny", "tg4"), ("other", "pp16"), ("other", "tg4")]  # fmt: skip
    assert all(r["avg_ts"] > 0 and r["cpus_allowed"] for r in rows)
    by_test = {t["test"]: t for t in totals}
    tg = [r["avg_ts"] for r in rows if r["test"] == "tg4"]
    assert by_test["tg4"]["instances"] == 2
    assert by_test["tg4"]["avg_ts"] == pytest.approx(sum(tg))
    assert by_test["tg4"]["min_ts"] == min(tg)
    assert main(["bench", str(prof), "--concurrent", str(other), "-p", "0", "-n", "4", "-r", "1"]) == EXIT_OK
    table = capsys.readouterr().out
    assert "# 2 engines at once: tiny, other" in table and "| **all 2** |" in table
    # one node here: --per-node says why not; a sweep with it is refused
    assert main(["bench", str(prof), "--per-node"]) == 2
    assert "needs two NUMA nodes" in capsys.readouterr().err
    assert main(["bench", str(prof), "--per-node", "-t", "1,2"]) == 2
    assert main(["bench", str(prof), "--concurrent", "no-such-profile"]) == EXIT_BAD_PROFILE


def test_bench_use_cases_times_each_and_gives_its_verdict(demo8m, capsys):
    """--use-cases: the guide's four use cases timed (the prompt from an empty context, a short
    generation at the middle of the answer), each verdict from the measured speeds."""
    assert main(["bench", "--model", str(demo8m), "--use-cases", "-r", "1", "--json"]) == EXIT_OK
    got = json.loads(capsys.readouterr().out)
    cases, rows = got["use_cases"], got["rows"]
    assert [c["measured"]["id"] for c in cases] == ["UC1", "UC2", "UC3", "UC4"]
    assert [r["test"] for r in rows[:2]] == ["pp1024", "tg16 @ d1032"]  # UC1: 1024 in, 16 out
    assert rows[3]["test"] == "tg32 @ d4224"  # UC2: 4096 + 256 / 2, 32 tokens timed
    for c in cases:
        m = c["measured"]
        assert m["basis"].startswith("measured: pp") and m["ttft_s"] > 0 and m["gen_tok_s"] > 0
        assert m["verdict"] in ("interactive", "background", "offline", "non-viable")
        assert m["total_s"] == pytest.approx(m["ttft_s"] + m["gen_tokens"] / m["gen_tok_s"])
        assert c["predicted"]["id"] == m["id"]  # the plan's, beside it
    assert main(["bench", "--model", str(demo8m), "--use-cases", "-d", "512"]) == 2


def test_profiles_commands(xdg, capsys):
    assert main(["profiles", "new", "mine", "--model", "demo:8M"]) == EXIT_OK
    assert main(["profiles", "list", "--json"]) == EXIT_OK
    out = capsys.readouterr().out
    rows = json.loads(out[out.index("[") :])
    assert rows[0]["name"] == "mine" and rows[0]["origin"] == "user"
    assert main(["profiles", "check", "mine"]) == EXIT_OK
    assert main(["profiles", "show", "mine", "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["profile"]["model"] == "demo:8M" and shown["plan"]["threads"] >= 1
    assert main(["profiles", "new", "mine", "--model", "demo:8M"]) == 1  # exists


def test_profiles_list_and_show_survive_bad_files(xdg, capsys):
    """A non-UTF-8 profile (a traceback before), and escape sequences in a description, which
    must not reach the terminal."""
    folder = xdg / "config" / "rigtui" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latin1.toml").write_bytes(b'model = "x.gguf"\ndescription = "caf\xe9"\n')
    (folder / "esc.toml").write_text('model = "x.gguf"\ndescription = "a \\u001b[2J\\u001b]0;t\\u0007 b"\n')
    assert main(["profiles", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "latin1" in out and "not UTF-8" in out
    assert "\x1b" not in out and "\x07" not in out and "a \\x1b[2J" in out
    assert main(["profiles", "list", "--json"]) == EXIT_OK
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["latin1"]["problem"] and rows["esc"]["description"].startswith("a \x1b")
    assert main(["profiles", "show", "latin1"]) == EXIT_BAD_PROFILE
    captured = capsys.readouterr()
    assert "not UTF-8 text (byte" in captured.err and "save it as UTF-8" in captured.err
    assert 'description = "caf' in captured.out


def test_demo_profile_on_a_fresh_machine(xdg, capsys):
    from rigtui.profiles import duplicate_profile, update_profile

    path = duplicate_profile("demo", "small-demo")  # the shipped demo, with a 2M model to be quick
    update_profile(path, {"model": "demo:2M"})
    assert main(["run", "small-demo", "-p", "hi", "-n", "3"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "gen 3 tok" in err and "generating the synthetic demo model (2M, first use)" in err
    assert (xdg / "cache" / "rigtui" / "demo-2M-f16-v2.gguf").is_file()  # generated on first use
    assert main(["run", "small-demo", "-p", "hi", "-n", "1"]) == EXIT_OK
    assert "generating" not in capsys.readouterr().err  # only the first time


def test_bench_sweeps_numa_and_threads(prof, capsys):
    args = [
        "bench",
        str(prof),
        "-p",
        "0",
        "-n",
        "2",
        "-r",
        "1",
        "-t",
        "1",
        "--numa",
        "disabled,distribute",
    ]
    assert main([*args, "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    assert [(r["numa"], r["n_threads"]) for r in rows] == [("disabled", 1), ("distribute", 1)]


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--nodes", "3"], "NUMA node 3 does not exist"), (["-t", "0"], "threads: error"),
     (["--gpu-layers", "-5"], "gpu_layers: error")],
)  # fmt: skip
def test_profiles_new_writes_nothing_this_machine_rejects(xdg, demo8m, capsys, flags, needle):
    assert main(["profiles", "new", "bad", "--model", str(demo8m), *flags]) == EXIT_BAD_PROFILE
    err = capsys.readouterr().err
    assert needle in err and "nothing written" in err
    assert not (xdg / "config" / "rigtui" / "profiles" / "bad.toml").exists()


def test_profiles_new_model_path_is_absolute_and_may_be_fetched_later(xdg, tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["profiles", "new", "later", "--model", "later.gguf"]) == EXIT_OK
    assert "later.gguf does not exist" in capsys.readouterr().err  # said, but written
    text = (xdg / "config" / "rigtui" / "profiles" / "later.toml").read_text()
    assert f'model = "{tmp_path / "later.gguf"}"' in text
    assert main(["profiles", "new", "a b", "--model", "demo:8M"]) == 2
