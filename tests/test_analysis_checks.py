"""`rigtui check`: each check flipped by a value (hand-built topologies), by files in a captured
tree (probes read them), every hwloc/util-linux fixture run end to end, and the CLI contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from analysis_helpers import GiB, dimm, epyc, gpu, with_host
from conftest import hwloc_names, util_linux_names

from rigtui.analysis.checks import CHECK_IDS, exit_code, run_checks
from rigtui.analysis.checks_engine import parse_system_info
from rigtui.hostfs import HostFS
from rigtui.model.analysis import CHECK_STATUSES, CheckContext
from rigtui.probes import detect

REPO = Path(__file__).resolve().parent.parent
SYSINFO_AVX512 = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
    "BMI2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
)
SYSINFO_AVX2 = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
def _two_node_bench():
    from rigtui.model.analysis import LatencyCell, MemBandwidth, MemBenchResult

    def bw(c, m, gbs):
        return MemBandwidth(f"{c}->{m}", (c,), (m,), 4, 1, gbs, None, None, None, True)

    return MemBenchResult(0.0, "c", {}, (bw(0, 0, 400.0), bw(1, 1, 400.0)), (),
                          (bw(0, 1, 190.0), bw(1, 0, 190.0)), None,
                          latency=tuple(LatencyCell(c, m, 0, 110.0 if c == m else 200.0, 1, 1)
                                        for c in (0, 1) for m in (0, 1)))  # fmt: skip


GOOD_CTX = CheckContext(
    membench=_two_node_bench(),
    engine_system_info=SYSINFO_AVX512,
    engine_gpu_offload=True,
    model_path="/m.gguf",
    model_bytes=40 * GiB,
    model_page_bytes_per_node={0: 10 * GiB, 1: 10 * GiB},
    psi_memory_some_avg10=0.0,
    psi_memory_full_avg10=0.0,
    is_root=False,
    server_build={"name": "llama-server", "found": True, "ok": True, "path": "/opt/llama-server",
                  "backends": ["CPU", "CUDA"], "buffer_types": ["CPU", "CUDA0"],
                  "build_flags": {"GGML_NATIVE": "ON", "GGML_CUDA": "ON"}},
)


def by_id(top, ctx=GOOD_CTX):
    return {c.id: c for c in run_checks(top, ctx)}


def test_a_healthy_rig_passes_everything():
    checks = run_checks(epyc(gpus=(gpu(),)), GOOD_CTX)
    assert [c.id for c in checks] == list(CHECK_IDS)
    assert {c.id: c.status for c in checks if c.status != "pass"} == {}
    assert exit_code(checks) == 0
    assert all(c.fix is None for c in checks)


@pytest.mark.parametrize(
    "populated,status",
    [
        ({0: 12, 1: 12}, "pass"),
        ({0: 12, 1: 11}, "warn"),
        ({0: 6, 1: 6}, "fail"),
        ({0: 12, 1: 8}, "fail"),
    ],
)
def test_memory_channels(populated, status):
    c = by_id(epyc(populated=populated))["memory_channels"]
    assert c.status == status
    if status != "pass":
        assert "populate all 12 channels" in c.fix


def test_memory_channels_platform_table_is_not_a_reading():
    top = epyc()
    top = replace(
        top,
        memory=replace(top.memory, dimms=(), source="platform-table (max supported, not measured)"),
    )
    assert by_id(top)["memory_channels"].status == "unknown"


def test_dimm_speed_mixed_and_slow():
    top = epyc()
    mixed = top.memory.dimms[:-1] + (dimm(1, "L", mts=5600, configured=4800),)
    c = by_id(replace(top, memory=replace(top.memory, dimms=mixed)))["dimm_speed"]
    assert c.status == "warn" and "mixed" in c.summary
    slow = tuple(
        replace(d, configured_speed_mts=4400) if d.populated else d for d in top.memory.dimms
    )
    c = by_id(replace(top, memory=replace(top.memory, dimms=slow)))["dimm_speed"]
    assert c.status == "warn" and "4800" in c.summary and "4400" in c.summary


def test_numa_mode_verdicts_depend_on_what_the_profile_runs():
    """NPS0 (the sockets interleaved into one node) is right for one instance, as the
    dual-Genoa build notes recommend, and wrong only for one model per node; NPSn is made for
    one model per node, and a profile spread over its nodes without a memory policy warns."""
    from rigtui.analysis.checks import run_checks
    from rigtui.model.analysis import CheckContext

    def numa(top, **ctx):
        return run_checks(top, CheckContext(**ctx), only=["numa_mode"])[0]

    top = epyc()
    nps0 = replace(top, nodes=(replace(top.nodes[0], cpus=top.cpu.online),))
    c = numa(nps0)
    assert c.status == "pass" and "ONE instance" in c.summary and "NPS0" in c.summary
    c = numa(nps0, profile_numa="isolate", profile_memory_policy="bind")
    assert c.status == "warn" and "nothing is isolated" in c.summary and "Node Interleaving" in c.fix
    c = numa(nps0, profile_numa="distribute", profile_memory_policy="interleave")
    assert c.status == "pass"
    nps4 = epyc(cores_per_socket=8, nodes_per_socket=4)
    c = numa(nps4)
    assert c.status == "pass" and "8 CPU node(s)" in c.summary and "NPS4" in c.summary
    assert "one model per node" in c.summary
    c = numa(nps4, profile_numa="disabled", profile_memory_policy="default")
    assert c.status == "warn" and "first touch" in c.summary and "interleave" in c.fix
    assert any(e.source == "the profile runs" and "over every node" in e.value for e in c.evidence)
    c = numa(nps4, profile_numa="isolate", profile_nodes=(1,), profile_memory_policy="bind")
    assert c.status == "pass"
    assert numa(epyc(), profile_numa="distribute", profile_memory_policy="interleave").status == "pass"


def test_a_profile_names_the_nodes_it_confines_its_model_to():
    from types import SimpleNamespace

    from rigtui.analysis.context import profile_nodes

    assert profile_nodes(None) is None
    assert profile_nodes(SimpleNamespace(nodes=(), memory_policy="interleave", memory_nodes=(0, 1))) is None
    assert profile_nodes(SimpleNamespace(nodes=(1,), memory_policy="default", memory_nodes=())) == (1,)
    assert profile_nodes(SimpleNamespace(nodes=(), memory_policy="bind", memory_nodes=(0,))) == (0,)


def test_memory_links_from_the_measured_matrices():
    """The cached bench's matrices: a pair far off its row warns with its cause; a clean matrix
    passes with the latency spread; no measurement is unknown with the command that measures."""
    from rigtui.model.analysis import LatencyCell, MemBandwidth, MemBenchResult

    top = epyc(cores_per_socket=8, nodes_per_socket=2)

    def bw(c, m, gbs):
        return MemBandwidth(f"{c}->{m}", (c,), (m,), 1, 1, gbs, None, None, None, True)

    def result(slow=None):
        cells = [bw(c, m, 40.0 if (c, m) == slow else 94.0)
                 for c in range(4) for m in range(4) if c != m]  # fmt: skip
        lat = [LatencyCell(c, m, 0, 130.7 if c == m else 449.2, 1 << 28, 1)
               for c in range(4) for m in range(4)]  # fmt: skip
        return MemBenchResult(0.0, "c", {}, tuple(bw(k, k, 180.0) for k in range(4)), (),
                              tuple(cells), None, latency=tuple(lat))  # fmt: skip

    def run(res, live=True):
        return {c.id: c for c in run_checks(top, CheckContext(live=live, membench=res))}[
            "memory_links"]

    ok = run(result())
    assert ok.status == "pass" and "latency 131-131 ns local, 449-449 ns remote" in ok.summary
    bad = run(result(slow=(0, 2)))
    assert bad.status == "warn" and bad.summary.startswith("1 node pair(s) far off their row")
    assert any("node 0 -> node 2 reads 40.0" in e.value and "xGMI" in e.value for e in bad.evidence)
    assert run(None).status == "unknown" and "rigtui bench mem" in run(None).fix
    assert "captured tree" in run(None, live=False).summary
    one = epyc(sockets=1)
    assert {c.id: c for c in run_checks(one)}["memory_links"].status == "pass"


def test_numa_balancing():
    assert by_id(with_host(epyc(), numa_balancing=1))["numa_balancing"].status == "warn"
    single = epyc(sockets=1)
    assert by_id(with_host(single, numa_balancing=1))["numa_balancing"].status == "pass"


def test_thp_governor_boost_swap_perf():
    got = by_id(
        with_host(
            epyc(),
            thp_enabled="always",
            governors={"powersave": 16},
            boost=False,
            swap_free_bytes=6 * GiB,
            perf_event_paranoid=2,
        )
    )
    assert got["transparent_hugepages"].status == "warn"
    assert got["cpu_governor"].status == "warn" and "cpupower" in got["cpu_governor"].fix
    assert got["cpu_boost"].status == "warn"
    assert got["swap"].status == "warn" and "2.0 GiB" in got["swap"].summary
    assert got["perf_counters"].status == "warn"
    # root may read uncore counters whatever the sysctl says
    root = by_id(with_host(epyc(), perf_event_paranoid=2), replace(GOOD_CTX, is_root=True))
    assert root["perf_counters"].status == "pass"


def test_smt_thread_count():
    assert by_id(epyc(), replace(GOOD_CTX, profile_threads=16))["smt"].status == "warn"
    assert by_id(epyc(), replace(GOOD_CTX, profile_threads=8))["smt"].status == "pass"
    assert by_id(epyc(smt=False))["smt"].summary.startswith("SMT off")
    # smt/active = 1 in a VM whose vCPUs are all separate cores: not "8 CPUs on 8 cores, SMT on"
    vm = epyc(smt=False)
    vm = replace(vm, cpu=replace(vm.cpu, smt_active=True))
    assert "each of the 8 cores shows one thread" in by_id(vm)["smt"].summary


def test_memory_pressure_and_free_memory():
    assert (
        by_id(epyc(), replace(GOOD_CTX, psi_memory_some_avg10=3.0))["memory_pressure"].status
        == "warn"
    )
    assert (
        by_id(epyc(), replace(GOOD_CTX, psi_memory_full_avg10=9.0))["memory_pressure"].status
        == "fail"
    )
    assert by_id(epyc(), replace(GOOD_CTX, model_bytes=500 * GiB))["free_memory"].status == "fail"
    low = with_host(epyc(), mem_available_bytes=30 * GiB)
    assert by_id(low)["free_memory"].status == "warn"
    c = by_id(epyc(), replace(GOOD_CTX, model_bytes=250 * GiB))["free_memory"]
    assert c.status == "pass" and "interleave" in c.summary
    assert by_id(epyc(), CheckContext())["free_memory"].status == "unknown"


def test_model_page_cache_on_one_node_warns():
    ctx = replace(GOOD_CTX, model_page_bytes_per_node={0: 38 * GiB, 1: 1 * GiB})
    c = by_id(epyc(), ctx)["model_page_cache"]
    assert c.status == "warn" and "drop_caches" in c.fix and "node 0" in c.summary
    assert (
        by_id(epyc(), replace(GOOD_CTX, model_page_bytes_per_node={}))["model_page_cache"].status
        == "pass"
    )
    assert (
        by_id(epyc(), replace(GOOD_CTX, model_page_bytes_per_node=None, model_page_reason="x"))[
            "model_page_cache"
        ].status
        == "unknown"
    )


def test_kernel_version_on_epyc():
    assert by_id(epyc(kernel="5.15.0-91-generic"))["kernel_version"].status == "warn"
    c = by_id(epyc(kernel="6.6.30"))["kernel_version"]
    assert c.status == "pass" and "amd_umc" in c.summary
    intel = epyc(kernel="5.15.0")
    intel = replace(intel, cpu=replace(intel.cpu, model_name="Intel(R) Xeon(R) Gold 6430"))
    assert by_id(intel)["kernel_version"].status == "pass"


def test_engine_isa():
    assert (
        by_id(epyc(), replace(GOOD_CTX, engine_system_info=SYSINFO_AVX2))["engine_isa"].status
        == "warn"
    )
    no512 = epyc(flags=("pni", "ssse3", "bmi2", "avx", "avx2", "fma", "f16c"))
    c = by_id(no512, GOOD_CTX)["engine_isa"]
    assert c.status == "fail" and "AVX512" in c.summary
    assert by_id(epyc(), replace(GOOD_CTX, live=False))["engine_isa"].status == "unknown"
    old_style = "AVX = 1 | AVX_VNNI = 0 | AVX2 = 1 | AVX512 = 0 | FMA = 1 | NEON = 0 | "
    assert parse_system_info(old_style) == {
        "AVX": 1,
        "AVX_VNNI": 0,
        "AVX2": 1,
        "AVX512": 0,
        "FMA": 1,
        "NEON": 0,
    }
    assert "ARCHS" not in parse_system_info(SYSINFO_AVX2 + "CUDA : ARCHS = 890 | ")


def test_llama_server_build():
    sb = GOOD_CTX.server_build
    cpu_only = replace(GOOD_CTX, server_build={**sb, "backends": ["CPU"], "buffer_types": ["CPU"]})
    c = by_id(epyc(gpus=(gpu(),)), cpu_only)["llama_server_build"]
    assert c.status == "warn" and "no CUDA backend" in c.summary and "--cuda" in c.fix
    assert by_id(epyc(), cpu_only)["llama_server_build"].status == "pass"  # no GPU: fine
    portable = replace(GOOD_CTX, server_build={**sb, "build_flags": {"GGML_NATIVE": "OFF"}})
    c = by_id(epyc(gpus=(gpu(),)), portable)["llama_server_build"]
    assert c.status == "warn" and "AVX-512" in c.summary and "--native" in c.fix
    no512 = epyc(flags=("pni", "ssse3", "bmi2", "avx", "avx2", "fma", "f16c"))
    assert by_id(no512, portable)["llama_server_build"].status == "pass"
    missing = replace(GOOD_CTX, server_build={"found": False, "reason": "no llama-server on PATH"})
    c = by_id(epyc(), missing)["llama_server_build"]
    assert c.status == "unknown" and "engines build" in c.fix
    assert by_id(epyc(), replace(GOOD_CTX, live=False))["llama_server_build"].status == "unknown"


def test_gpu_checks():
    top = epyc(gpus=(gpu(0), gpu(1, width=4)))
    got = by_id(top, replace(GOOD_CTX, engine_gpu_offload=False))
    assert got["gpu_offload"].status == "warn" and "GGML_CUDA" in got["gpu_offload"].fix
    assert got["gpu_pcie_link"].status == "warn" and "x4 of x16" in got["gpu_pcie_link"].summary
    idle = by_id(epyc(gpus=(gpu(0, gen=1, gen_max=4),)))["gpu_pcie_link"]
    assert idle.status == "pass" and "idle" in idle.summary


def test_resctrl():
    top = epyc(flags=("avx", "avx2", "cqm_mbm_total"))
    assert by_id(with_host(top, resctrl_mounted=False))["resctrl"].status == "warn"
    assert by_id(with_host(epyc(), resctrl_mounted=False))["resctrl"].status == "pass"


def test_a_check_that_crashes_is_unknown_not_a_traceback():
    top = replace(epyc(), host=replace(epyc().host, governors=None))  # wrong shape
    c = by_id(top)["cpu_governor"]
    assert c.status == "unknown" and "check failed" in c.summary


# -- captured trees: probes read the files, checks flip -----------------------------------------
def _tree(fixture_root, tmp_path, name: str = "16amd64-8n2c") -> Path:
    dest = tmp_path / name
    shutil.copytree(fixture_root(name), dest, symlinks=True)
    return dest


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_tree_flips_host_checks(fixture_root, tmp_path):
    root = _tree(fixture_root, tmp_path)
    ctx = CheckContext(live=False)
    before = {c.id: c.status for c in run_checks(detect(HostFS(str(root))), ctx)}
    assert before["numa_balancing"] == "unknown" and before["transparent_hugepages"] == "unknown"
    _write(root, "proc/sys/kernel/numa_balancing", "1\n")
    _write(root, "sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    _write(root, "sys/kernel/mm/transparent_hugepage/defrag", "always defer [madvise] never\n")
    _write(root, "proc/sys/kernel/osrelease", "5.15.0-91-generic\n")
    _write(root, "proc/sys/kernel/perf_event_paranoid", "2\n")
    for cpu in range(16):
        _write(root, f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor", "powersave\n")
    checks = run_checks(detect(HostFS(str(root))), ctx)
    after = {c.id: c for c in checks}
    assert after["numa_balancing"].status == "warn"
    assert after["numa_balancing"].evidence[0].value == "1"
    assert after["transparent_hugepages"].status == "warn"
    assert (
        after["cpu_governor"].status == "warn"
        and "powersave on 16" in after["cpu_governor"].summary
    )
    assert after["perf_counters"].status == "warn"
    assert after["kernel_version"].evidence[0].value == "5.15.0-91-generic"
    assert exit_code(checks) == 1
    _write(root, "proc/sys/kernel/numa_balancing", "0\n")
    _write(root, "sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
    again = {c.id: c.status for c in run_checks(detect(HostFS(str(root))), ctx)}
    assert again["numa_balancing"] == "pass" and again["transparent_hugepages"] == "pass"


ALL_TREES = hwloc_names() + util_linux_names()


@pytest.mark.parametrize("name", ALL_TREES)
def test_every_fixture_checks_without_crashing(fixture_root, name):
    top = detect(HostFS(str(fixture_root(name))))
    checks = run_checks(top, CheckContext(live=False))
    assert [c.id for c in checks] == list(CHECK_IDS)
    for c in checks:
        assert c.status in CHECK_STATUSES
        assert "check failed" not in c.summary, (c.id, c.summary)
        assert c.why
    by = {c.id: c for c in checks}
    assert by["engine_isa"].status == "unknown"  # not this machine's engine
    assert by["memory_pressure"].status == "unknown"


def test_dimms_fixture_reads_channels(fixture_root):
    top = detect(HostFS(str(fixture_root("32em64t-2n8c+dax+nvme+mic+dimms"))))
    got = by_id(top, CheckContext(live=False))
    # 8 DDR3-1600 DIMMs, 4 per socket on a 4-channel Sandy Bridge-EP (E5-2680 v1, DDR3-1600).
    c = got["memory_channels"]
    assert c.status == "pass", c.summary
    assert any(e.value == "socket 0: 4, socket 1: 4" for e in c.evidence)
    # The DIMMs run at the platform's maximum: no "below the platform" warning (a v2 table row
    # at 1866 MT/s once made this warn on a machine that cannot go faster).
    speed = got["dimm_speed"]
    assert speed.status == "pass", speed.summary
    assert "1600" in speed.summary


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rigtui", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=env,
    )


def test_cli_json_contract_and_exit_code(fixture_root, tmp_path):
    root = _tree(fixture_root, tmp_path)
    _write(root, "proc/sys/kernel/numa_balancing", "1\n")
    proc = _cli("check", "--json", "--root", str(root))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [c["id"] for c in data] == list(CHECK_IDS)
    for c in data:
        assert {"id", "status", "evidence", "why", "fix"} <= set(c)
    nb = next(c for c in data if c["id"] == "numa_balancing")
    assert nb["status"] == "warn"
    assert nb["evidence"] == [{"source": "/proc/sys/kernel/numa_balancing", "value": "1"}]
    engine = next(c for c in data if c["id"] == "engine_isa")
    assert engine["status"] == "unknown" and "--root" in engine["summary"]
    text = _cli("check", "--root", str(root))
    assert text.returncode == 1 and "WARN numa_balancing" in text.stdout
    assert "sysctl -w kernel.numa_balancing=0" in text.stdout
    bad = _cli("check", "--only", "nonsense")
    assert bad.returncode == 2 and "unknown check id" in bad.stderr


def test_cli_live_with_model(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(1 << 20))
    proc = _cli(
        "check",
        "--json",
        "--model",
        str(model),
        "--only",
        "free_memory",
        "--only",
        "model_page_cache",
        "--only",
        "engine_isa",
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    data = {c["id"]: c for c in json.loads(proc.stdout)}
    assert data["free_memory"]["status"] == "pass"
    placed = data["model_page_cache"]
    assert any(
        e["source"].startswith("mincore") and "node" in e["value"] for e in placed["evidence"]
    )
    if len(detect(HostFS("/")).nodes) == 1:
        assert placed["status"] == "pass"  # fresh file, cached on the only node
    else:
        assert placed["status"] in ("pass", "warn")
    assert "Traceback" not in proc.stderr


def _epyc_tree_with_dimms(tmp_path, channels: str, configured=(4800,) * 12):
    """A dual EPYC 9654 tree whose SMBIOS type 17 records populate `channels` of each socket."""
    from probe_helpers import cpu_tree, write_tree
    from test_probe_parse import smbios_type17

    files: dict = {**cpu_tree(2, 4, 2)}
    i = 0
    for s in range(2):
        for j, ch in enumerate(channels):
            files[f"sys/firmware/dmi/entries/17-{i}/raw"] = smbios_type17(
                locator=f"P{s} CHANNEL {ch}", bank=f"P{s}_NODE0_CHANNEL_{ch}",
                configured=configured[j],
            )  # fmt: skip
            i += 1
    return write_tree(tmp_path, files)


@pytest.mark.parametrize(
    "channels,configured,status_ch,status_speed",
    [
        ("ABCDEFGHIJKL", (4800,) * 12, "pass", "pass"),
        ("ABCDEFGHIJK", (4800,) * 11, "warn", "pass"),  # one channel empty per socket
        ("ABCDEF", (4800,) * 6, "fail", "pass"),  # half the bandwidth missing
        ("ABCDEFGHIJKL", (4800,) * 11 + (4400,), "pass", "warn"),  # one slow DIMM paces all
    ],
)
def test_tree_flips_memory_checks(tmp_path, channels, configured, status_ch, status_speed):
    root = _epyc_tree_with_dimms(tmp_path, channels, configured)
    got = by_id(detect(HostFS(str(root)), nvml=False), CheckContext(live=False))
    assert got["memory_channels"].status == status_ch, got["memory_channels"].summary
    assert got["dimm_speed"].status == status_speed, got["dimm_speed"].summary
    if status_ch != "pass":
        assert "populate all 12 channels" in got["memory_channels"].fix


def test_cli_root_that_does_not_exist_is_an_error_not_a_passing_machine(tmp_path, capsys):
    """An empty tree would read as 0 sockets whose checks pass (exit 0): say what is wrong."""
    from rigtui.cli import main

    missing = str(tmp_path / "nope")
    assert main(["check", "--json", "--root", missing]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "does not exist" in out.err and "--root" in out.err
    assert main(["plan", str(tmp_path / "m.gguf"), "--root", missing]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_numa_mode_unknown_without_cpu_topology():
    top = epyc()
    c = by_id(replace(top, sockets=()))["numa_mode"]
    assert c.status == "unknown" and "rigtui probe" in c.fix
