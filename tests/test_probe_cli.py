"""`rigtui probe` / `rigtui probe --json` / `rigtui capture` through rigtui.cli.main, on fixtures,
on bad input and on this machine (live)."""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import subprocess
import tarfile

import pytest
from conftest import hwloc_names, util_linux_names
from probe_helpers import cpu_tree, write_tree
from test_probe_parse import smbios_type17

from rigtui.cli import main
from rigtui.hostfs import HostFS
from rigtui.probes import detect

FIXED_TOP = {
    "cpus",
    "cores",
    "sockets",
    "nodes",
    "cpu",
    "caches",
    "memory",
    "gpus",
    "sensors",
    "host",
}


def probe_json(capsys, root) -> tuple[int, dict]:
    code = main(["probe", "--json", "--root", str(root)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def check_contract(doc: dict) -> None:
    """The fixed keys and types of issue 2's --json contract."""
    assert set(doc) >= FIXED_TOP
    assert isinstance(doc["cpus"], int) and isinstance(doc["cores"], int)
    for s in doc["sockets"]:
        assert {"id", "model", "cores", "cpus", "nodes"} <= set(s)
        assert all(isinstance(c, int) for c in s["cpus"] + s["nodes"])
    for n in doc["nodes"]:
        assert {"id", "cpus", "mem_total_bytes", "distances", "kind"} <= set(n)
        assert n["kind"] in ("cpu", "memory-only")
        assert n["mem_total_bytes"] is None or isinstance(n["mem_total_bytes"], int)
        assert all(isinstance(v, int) for v in n["distances"].values())
    assert {"vendor", "model", "isa"} <= set(doc["cpu"])
    assert all(isinstance(v, bool) for v in doc["cpu"]["isa"].values())
    assert isinstance(doc["caches"]["l3_instances"], int)
    mem = doc["memory"]
    assert {
        "total_bytes",
        "dimms",
        "populated_channels",
        "theoretical_bandwidth_gbs",
        "source",
    } <= set(mem)
    for key in ("populated_channels", "theoretical_bandwidth_gbs"):
        if mem[key] is None:
            assert key in mem["unknown"], f"null {key} without a reason"
    assert isinstance(doc["gpus"], list) and isinstance(doc["sensors"], list)
    assert "kernel" in doc["host"]
    if doc["host"]["kernel"] is None:
        assert "kernel" in doc["host"]["unknown"]


@pytest.mark.parametrize("name", hwloc_names() + util_linux_names())
def test_json_contract_on_fixtures(name, fixture_root, capsys):
    code, doc = probe_json(capsys, fixture_root(name))
    assert code == 0
    check_contract(doc)
    assert doc["cpus"] == len(doc["cpu"]["online"])
    assert sum(len(s["cpus"]) for s in doc["sockets"]) == doc["cpus"]


def test_text_report_on_a_big_fixture(fixture_root, capsys):
    assert main(["probe", "--root", str(fixture_root("128arm-2pa2n8cluster4co"))]) == 0
    out = capsys.readouterr().out
    assert "Kunpeng-920" in out and "128 cores" in out
    assert "Socket 36" in out and "Node 3" in out
    assert "platform maximum, not measured" in out
    assert len(out.splitlines()) < 80, "a 128-core box must be summarised, not listed per core"


# -- bad input ---------------------------------------------------------------------------------------


def test_root_that_does_not_exist(tmp_path, capsys):
    code, doc = probe_json(capsys, tmp_path / "nope")
    assert code == 1
    check_contract(doc)
    assert doc["cpus"] == 0 and doc["sockets"] == []
    assert any("does not exist" in p["reason"] for p in doc["problems"])
    assert main(["probe", "--root", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_empty_root(tmp_path, capsys):
    code, doc = probe_json(capsys, tmp_path)
    assert code == 0
    check_contract(doc)
    assert doc["cpus"] == 0 and doc["memory"]["source"] == "unknown"
    assert any("cpu" in p["path"] for p in doc["problems"])


def test_no_node_directory(fixture_root, tmp_path, capsys):
    root = tmp_path / "t"
    shutil.copytree(fixture_root("16em64t-4s2c2t"), root, symlinks=True)
    shutil.rmtree(root / "sys/devices/system/node")
    code, doc = probe_json(capsys, root)
    check_contract(doc)
    assert [n["id"] for n in doc["nodes"]] == [0] and len(doc["nodes"][0]["cpus"]) == 16
    assert any("one node assumed" in p["reason"] for p in doc["problems"])


def test_missing_and_truncated_files(fixture_root, tmp_path, capsys):
    root = tmp_path / "t"
    shutil.copytree(fixture_root("16amd64-8n2c"), root, symlinks=True)
    (root / "proc/cpuinfo").unlink()
    (root / "sys/devices/system/node/node3/meminfo").write_text("Node 3 MemTot")
    (root / "sys/devices/system/node/node2/distance").write_text("10 20 x")
    (root / "sys/devices/system/cpu/cpu5/topology/thread_siblings_list").unlink()
    code, doc = probe_json(capsys, root)
    check_contract(doc)
    assert doc["cpus"] == 16
    node3 = next(n for n in doc["nodes"] if n["id"] == 3)
    assert node3["mem_total_bytes"] is None and "mem_total_bytes" in node3["unknown"]
    node2 = next(n for n in doc["nodes"] if n["id"] == 2)
    assert node2["distances"] == {} and "distances" in node2["unknown"]
    assert doc["cpu"]["model"] is None and "model" in doc["cpu"]["unknown"]
    assert any(p["path"].endswith("node2/distance") for p in doc["problems"])


def test_permission_denied_and_directory_in_place_of_file(tmp_path, capsys, monkeypatch):
    files = {**cpu_tree(2, 2, 1, model="Intel(R) Xeon(R) CPU E5-2680 0 @ 2.70GHz")}
    files["sys/firmware/dmi/entries/17-0/raw"] = smbios_type17()
    root = write_tree(tmp_path / "t", files)
    # Tests run as root, who may read a chmod 000 file: a directory where a file should be is
    # refused to root too (EISDIR), and PermissionError is injected where root reads DMI.
    (root / "proc/meminfo").unlink()
    (root / "proc/meminfo").mkdir()
    real_open = open

    def deny(path, *a, **k):
        if "dmi/entries" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    code, doc = probe_json(capsys, root)
    monkeypatch.undo()
    check_contract(doc)
    reasons = {p["path"]: p["reason"] for p in doc["problems"]}
    assert any("needs root" in r for p, r in reasons.items() if "dmi/entries" in p)
    assert reasons.get("/proc/meminfo", "").startswith("is a directory")
    # No DIMM records: the platform table speaks, and says so.
    assert doc["memory"]["dimms"] == [] and "platform-table" in doc["memory"]["source"]


@pytest.mark.parametrize("seed", range(6))
def test_garbage_everywhere_never_crashes(fixture_root, tmp_path, capsys, seed):
    """Every file replaced by random bytes, truncated or emptied: JSON stays valid."""
    name = ["16amd64-8n2c", "fakememinitiators-1np2c+1npp+gi", "x86_64-64cpu"][seed % 3]
    root = tmp_path / "t"
    shutil.copytree(fixture_root(name), root, symlinks=True)
    rng = random.Random(seed)
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or rng.random() < 0.3:
                continue
            with open(p, "rb") as fh:
                data = fh.read()
            choice = rng.random()
            if choice < 0.3:
                new = data[: rng.randrange(len(data) + 1)]
            elif choice < 0.6:
                new = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            elif choice < 0.8:
                new = b""
            else:
                new = rng.choice(
                    [b"-1\n", b"99999999999999999999\n", b"0-\n", b"ff,zz\n", b"\xff\xfe"]
                )
            with open(p, "wb") as fh:
                fh.write(new)
    code, doc = probe_json(capsys, root)
    assert code == 0
    check_contract(doc)
    assert main(["probe", "--root", str(root)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("seed", range(3))
def test_garbage_smbios_records(tmp_path, capsys, seed):
    """Bit-flipped, truncated and oversized SMBIOS type 17 records and tables."""
    rng = random.Random(seed)
    files: dict[str, str | bytes] = dict(cpu_tree(1, 2, 1))
    for i in range(12):
        blob = bytearray(smbios_type17(size_mb=rng.choice([0, 8192, 65536, 0x7FFF])))
        for _ in range(rng.randrange(1, 12)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        files[f"sys/firmware/dmi/entries/17-{i}/raw"] = bytes(
            blob[: rng.randrange(2, len(blob) + 1)]
        )
    files["sys/firmware/dmi/tables/DMI"] = bytes(rng.randrange(256) for _ in range(512))
    code, doc = probe_json(capsys, write_tree(tmp_path, files))
    assert code == 0
    check_contract(doc)


# -- the live machine ----------------------------------------------------------------------------------


def test_live_machine(capsys):
    topo = detect(HostFS("/"))
    assert set(topo.cpu.allowed or ()) == os.sched_getaffinity(0)
    assert len(topo.cpu.online) >= len(os.sched_getaffinity(0))
    assert len(topo.cpu.online) == os.cpu_count()
    assert topo.nodes and topo.sockets and len(topo.cores) >= 1
    assert topo.host.kernel == platform.release()
    assert topo.memory.total_bytes and topo.memory.total_bytes > 0
    assert topo.cpu.arch == platform.machine()
    code, doc = probe_json(capsys, "/")
    assert code == 0
    check_contract(doc)
    assert doc["cpus"] == len(topo.cpu.online)


@pytest.mark.skipif(shutil.which("lscpu") is None, reason="lscpu (util-linux) not installed")
def test_live_machine_matches_lscpu():
    """This machine, live, against lscpu's parseable output (CPU, core, socket, node per
    online CPU): the same counts and the same CPU -> node map."""
    out = subprocess.run(
        ["lscpu", "-p=CPU,CORE,SOCKET,NODE"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
    topo = detect(HostFS("/"), nvml=False)
    assert {int(r[0]) for r in rows} == set(topo.cpu.online)
    assert len({(r[2], r[1]) for r in rows}) == len(topo.cores)
    assert len({r[2] for r in rows}) == len(topo.sockets)
    node_of = {c.id: c.node for c in topo.cpus if c.online}
    assert {int(r[0]): int(r[3] or 0) for r in rows} == {c: n or 0 for c, n in node_of.items()}


def test_capture_round_trips_this_machine(tmp_path, capsys):
    out = tmp_path / "rig.tar.gz"
    assert main(["capture", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with tarfile.open(out) as tf:
        tf.extractall(tmp_path / "x", filter="tar")
    live = detect(HostFS("/"), nvml=False)
    copy = detect(HostFS(str(tmp_path / "x" / "rigtui-capture")), nvml=False)
    assert [(s.id, s.cpus, s.nodes, s.cores) for s in copy.sockets] == [
        (s.id, s.cpus, s.nodes, s.cores) for s in live.sockets
    ]
    assert [c.cpus for c in copy.cores] == [c.cpus for c in live.cores]
    assert [(n.id, n.cpus, n.kind, dict(n.distances)) for n in copy.nodes] == [
        (n.id, n.cpus, n.kind, dict(n.distances)) for n in live.nodes
    ]
    assert copy.cpu.model_name == live.cpu.model_name and copy.cpu.isa == live.cpu.isa
    assert copy.cpu.allowed == live.cpu.allowed
    assert copy.host.kernel == live.host.kernel
    # the facts checks read come along: resctrl (proc/mounts), the kind of VM/container
    assert copy.host.resctrl_mounted == live.host.resctrl_mounted
    assert copy.host.virtualization == live.host.virtualization
    with tarfile.open(out) as tf:
        names = tf.getnames()
        status = [n for n in names if re.fullmatch(r"rigtui-capture/proc/\d+/status", n)]
        assert status, names
        text = tf.extractfile(status[0]).read().decode()
    # proc/self/status reaches the archive under the pid: still reduced to the CPU/memory masks
    assert text and all(ln.startswith(("Cpus_allowed", "Mems_allowed")) for ln in text.splitlines())


def test_capture_keeps_symlinks_and_drops_serials(tmp_path, capsys):
    files = {
        **cpu_tree(1, 2, 1),
        "sys/firmware/dmi/entries/17-0/raw": smbios_type17(serial="SECRET-SN-1", asset="TAG-77"),
        "sys/firmware/dmi/tables/DMI": bytes([1, 0x1B, 0, 1, 1, 2, 3, 4])
        + b"\x42" * 19
        + b"Vendor\x00Prod\x00V1\x00SECRET-SYS\x00\x00"
        + smbios_type17(serial="SECRET-SN-2")
        + bytes([127, 4, 0, 0, 0, 0]),
        "sys/class/dmi/id/product_serial": "SECRET-PRODUCT\n",
        "sys/class/dmi/id/sys_vendor": "Vendor\n",
        "run/udev/data/+dmi:id": "E:MEMORY_DEVICE_0_SERIAL_NUMBER=SECRET-U\nE:MEMORY_DEVICE_0_SIZE=1024\n",
        "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/name": "k10temp\n",
        "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/temp1_input": "41000\n",
        "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/temp1_label": "Tctl\n",
    }
    links = {
        "sys/class/hwmon/hwmon0": "../../devices/pci0000:00/0000:00:18.3/hwmon/hwmon0",
        "sys/devices/pci0000:00/0000:00:18.3/hwmon/hwmon0/device": "../../../0000:00:18.3",
    }
    src = write_tree(tmp_path / "src", files, links)
    out = tmp_path / "c.tar.gz"
    assert main(["capture", str(out), "--root", str(src)]) == 0
    capsys.readouterr()
    with tarfile.open(out) as tf:
        blob = b"".join(tf.extractfile(m).read() for m in tf.getmembers() if m.isfile())
        links_in = {m.name: m.linkname for m in tf.getmembers() if m.issym()}
        tf.extractall(tmp_path / "x", filter="tar")
    assert b"SECRET" not in blob and b"TAG-77" not in blob
    assert links_in["rigtui-capture/sys/class/hwmon/hwmon0"].startswith("../../devices/")
    topo = detect(HostFS(str(tmp_path / "x" / "rigtui-capture")), nvml=False)
    assert [(s.chip, s.label, s.socket, s.temp_c) for s in topo.sensors] == [
        ("k10temp", "Tctl", 0, 41.0)
    ]
    assert topo.memory.source == "smbios" and topo.memory.dimms[0].part_number == "M321R4GA3BB6-CQK"


def test_capture_bad_root_and_unwritable_output(tmp_path, capsys):
    assert main(["capture", str(tmp_path / "a.tar.gz"), "--root", str(tmp_path / "missing")]) == 1
    assert main(["capture", str(tmp_path / "no/such/dir/a.tar.gz")]) == 1
    err = capsys.readouterr().err
    assert "not a directory" in err and "cannot write" in err


def test_an_internal_error_becomes_a_problem_not_a_crash(tmp_path, monkeypatch, capsys):
    import rigtui.probes.memory as memory_mod

    def boom(*a, **k):
        raise ZeroDivisionError("bug in a probe")

    monkeypatch.setattr(memory_mod, "read_memory", boom)
    code, doc = probe_json(capsys, write_tree(tmp_path, cpu_tree(1, 2, 2)))
    assert code == 0 and doc["cores"] == 2
    check_contract(doc)
    assert doc["memory"]["source"] == "unknown"
    assert any("ZeroDivisionError" in p["reason"] for p in doc["problems"])


def test_capture_never_destroys_an_existing_archive(tmp_path, monkeypatch, capsys):
    """An existing OUT is refused without --force; with it, a write that fails (a full disk)
    leaves the old archive whole and no partial file beside it."""
    import errno

    import rigtui.commands.capture as capture_mod

    out = tmp_path / "c.tar.gz"
    out.write_bytes(b"the old archive")
    assert main(["capture", str(out)]) == 1
    assert "exists; --force replaces it" in capsys.readouterr().err
    assert out.read_bytes() == b"the old archive"

    def full_disk(root, path):
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(capture_mod, "capture", full_disk)
    assert main(["capture", str(out), "--force"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"the old archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tar.gz"]
    monkeypatch.undo()
    assert main(["capture", str(out), "--force"]) == 0
    import tarfile

    with tarfile.open(out) as tf:
        assert any(n.endswith("CAPTURE-INFO") for n in tf.getnames())
