"""Golden outputs (issue 11, item 8): `probe --json` and `check --json` of every captured
machine, compared whole, so a regression in DIMMs, caches, nodes, GPUs, sensors, memory
bandwidth or a check's verdict fails here, not only a change of the JSON's shape.

The files are in tests/golden/. After a change that is meant to alter them, regenerate with
`RIGTUI_UPDATE_GOLDEN=1 pytest tests/test_probe_golden.py`, read `git diff tests/golden`, and
commit the files only when every changed value is right for that machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import hwloc_names, util_linux_names

from rigtui.analysis.checks import run_checks
from rigtui.hostfs import HostFS
from rigtui.model.analysis import CheckContext
from rigtui.model.common import to_jsonable
from rigtui.probes import detect
from rigtui.probes.report import topology_to_json

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RIGTUI_UPDATE_GOLDEN") == "1"


def _normalise(doc, root: str):
    """The tree's temporary path becomes <root>; the per-CPU list one line per CPU."""
    text = json.dumps(doc, sort_keys=True).replace(root, "<root>")
    doc = json.loads(text)
    if isinstance(doc, dict) and "logical_cpus" in doc:
        doc["logical_cpus"] = [
            "cpu{id} online={online} socket={socket} die={die} core={core} node={node} l3={l3} "
            "kind={kind} mhz={max_mhz}".format(**c) for c in doc["logical_cpus"]
        ]
    return doc


def _compare(name: str, kind: str, doc) -> None:
    path = GOLDEN / f"{name}.{kind}.json"
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path.name}: run with RIGTUI_UPDATE_GOLDEN=1, review, commit"
    want = json.loads(path.read_text())
    if want != doc:  # name the first differing keys, not a 5,000-line diff
        diffs = _diff(want, doc)
        pytest.fail(f"{name} {kind} differs from {path.name} at: " + "; ".join(diffs[:8])
                    + (f" (+{len(diffs) - 8} more)" if len(diffs) > 8 else ""))  # fmt: skip


def _diff(a, b, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{where}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where or '.'}: {str(a)[:80]!r} -> {str(b)[:80]!r}"]


@pytest.mark.parametrize("name", hwloc_names() + util_linux_names())
def test_probe_and_check_json_match_the_reviewed_golden_files(name, fixture_root):
    root = fixture_root(name)
    topo = detect(HostFS(str(root)), nvml=False)
    _compare(name, "probe", _normalise(topology_to_json(topo), str(root)))
    checks = run_checks(topo, CheckContext(live=False, engine_reason="captured tree (--root)",
                                           model_page_reason="captured tree (--root)"))  # fmt: skip
    _compare(name, "check", _normalise(to_jsonable(checks), str(root)))


def test_every_golden_file_belongs_to_a_fixture():
    names = set(hwloc_names() + util_linux_names())
    stray = [p.name for p in GOLDEN.glob("*.json") if p.name.rsplit(".", 2)[0] not in names]
    assert not stray, f"golden files of no fixture: {stray}"
