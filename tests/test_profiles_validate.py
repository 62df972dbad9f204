from __future__ import annotations

import pytest
from engine_helpers import fixture_topology, write_profile

from rigtui.profiles import ProfileError, check_profile, list_profiles, load_profile, plan_launch

pytest_plugins = ["engine_fixtures"]  # fixtures: demo8m, xdg, live_topology


def issues_by_key(issues):
    return {i.key: i for i in issues}


def test_valid_profile_loads(tmp_path, demo8m, live_topology):
    p = write_profile(
        tmp_path,
        "ok",
        f"""
        # my profile
        model = "{demo8m}"
        threads = 1
        cpus = "0"
        memory_policy = "bind"
        memory_nodes = [0]
        [sampling]
        temperature = 0
        max_tokens = 5
    """,
    )
    prof = load_profile(p, topology=live_topology)
    assert prof.name == "ok" and prof.threads == 1 and prof.sampling.temperature == 0.0
    assert prof.sampling.max_tokens == 5 and prof.memory_nodes == (0,)
    assert check_profile(p, live_topology) == []


def test_errors_name_file_line_key_and_hint(tmp_path, demo8m, live_topology):
    p = write_profile(
        tmp_path,
        "bad",
        f"""
        model = "{demo8m}"
        thread = 4
        ctx = "big"
        threads = 0
        gpu_layers = -2
        numa = "spread"
        nodes = [3]
        [sampling]
        top_p = 2.0
        topk = 3
    """,
    )
    with pytest.raises(ProfileError) as info:
        load_profile(p, topology=live_topology)
    by_key = issues_by_key(info.value.issues)
    assert by_key["thread"].line == 2 and "did you mean `threads`" in by_key["thread"].hint
    assert by_key["ctx"].line == 3 and "integer" in by_key["ctx"].message
    assert by_key["threads"].line == 4 and "out of range" in by_key["threads"].message
    assert by_key["gpu_layers"].line == 5 and "-1 offloads every layer" in by_key["gpu_layers"].hint
    assert by_key["numa"].line == 6 and "distribute" in by_key["numa"].message
    assert by_key["sampling.top_p"].line == 9
    assert by_key["sampling.topk"].line == 10 and "top_k" in by_key["sampling.topk"].hint
    assert all(i.file == str(p) for i in info.value.issues)
    assert f"{p}:2: thread: error: unknown key `thread`" in str(info.value)


def test_llama_cpp_spellings_and_wrong_types_get_a_hint(tmp_path, demo8m, live_topology):
    p = write_profile(
        tmp_path,
        "habits",
        f"""
        model = "{demo8m}"
        ngl = 20
        n_ctx = 4096
        mmap = "yes"
        nodes = 0
        threads = "8"
        [sampling]
        temp = 0.7
    """,
    )
    with pytest.raises(ProfileError) as info:
        load_profile(p, topology=live_topology)
    hint = {i.key: i.hint for i in info.value.issues}
    assert hint["ngl"] == "did you mean `gpu_layers`?" and hint["n_ctx"] == "did you mean `ctx`?"
    assert hint["sampling.temp"] == "did you mean `temperature`?"
    assert hint["mmap"] == "write mmap = true or mmap = false (lower case, no quotes)"
    assert hint["nodes"] == "write a list in brackets: nodes = [0]"
    assert hint["threads"].startswith("write a number without quotes")


def test_node_3_on_a_one_node_box(tmp_path, demo8m, live_topology):
    if len(live_topology.nodes) > 3:
        pytest.skip("this machine has a node 3")
    p = write_profile(tmp_path, "n3", f'model = "{demo8m}"\nnodes = [3]\nmemory_policy = "bind"\n')
    issues = check_profile(p, live_topology)
    node_issue = next(i for i in issues if i.key == "nodes" and "does not exist" in i.message)
    assert node_issue.line == 2 and node_issue.severity == "error"
    assert "numactl -H" in node_issue.hint
    # without a topology the file itself is fine (checked again at launch)
    assert load_profile(p).nodes == (3,)


def test_cpus_that_do_not_exist(tmp_path, demo8m, live_topology):
    p = write_profile(tmp_path, "c", f'model = "{demo8m}"\ncpus = "0,4096-4097"\n')
    (issue,) = [i for i in check_profile(p, live_topology) if i.key == "cpus"]
    assert "4096-4097" in issue.message and issue.line == 2
    p2 = write_profile(tmp_path, "c2", f'model = "{demo8m}"\ncpus = "3-1"\n')
    assert "backwards" in check_profile(p2, live_topology)[0].message


