"""set_mempolicy/get_mempolicy via ctypes, run in a child process so the test runner's own
policy is never changed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rigtui.syscalls.numa import set_mempolicy

CHILD = """
import json, sys
from rigtui.syscalls.numa import get_mempolicy, set_mempolicy
out = []
for mode, nodes in json.loads(sys.argv[1]):
    try:
        set_mempolicy(mode, nodes)
        status = open("/proc/self/numa_maps").read().split("\\n")[0]
        out.append(["ok", list(get_mempolicy()[0:1]) + [list(get_mempolicy()[1])], status])
    except OSError as exc:
        out.append(["oserror", exc.errno, str(exc)])
print(json.dumps(out))
"""


def run_child(calls):
    res = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(calls)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_policies_round_trip_and_show_in_numa_maps():
    out = run_child([["interleave", [0]], ["bind", [0]], ["preferred", [0]], ["default", []]])
    assert [o[1] for o in out] == [
        ["interleave", [0]],
        ["bind", [0]],
        ["preferred", [0]],
        ["default", []],
    ]
    assert "interleave:0" in out[0][2]  # the kernel's view of the policy for new mappings
    assert "bind:0" in out[1][2]


def test_missing_node_says_what_to_do():
    (res,) = run_child([["bind", [3]]])
    assert res[0] == "oserror" and res[1] == 22
    assert "online nodes" in res[2] and "numactl -H" in res[2]


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="one of"):
        set_mempolicy("spread", [0])
    with pytest.raises(ValueError, match="at least one node"):
        set_mempolicy("bind", [])
    with pytest.raises(ValueError, match="one node"):
        set_mempolicy("preferred", [0, 1])
    with pytest.raises(ValueError, match=">= 0"):
        set_mempolicy("bind", [-1])


def _on_tmpfs(path) -> bool:
    import os

    best, fstype = "", ""
    with open("/proc/mounts") as f:
        for line in f:
            _dev, mnt, typ = line.split()[:3]
            if os.path.realpath(str(path)).startswith(mnt) and len(mnt) > len(best):
                best, fstype = mnt, typ
    return fstype in ("tmpfs", "ramfs")


def _cached_file(path, size: int):
    """A file of `size` random bytes, written to disk and read back (so it is in the page
    cache); skips where the directory is tmpfs, whose pages cannot be dropped."""
    import os

    if _on_tmpfs(path.parent):
        pytest.skip("tmpfs pages cannot be dropped")
    path.write_bytes(os.urandom(size))
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        while f.read(1 << 20):
            pass
    return path


def test_evict_file_drops_one_files_pages_without_root(tmp_path):
    """drop_caches_first without root: posix_fadvise(DONTNEED) empties the model's page cache,
    which the next load then faults in under the memory policy."""

    from rigtui.syscalls.pages import evict_file, file_cached_bytes

    model = _cached_file(tmp_path / "model.bin", 8 << 20)
    assert file_cached_bytes(model) >= 4 << 20  # written and read: cached
    before, after = evict_file(model)
    assert before >= 4 << 20 and after == 0 and file_cached_bytes(model) == 0


def test_apply_policy_evicts_the_model_file_when_asked(tmp_path):

    from rigtui.engine.worker import apply_policy
    from rigtui.model.engine import PolicyApplied
    from rigtui.syscalls.pages import file_cached_bytes

    model = _cached_file(tmp_path / "m.gguf", 4 << 20)
    events = []
    apply_policy({"plan": {"memory_policy": "default"}, "drop_caches_first": True,
                  "model_path": str(model)}, lambda cls, **kw: events.append((cls, kw)))  # fmt: skip
    [(cls, kw)] = events
    assert cls is PolicyApplied and not any("drop_caches" in w for w in kw["warnings"])
    assert file_cached_bytes(model) == 0


def test_prefault_reads_the_model_in_under_the_policy(tmp_path):
    """prefault: after the policy (and the eviction) the worker reads the whole file, so every
    page is cached now, allocated by the reader's policy; the load progress says how far."""
    from rigtui.engine.worker import apply_policy
    from rigtui.model.engine import LoadProgress, PolicyApplied
    from rigtui.syscalls.pages import file_cached_bytes, file_page_placement, prefault_file

    model = _cached_file(tmp_path / "m.gguf", 24 << 20)
    events = []
    apply_policy({"plan": {"memory_policy": "interleave", "memory_nodes": [0]},
                  "drop_caches_first": True, "prefault": True, "model_path": str(model)},
                 lambda cls, **kw: events.append((cls, kw)))  # fmt: skip
    progress = [kw["progress"] for cls, kw in events if cls is LoadProgress]
    assert progress == [0.3333, 0.6667, 1.0]  # one per 8 MiB read
    (policy,) = [kw for cls, kw in events if cls is PolicyApplied]
    assert any(w.startswith("prefault: read 0.02 GiB of the model under the interleave policy")
               for w in policy["warnings"]), policy["warnings"]  # fmt: skip
    assert file_cached_bytes(model) == 24 << 20  # every page, before any load
    assert sum(file_page_placement(model).bytes_per_node.values()) >= 23 << 20
    n, seconds = prefault_file(model)
    assert n == 24 << 20 and seconds >= 0


def test_the_placement_counts_the_model_files_cached_bytes(tmp_path):
    """mincore over the file: what a cold model has read in so far, mapped by the engine or
    not (the engine panel's "% cached")."""
    from rigtui.engine.placement import placement_fields
    from rigtui.syscalls.pages import evict_file, prefault_file

    model = _cached_file(tmp_path / "m.gguf", 8 << 20)
    evict_file(model)
    with open(model, "rb") as f:
        f.read(2 << 20)  # a quarter read in
    fields = placement_fields("self", str(model), {"memory_policy": "default"})
    assert (2 << 20) <= fields["model_cached_bytes"] <= (4 << 20)  # readahead may add a little
    prefault_file(model)
    assert placement_fields("self", str(model), {})["model_cached_bytes"] == 8 << 20
    assert placement_fields("self", str(model), {}, mmap=False)["model_cached_bytes"] is None
