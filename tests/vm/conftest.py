"""Session fixtures that boot each guest topology once and run every scenario inside it. The
guests the collected tests need boot at the same time (one asked for starts them all): each
spends much of its time in one busy Python, and this machine has two cores."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import vm_harness as harness

from rigtui.engine.demo_model import write_demo_model

GUEST_SCRIPT = Path(__file__).resolve().parent / "guest.py"
# one file per scenario, so that none of its pages is in the guest's page cache yet
SMALL_MODELS = ("bind1", "interleave", "preferred1", "iso0", "iso1", "tmpfs",
                "ls_bind1", "ls_rpc", "per_node", "pf_cold", "pf_warm")
BIG_MODELS = ("nommap_bind1", "sample_load")  # mmap = false: anon pages that dwarf the heap


BOOT_TRIES = 3
_NEEDED: set[str] = set()  # the guest fixtures the collected tests use
_BOOTS: dict[str, Future] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/vm/" in str(item.fspath):
            item.add_marker(pytest.mark.vm)
            _NEEDED.update(set(getattr(item, "fixturenames", ())) & set(GUESTS))


def _guest(name: str, tmp_path_factory) -> dict[str, object]:
    """The results of guest `name`; the first call boots every guest the session needs."""
    if name not in _BOOTS:
        engine = harness.portable_engine() if not harness.missing() else None  # once, up front
        pool = ThreadPoolExecutor(max_workers=len(GUESTS))
        only = [x for x in os.environ.get("RIGTUI_VM_SCENARIOS", "").split(",") if x]
        for other in sorted((_NEEDED | {name}) - set(_BOOTS)):
            topology, scenarios, prepare = GUESTS[other]
            if only:  # a development run of one scenario: `RIGTUI_VM_SCENARIOS=bench_mem pytest -k`
                scenarios = [s for s in scenarios if s in only]
            work = tmp_path_factory.mktemp(f"vm-{topology.name}")  # here: not thread-safe
            _BOOTS[other] = pool.submit(_boot, work, topology, scenarios, prepare, engine)
        pool.shutdown(wait=False)
    return Results(_BOOTS[name].result())  # a skip or failure inside is raised here, each test


class Results(dict):
    """A guest's results by scenario; a scenario that printed none fails the test asking."""

    def __missing__(self, key: str) -> object:
        pytest.fail(f"the guest printed no result for {key!r} "
                    f"({self.get('_timed_out') or 'it ended without one'}; boots: "
                    f"{self.get('_boots')}):\n{self.get('_stdout')}")  # fmt: skip


def finished(found: dict[str, object]) -> list[str]:
    """Scenarios guest.py gave a result for."""
    return [k for k in found if k != "alive" and not k.startswith("_") and "." not in k]


def unfinished(found: dict[str, object]) -> list[str]:
    """Scenarios guest.py started and gave no result for."""
    return [k[: -len(".started")] for k in found
            if k.endswith(".started") and k[: -len(".started")] not in found]  # fmt: skip


def _boot(work: Path, topology: harness.GuestTopology, scenarios: list[str],
          prepare, engine: Path | None) -> dict[str, object]:  # fmt: skip
    reuse = os.environ.get("RIGTUI_VM_REUSE")  # a results.json of an earlier boot (debugging)
    if reuse:
        saved = Path(reuse) / topology.name / "results.json"
        if saved.is_file():
            return json.loads(saved.read_text())
    lacking = harness.missing()
    if lacking:
        pytest.skip("vm tests need: " + "; ".join(lacking) + " (./test.sh installs them as root)")
    if prepare is not None:
        prepare(work)
    argv = [sys.executable, str(GUEST_SCRIPT), str(work), *scenarios]
    if engine is not None:
        argv = ["env", f"PYTHONPATH={engine}", *argv]
    cmd = " ".join(shlex.quote(x) for x in argv)
    image = work / "models.img"
    found: dict[str, object] = {}
    tries = []
    for _ in range(BOOT_TRIES):
        b = harness.boot(topology, cmd, rwdir=work, disk=image if image.exists() else None)
        found = harness.results(b.stdout)
        tries.append(f"{'alive' if b.alive else 'silent'}, rc {b.returncode}, {b.seconds} s"
                     + (", killed at the timeout" if b.timed_out else ""))  # fmt: skip
        if b.timed_out or finished(found):  # results (all, or those before the hang)
            break
        # no sign of life, or QEMU died before any scenario ended (TCG aborted a boot once,
        # an MSI-X assertion; hung one, silent, in CI): boot it again
        print(f"vm: the {topology.name} guest gave no results ({tries[-1]}); booting it "
              f"again. {b.stderr[-500:]}", file=sys.stderr)  # fmt: skip
    if not finished(found):
        pytest.fail(f"the {topology.name} guest printed no results ({'; '.join(tries)}):\n"
                    f"{b.stdout[-3000:]}\n{b.stderr[-3000:]}")  # fmt: skip
    if b.timed_out:  # what ran is kept; a scenario without a result fails its own tests
        found["_timed_out"] = (f"the guest was killed after {b.seconds} s; scenarios started "
                               f"and unfinished: {unfinished(found)}")  # fmt: skip
    found["_boots"] = tries
    found["_stdout"] = b.stdout[-5000:]
    found["_portable_engine"] = str(engine) if engine is not None else None
    (work / "results.json").write_text(json.dumps(found))
    save = os.environ.get("RIGTUI_VM_SAVE")
    if save:
        (Path(save) / topology.name).mkdir(parents=True, exist_ok=True)
        (Path(save) / topology.name / "results.json").write_text(json.dumps(found))
    return found


def _models(work: Path) -> None:
    """The model files, on an ext4 image the guest mounts (/dev/vda), and where llama-server is."""
    src = work / "models"
    src.mkdir()
    small = write_demo_model(src / "small.gguf", size="16M").path
    for name in SMALL_MODELS:
        shutil.copyfile(small, src / f"{name}.gguf")
    small.unlink()
    write_demo_model(src / f"{BIG_MODELS[0]}.gguf", size="64M")
    for name in BIG_MODELS[1:]:
        shutil.copyfile(src / f"{BIG_MODELS[0]}.gguf", src / f"{name}.gguf")
    harness.make_disk(src, work / "models.img")
    shutil.rmtree(src)
    from rigtui.engine.llama_server import find_binary

    found = find_binary("llama-server")  # the guest sees this machine's files at the same paths
    if found.path:
        (work / "llama-server.path").write_text(found.path)


# fixture name -> (topology, scenarios, prepare the work dir)
GUESTS = {
    "two_socket": (harness.TWO_SOCKETS,
                   ["probe", "check", "bind1", "interleave", "preferred1", "nommap_bind1",
                    "tmpfs", "llama_server", "two_instances", "bench_per_node", "prefault",
                    "bench_mem",
                    "sample_load"], _models),
    "nps2_cxl": (harness.NPS2_CXL, ["probe", "bench_mem"], None),
}  # fmt: skip


@pytest.fixture(scope="session")
def two_socket(tmp_path_factory) -> dict[str, object]:
    """2 sockets x 2 cores, 2 nodes at distance 32, one SMBIOS DIMM: every scenario."""
    return _guest("two_socket", tmp_path_factory)


@pytest.fixture(scope="session")
def nps2_cxl(tmp_path_factory) -> dict[str, object]:
    """2 sockets with 2 nodes each and a memory-only node: the probe, and bench mem's 4x4."""
    return _guest("nps2_cxl", tmp_path_factory)
