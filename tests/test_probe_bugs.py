"""Regression tests for defects found in a code review of rigtui.probes and `rigtui probe`."""

from __future__ import annotations

import io
from dataclasses import replace

from analysis_helpers import dimm, epyc, gpu
from rich.console import Console

from rigtui.commands.probe import render
from rigtui.model.topology import Sensor


def test_probe_report_prints_firmware_strings_verbatim():
    # SMBIOS strings (locator, part number), PCI/NVML names, hwmon labels and node notes are
    # whatever the firmware or driver says; Rich read them as markup: "[/x]" crashed
    # `rigtui probe` with MarkupError and "[a1]" vanished from the table.
    top = epyc(sockets=1, nodes_per_socket=1)
    top = replace(top, sockets=tuple(replace(s, l3_domains=()) for s in top.sockets))
    odd = replace(dimm(0, "A"), locator="DIMM [a1]", part_number="[/x]HMCG88")
    top = replace(
        top,
        memory=replace(top.memory, dimms=(odd,)),
        gpus=(replace(gpu(), name="GA102 [/b]", driver="[nv]"),),
        sensors=(Sensor("k10temp", "[tctl]", "cpu-package", 40.0, 0, None, None, "/x"),),
        nodes=(replace(top.nodes[0], note="[/note] odd"),),
    )
    con = Console(file=io.StringIO(), width=200, highlight=False, soft_wrap=False)
    render(top, con)
    out = con.file.getvalue()
    for s in ("DIMM [a1]", "[/x]HMCG88", "GA102 [/b]", "[nv]", "[tctl]", "[/note] odd"):
        assert s in out


def _detect(tmp_path, changes: dict[str, str]):
    from probe_helpers import cpu_tree, write_tree

    from rigtui.hostfs import HostFS
    from rigtui.probes import detect

    files = cpu_tree(sockets=2, cores=2, threads=1)  # CPUs 0-1 on node 0, 2-3 on node 1
    files.update(changes)
    return detect(HostFS(str(write_tree(tmp_path, files))), nvml=False)


def test_a_cpu_listed_in_two_nodes_stays_in_one_and_is_reported(tmp_path):
    top = _detect(tmp_path, {"sys/devices/system/node/node1/cpulist": "0-1000\n"})
    cpus = {n.id: set(n.cpus) for n in top.nodes}
    assert cpus == {0: {0, 1}, 1: {2, 3}}  # no CPU in two nodes
    reasons = " | ".join(p.reason for p in top.problems if "node1/cpulist" in p.path)
    assert "CPUs 0-1 are also in node 0" in reasons
    assert "CPUs 4-1000, which this machine does not have" in reasons


def test_a_distance_row_of_the_wrong_length_is_not_kept(tmp_path):
    top = _detect(tmp_path, {"sys/devices/system/node/node1/distance": "32 10 21\n"})
    node1 = next(n for n in top.nodes if n.id == 1)
    assert not node1.distances
    assert any("node1/distance" in p.path and "3 distances for 2 nodes" in p.reason
               for p in top.problems)  # fmt: skip
    assert dict(next(n for n in top.nodes if n.id == 0).distances) == {0: 10, 1: 32}
