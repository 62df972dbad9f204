"""Property-based tests (Hypothesis) over every parser that reads what users and machines hand
rigtui: profiles (TOML text, values of every key, extends chains), GGUF headers, /sys and
/proc text (cpulists, cpumasks, distances, meminfo, sizes, cpuinfo, SMBIOS blobs, whole
trees), recordings and engine events. Each asserts: a value, or the parser's own clear error
(a ValueError with a message, a ProfileIssue with a reason) — never another exception, and
never memory or time out of proportion to the input.

The runs are derandomized (the same examples every run, so CI is reproducible);
RIGTUI_FUZZ_EXAMPLES=N asks for more examples per property, with fresh random ones."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rigtui.hostfs import HostFS  # noqa: E402
from rigtui.model.cpulist import parse_cpulist  # noqa: E402
from rigtui.model.engine import event_from_json  # noqa: E402
from rigtui.probes import detect  # noqa: E402
from rigtui.probes.parse import (  # noqa: E402
    parse_cpuinfo,
    parse_cpumask,
    parse_distance,
    parse_meminfo,
    parse_size,
    parse_smbios_memory_device,
    smbios_split,
)
from rigtui.profiles import ProfileError, load_profile  # noqa: E402
from rigtui.profiles.gguf_check import GgufProblem, check_gguf  # noqa: E402
from rigtui.profiles.loader import read_profile_text  # noqa: E402
from rigtui.profiles.textutil import key_lines  # noqa: E402
from rigtui.telemetry.record import replay, sample_from_json  # noqa: E402

_MORE = int(os.environ.get("RIGTUI_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_MORE or 150,
    derandomize=not _MORE,
    deadline=None,  # CI machines are noisy; the memory bounds and pytest-timeout catch blowups
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],  # fmt: skip
    database=None,
)


def _bounded(fn, *args, limit: int):
    """fn(*args) with tracemalloc's peak for it; fails past `limit` bytes."""
    tracemalloc.start()
    try:
        out = fn(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"{fn.__name__}: {peak >> 20} MiB for {sum(len(a) for a in args if hasattr(a, '__len__'))} bytes of input"
    return out


# -- /sys and /proc text -------------------------------------------------------------------------
cpulist_text = st.one_of(
    st.text(alphabet="0123456789-,:/ \n", max_size=40),
    st.lists(st.tuples(st.integers(0, 1 << 22), st.integers(0, 4096), st.integers(0, 8)),
             max_size=6).map(lambda parts: ",".join(
                 f"{a}" if n == 0 else f"{a}-{a + n}" + (f":{s}" if s else "")
                 for a, n, s in parts)),  # fmt: skip
    st.text(max_size=30),
)


@FUZZ
@given(cpulist_text)
def test_cpulists_give_cpus_or_say_why(text):
    try:
        cpus = _bounded(parse_cpulist, text, limit=64 << 20)
    except ValueError as exc:
        assert str(exc)
        return
    assert list(cpus) == sorted(set(cpus)) and all(0 <= c <= 1 << 20 for c in cpus)


@FUZZ
@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEFx, \n", max_size=200),
                 st.lists(st.sampled_from(["ffffffff", "00000000", "0000ffff", "1"]),
                          max_size=64).map(",".join), st.text(max_size=40)))  # fmt: skip
def test_cpumasks_give_cpus_or_say_why(text):
    try:
        cpus = _bounded(parse_cpumask, text, limit=64 << 20)
    except ValueError as exc:
        assert str(exc)
        return
    assert list(cpus) == sorted(set(cpus)) and all(c >= 0 for c in cpus)


def test_a_huge_cpumask_is_refused_not_expanded():
    mask = ",".join(["ffffffff"] * 200_000)  # 6.4 M CPUs: 0.2 GB of ints if expanded
    with pytest.raises(ValueError, match="beyond any machine"):
        _bounded(parse_cpumask, mask, limit=64 << 20)


@FUZZ
@given(st.text(max_size=400))
def test_meminfo_distance_size_cpuinfo_never_raise_anything_else(text):
    assert all(isinstance(v, int) for v in parse_meminfo(text).values())
    for fn in (parse_distance, parse_size):
        try:
            fn(text)
        except ValueError as exc:
            assert str(exc)
    assert isinstance(parse_cpuinfo(text), list)