def test_toml_syntax_error_has_line(tmp_path):
    p = write_profile(tmp_path, "syn", 'model = "x.gguf"\nthreads = = 3\n')
    (issue,) = check_profile(p, None)
    assert issue.line == 2 and "not valid TOML" in issue.message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"<html><body>404 Not Found</body></html>\n", "text file, not a GGUF"),
        (b"", "empty"),
        (b"GGUF\x03\x00\x00\x00\x05", "truncated"),
    ],
)
def test_bad_model_files(tmp_path, content, needle):
    (tmp_path / "m.gguf").write_bytes(content)
    p = write_profile(tmp_path, "m", 'model = "m.gguf"\n')  # relative to the profile file
    (issue,) = check_profile(p, None)
    assert issue.key == "model" and issue.line == 1 and needle in issue.message and issue.hint


def test_truncated_real_model(tmp_path, demo8m):
    data = demo8m.read_bytes()
    (tmp_path / "t.gguf").write_bytes(data[: len(data) // 2])
    p = write_profile(tmp_path, "t", 'model = "t.gguf"\n')
    (issue,) = check_profile(p, None)
    assert "truncated" in issue.message and "download it again" in issue.hint


def test_missing_model_and_no_model(tmp_path):
    p = write_profile(tmp_path, "x", 'model = "nope.gguf"\n')
    assert "does not exist" in check_profile(p, None)[0].message
    p2 = write_profile(tmp_path, "y", "threads = 2\n")
    assert "no model given" in check_profile(p2, None)[0].message


def test_extends_overrides_and_keeps_locations(tmp_path, demo8m, live_topology):
    write_profile(
        tmp_path, "base", f'model = "{demo8m}"\nthreads = 1\nctx = 512\n[sampling]\ntop_k = 5\n'
    )
    child = write_profile(tmp_path, "child", 'extends = "base"\nctx = 256\nnodes = [7]\n')
    prof = load_profile(child)
    assert (prof.ctx, prof.threads, prof.sampling.top_k, prof.extends) == (256, 1, 5, "base")
    issue = next(i for i in check_profile(child, live_topology) if i.key == "nodes")
    assert issue.file == str(child) and issue.line == 3
    loop = write_profile(tmp_path, "loop", 'extends = "loop2"\nmodel = "demo:8M"\n')
    write_profile(tmp_path, "loop2", 'extends = "loop"\n')
    assert any("loops" in i.message for i in check_profile(loop, None))
    orphan = write_profile(tmp_path, "orphan", 'extends = "nobody"\nmodel = "demo:8M"\n')
    assert "no profile named 'nobody'" in check_profile(orphan, None)[0].message


def test_demo_model_key(tmp_path):
    assert load_profile(write_profile(tmp_path, "d", 'model = "demo:8M"\n')).demo_size == "8M"
    (issue,) = check_profile(write_profile(tmp_path, "e", 'model = "demo:tiny"\n'), None)
    assert issue.key == "model" and "demo:300M" in issue.hint


def test_warnings_do_not_block(tmp_path, demo8m, live_topology):
    n = len(live_topology.cpu.online)
    p = write_profile(tmp_path, "w", f'model = "{demo8m}"\nthreads = {n + 4}\ngpu_layers = -1\n')
    issues = check_profile(p, live_topology)
    assert {i.key for i in issues} >= {"threads"}
    assert all(i.severity == "warning" for i in issues)
    load_profile(p, topology=live_topology)


def test_examples_validate_on_matching_machines(xdg, fixture_root):
    two_node = fixture_topology(fixture_root("16amd64-8n2c"))
    names = {r.name for r in list_profiles()}
    assert {"demo", "single-socket-cpu", "dual-socket-interleave", "node0-isolate", "node1-isolate",
            "gpu-full-offload", "hybrid-partial-offload"} <= names  # fmt: skip
    for name in names:
        errors = [i for i in check_profile(name, two_node) if i.severity == "error"]
        # the example model paths are placeholders: only "model does not exist" may remain
        assert all(i.key == "model" and "does not exist" in i.message for i in errors), (
            name,
            errors,
        )
    assert check_profile("demo", two_node) == []


def test_plan_on_multi_socket_fixtures(tmp_path, fixture_root):
    smt = fixture_topology(fixture_root("16em64t-4s2c2t"))  # 4 sockets x 2 cores x 2 threads
    p = write_profile(
        tmp_path,
        "a",
        'model = "demo:8M"\nphysical_cores_only = true\nmemory_policy = "interleave"\n',
    )
    plan = plan_launch(load_profile(p), smt)
    assert len(plan.cpus) == 8 and plan.threads == 8  # one thread per physical core
    assert plan.memory_policy == "interleave" and plan.memory_nodes == tuple(
        n.id for n in smt.nodes
    )
    eight = fixture_topology(fixture_root("16amd64-8n2c"))
    p2 = write_profile(tmp_path, "b", 'model = "demo:8M"\nnodes = [2, 3]\nmemory_policy = "bind"\n')
    plan2 = plan_launch(load_profile(p2), eight)
    assert plan2.cpus == (4, 5, 6, 7) and plan2.threads == 4 and plan2.memory_nodes == (2, 3)


def test_model_bigger_than_ram(tmp_path, demo8m, live_topology):
    import dataclasses

    small = dataclasses.replace(
        live_topology,
        memory=dataclasses.replace(live_topology.memory, total_bytes=1_000_000),
        host=dataclasses.replace(live_topology.host, mem_available_bytes=500_000),
        gpus=(),
    )
    p = write_profile(tmp_path, "big", f'model = "{demo8m}"\n')
    (issue,) = check_profile(p, small)
    assert issue.severity == "error" and "more than this machine's RAM" in issue.message
    tight = dataclasses.replace(
        live_topology, host=dataclasses.replace(live_topology.host, mem_available_bytes=1_000_000)
    )
    (warn,) = check_profile(p, tight)
    assert warn.severity == "warning" and "available" in warn.message


def test_key_lines_skip_arrays_strings_and_comments():
    from rigtui.profiles.textutil import key_lines

    text = 'a = 1\nb = [  # [ comment\n  1,\n  2,\n]\nc = "[x"\n[sampling]\ntop_k = 3\n# d = 4\n'
    assert key_lines(text) == {"a": 1, "b": 2, "c": 6, "sampling": 7, "sampling.top_k": 8}


@pytest.mark.parametrize(
    ("keys", "warned"),
    [
        ('numa = "distribute"\nnodes = [0]', "every CPU of all 8 nodes"),
        ('numa = "distribute"', None),  # the whole machine: nothing narrower to lose
        ('numa = "isolate"\nnodes = [0]', None),  # exactly one node
        ('numa = "isolate"\ncpus = "0"', "the node the engine starts on"),
        ('numa = "numactl"\ncpus = "0"', None),  # llama.cpp keeps rigtui's set
    ],
)
def test_numa_strategies_that_repin_threads_are_flagged(tmp_path, fixture_root, keys, warned):
    eight_nodes = fixture_topology(fixture_root("16amd64-8n2c"))
    p = write_profile(tmp_path, "n", f'model = "demo:8M"\n{keys}\n')
    numa = [i for i in check_profile(p, eight_nodes) if i.key == "numa"]
    if warned is None:
        assert numa == []
    else:
        (issue,) = numa
        assert issue.severity == "warning" and warned in issue.message
        assert 'numa = "numactl"' in issue.hint and issue.line == 2


def test_numa_repin_is_not_flagged_on_one_node(tmp_path, live_topology):
    if len(live_topology.nodes) > 1:
        pytest.skip("a multi-node machine")
    p = write_profile(tmp_path, "n", 'model = "demo:8M"\nnuma = "distribute"\ncpus = "0"\n')
    assert [i for i in check_profile(p, live_topology) if i.key == "numa"] == []


def test_numa_mirror_is_a_no_op_warning_for_the_embedded_engine(tmp_path, fixture_root):
    """Mainline ggml keeps GGML_NUMA_STRATEGY_MIRROR but copies no weights: said, not ignored."""
    two = fixture_topology(fixture_root("16amd64-8n2c"))
    p = write_profile(tmp_path, "m", 'model = "demo:8M"\nnuma = "mirror"\n')
    (issue,) = [i for i in check_profile(p, two) if i.key == "numa"]
    assert issue.severity == "warning" and "does nothing in mainline llama.cpp" in issue.message
    assert "distribute" in issue.hint and issue.line == 2


def test_prefault_without_a_memory_policy_is_warned(tmp_path, live_topology):
    """Read by one thread under the default policy, every page lands on that thread's node."""
    p = write_profile(tmp_path, "pf", 'model = "demo:8M"\nprefault = true\n')
    (issue,) = [i for i in check_profile(p, live_topology) if i.key == "prefault"]
    assert issue.severity == "warning" and issue.line == 2 and "interleave" in issue.hint
    ok = write_profile(tmp_path, "pf2", 'model = "demo:8M"\nprefault = true\n'
                       'memory_policy = "interleave"\n')  # fmt: skip
    assert [i for i in check_profile(ok, live_topology) if i.key == "prefault"] == []
