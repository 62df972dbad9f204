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