def _smbios_entry(t: int, formatted: bytes, strings: list[bytes]) -> bytes:
    head = struct.pack("<BBH", t, 4 + len(formatted), 0x1100) + formatted
    return head + (b"\0".join(strings) + b"\0\0" if strings else b"\0\0")


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([0, 1, 16, 17, 19, 127, 200]),
                          st.binary(max_size=60),
                          st.lists(st.binary(max_size=12).filter(lambda b: b"\0" not in b),
                                   max_size=4)), max_size=8),
       st.binary(max_size=64))  # fmt: skip
def test_smbios_blobs_decode_or_stop(entries, tail):
    blob = b"".join(_smbios_entry(*e) for e in entries) + tail
    for _type, formatted, strings in smbios_split(blob):
        if _type == 17:
            try:
                fields = parse_smbios_memory_device(formatted, strings)
            except ValueError as exc:  # the reader notes it and goes on
                assert str(exc)
                continue
            assert isinstance(fields, dict)


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["sys/devices/system/node/node0/cpulist", "sys/devices/system/node/node1/cpulist",
                     "sys/devices/system/node/node0/distance", "sys/devices/system/node/node1/distance",
                     "sys/devices/system/node/node0/meminfo", "sys/devices/system/cpu/online",
                     "sys/devices/system/cpu/cpu0/topology/physical_package_id",
                     "sys/devices/system/cpu/cpu1/topology/thread_siblings_list",
                     "sys/devices/system/cpu/cpu0/cache/index3/size", "proc/meminfo",
                     "proc/cpuinfo", "sys/firmware/dmi/tables/DMI"]),
    st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1"))),
    max_size=5))  # fmt: skip
def test_a_garbled_machine_tree_is_detected_with_problems_never_a_traceback(tmp_path_factory,
                                                                            changes):  # fmt: skip
    from probe_helpers import cpu_tree, write_tree

    files: dict[str, str | bytes] = dict(cpu_tree(sockets=2, cores=2, threads=2))
    files.update(changes)
    root = write_tree(tmp_path_factory.mktemp("tree"), files)
    top = detect(HostFS(str(root)), nvml=False)
    seen: set[int] = set()
    for node in top.nodes:  # whatever the files say, a CPU is in one node at most
        assert not seen & set(node.cpus)
        seen |= set(node.cpus)
        assert not node.distances or len(node.distances) == len(top.nodes)


# -- profiles ------------------------------------------------------------------------------------
_KEYS = ["model", "ctx", "threads", "batch_threads", "cpus", "nodes", "memory_nodes", "numa",
         "memory_policy", "gpu_layers", "tensor_split", "cache_type_k", "cache_type_v",
         "flash_attn", "seed", "engine", "listen", "api_key_env", "override_tensors", "rpc",
         "extra_args", "env", "description", "extends", "physical_cores_only", "n_cpu_moe",
         "sampling.temperature", "sampling.top_k", "sampling.max_tokens", "bogus_key"]  # fmt: skip
toml_values = st.one_of(
    st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True), st.booleans(),
    st.text(max_size=30), st.lists(st.integers(-5, 1 << 40), max_size=4),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=2),
    st.lists(st.lists(st.integers(0, 3), max_size=2), max_size=2),
)


def _toml(values: dict[str, object]) -> str:
    import tomlkit

    doc = tomlkit.document()
    for key, value in values.items():
        table, _, leaf = key.rpartition(".")
        if table:
            doc.setdefault(table, tomlkit.table())[leaf] = value
        else:
            doc[leaf] = value
    return tomlkit.dumps(doc)


def _load_is_clean(path: str) -> None:
    try:
        load_profile(path)
    except ProfileError as exc:
        assert exc.issues and all(i.message for i in exc.issues)


@FUZZ
@given(st.dictionaries(st.sampled_from(_KEYS), toml_values, max_size=6),
       st.booleans())  # fmt: skip
