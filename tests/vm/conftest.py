"""Session fixtures that boot each guest topology once and run every scenario inside it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import vm_harness as harness

from rigtui.engine.demo_model import write_demo_model

GUEST_SCRIPT = Path(__file__).resolve().parent / "guest.py"
PLACEMENT_MODELS = ("bind1", "interleave", "preferred1", "iso0", "iso1", "tmpfs", "ls_bind1",
                    "ls_rpc")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/vm/" in str(item.fspath):
            item.add_marker(pytest.mark.vm)


_FAILED: dict[str, str] = {}  # a guest that failed once is not booted again for each test


def _boot(tmp_path_factory, topology: harness.GuestTopology, scenarios: list[str],
          prepare=None) -> dict[str, object]:  # fmt: skip
    if topology.name in _FAILED:
        pytest.fail(_FAILED[topology.name])
    try:
        return _boot_once(tmp_path_factory, topology, scenarios, prepare)
    except Exception as exc:
        _FAILED[topology.name] = f"the {topology.name} guest failed: {exc!r}"
        raise


def _boot_once(tmp_path_factory, topology: harness.GuestTopology, scenarios: list[str],
               prepare=None) -> dict[str, object]:  # fmt: skip
    reuse = os.environ.get("RIGTUI_VM_REUSE")  # a results.json of an earlier boot (debugging)
    if reuse:
        saved = Path(reuse) / topology.name / "results.json"
        if saved.is_file():
            return json.loads(saved.read_text())
    lacking = harness.missing()
    if lacking:
        pytest.skip("vm tests need: " + "; ".join(lacking) + " (./test.sh installs them as root)")
    work = tmp_path_factory.mktemp(f"vm-{topology.name}")
    if prepare is not None:
        prepare(work)
    cmd = " ".join(shlex.quote(x) for x in [sys.executable, str(GUEST_SCRIPT), str(work), *scenarios])
    proc = harness.boot(topology, cmd, rwdir=work)
    found = harness.results(proc.stdout)
    if not found:
        message = (f"the {topology.name} guest printed no results (rc {proc.returncode}):\n"
                   f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")  # fmt: skip
        _FAILED[topology.name] = message
        pytest.fail(message)
    found["_stdout"] = proc.stdout[-5000:]
    (work / "results.json").write_text(json.dumps(found))
    save = os.environ.get("RIGTUI_VM_SAVE")
    if save:
        (Path(save) / topology.name).mkdir(parents=True, exist_ok=True)
        (Path(save) / topology.name / "results.json").write_text(json.dumps(found))
    return found


def _models(work: Path) -> None:
    small = write_demo_model(work / "small.gguf", size="16M").path
    for name in PLACEMENT_MODELS:  # one file each: none of their pages cached in the guest
        shutil.copyfile(small, work / f"{name}.gguf")
    write_demo_model(work / "nommap_bind1.gguf", size="64M")  # anon pages dwarf the heap
    shutil.copyfile(work / "nommap_bind1.gguf", work / "sample_load.gguf")
    # The --rwdir share is 9p, whose page cache goes with the last close; the guest's root
    # (this machine's / over virtiofs) keeps it: the file for the cached-pages case lives there.
    from rigtui.engine.llama_server import find_binary

    found = find_binary("llama-server")  # the guest sees this machine's files at the same paths
    if found.path:
        (work / "llama-server.path").write_text(found.path)
    ro = Path(str(work) + "-ro")
    ro.mkdir()
    shutil.copyfile(small, ro / "cached.gguf")


@pytest.fixture(scope="session")
def two_socket(tmp_path_factory) -> dict[str, object]:
    """2 sockets x 2 cores, 2 nodes at distance 32, one SMBIOS DIMM: every scenario."""
    return _boot(tmp_path_factory, harness.TWO_SOCKETS,
                 ["probe", "check", "placement", "two_instances", "tmpfs", "bench_mem",
                  "llama_server", "sample_load"],
                 prepare=_models)  # fmt: skip


@pytest.fixture(scope="session")
def nps2_cxl(tmp_path_factory) -> dict[str, object]:
    """2 sockets with 2 nodes each and a memory-only node: the probe, and bench mem's 4x4."""
    return _boot(tmp_path_factory, harness.NPS2_CXL, ["probe", "bench_mem"])