def test_profile_values_load_or_say_why(tmp_path_factory, values, with_model):
    if with_model:
        values = {"model": "demo:8M", **values}
    try:
        text = _toml(values)
    except (ValueError, TypeError):  # tomlkit cannot write it (nan in a list...): not a profile
        return
    path = tmp_path_factory.mktemp("p") / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    _load_is_clean(str(path))


@FUZZ
@given(st.text(max_size=300))
def test_profile_text_of_any_shape_reads_or_says_why(text):
    values, issues = read_profile_text(text, "fuzz.toml")
    assert isinstance(values, dict) and all(i.message for i in issues)
    assert isinstance(key_lines(text), dict)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(0, 5))),
                min_size=1, max_size=5))  # fmt: skip
def test_extends_chains_of_any_shape_load_or_say_why(tmp_path_factory, links):
    d = tmp_path_factory.mktemp("chain")
    for i, (_, parent) in enumerate(links):
        text = f"threads = {i + 1}\n" + (f'extends = "p{parent}"\n' if parent is not None else
                                          'model = "demo:8M"\n')  # fmt: skip
        (d / f"p{i}.toml").write_text(text)
    for i in range(len(links)):
        _load_is_clean(str(d / f"p{i}.toml"))


# -- GGUF headers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_header(tmp_path_factory) -> bytes:
    from rigtui.engine.demo_model import write_demo_model

    path = write_demo_model(tmp_path_factory.mktemp("g") / "m.gguf", size="8M").path
    with open(path, "rb") as f:
        return f.read(64 << 10)  # metadata and tensor infos; the data past it is cut off


@FUZZ
@given(st.data())
def test_a_damaged_gguf_header_is_a_clear_problem(tmp_path_factory, gguf_header, data):
    from rigtui.analysis.gguf_facts import GgufError, read_gguf_facts

    blob = bytearray(gguf_header)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, min(len(blob) - 1, 4096)))
        blob[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    path = tmp_path_factory.mktemp("g") / "bad.gguf"
    path.write_bytes(bytes(blob[:cut]))
    try:
        _bounded(check_gguf, path, limit=256 << 20)
    except GgufProblem as exc:
        assert str(exc) and exc.hint
    try:
        _bounded(read_gguf_facts, path, limit=256 << 20)
    except GgufError as exc:
        assert str(exc)


# -- recordings and events -----------------------------------------------------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)  # fmt: skip


@pytest.fixture(scope="module")
def recorded_sample() -> dict:
    path = Path(__file__).parent / "data" / "replay-vm-demo.ndjson"
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "t" in obj and "cpu" in json.dumps(obj)[:2000]:
            return obj
    raise AssertionError("no sample line in the recording")


@FUZZ
@given(st.data())
def test_a_damaged_sample_decodes_or_says_why(recorded_sample, data):
    obj = json.loads(json.dumps(recorded_sample))
    # replace a few values anywhere in the sample with arbitrary JSON
    for _ in range(data.draw(st.integers(1, 4))):
        node = obj
        while isinstance(node, (dict, list)) and node:
            keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            k = data.draw(st.sampled_from(keys))
            if data.draw(st.booleans()) or not isinstance(node[k], (dict, list)):
                node[k] = data.draw(json_values)
                break
            node = node[k]
    try:
        sample_from_json(obj)
    except ValueError as exc:
        assert str(exc)


@FUZZ
@given(st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=40)), max_size=6))
def test_a_recording_of_any_lines_replays_with_problems(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("r") / "rec.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems: list = []
    _topology, samples = replay(path, problems)
    assert all(s is not None for s in samples)


@FUZZ
@given(st.dictionaries(st.sampled_from(["event", "instance", "t", "text", "index", "n_tokens",
                                        "url", "port", "code", "signal", "per_node", "bytes_per_node",
                                        "warnings", "message", "kind"]), json_values, max_size=8),
       st.sampled_from(["token", "done", "serving", "placement", "exit", "error", "loaded",
                        "prompt_done", "slots", "nope"]))  # fmt: skip
def test_engine_events_decode_or_say_why(obj, kind):
    obj = {"event": kind, **obj} if "event" not in obj else obj
    try:
        event_from_json(obj)
    except ValueError as exc:
        assert str(exc)
