"""RAPL energy through powercap (issue 11, item 7): zones found as a dual-socket Xeon and an
EPYC lay them out, joules between two reads (a wrapped counter included), the MMIO and psys
duplicates left out, and a root-only energy_uj said as such. No machine here has RAPL: these
trees are the boundary, laid out as the kernel's powercap class shows them."""

from __future__ import annotations

import pytest

from rigtui.hostfs import HostFS
from rigtui.probes.rapl import NEEDS_ROOT, Rapl

XEON = {  # zone: (name, energy_uj, max_energy_range_uj)
    "intel-rapl:0": ("package-0", 1_000_000, 262_143_328_850),
    "intel-rapl:0:0": ("dram", 500_000, 65_712_999_613),
    "intel-rapl:1": ("package-1", 2_000_000, 262_143_328_850),
    "intel-rapl:1:0": ("dram", 700_000, 65_712_999_613),
    "intel-rapl-mmio:0": ("package-0", 1_000_000, 262_143_328_850),  # the same counter again
    "intel-rapl:0:1": ("core", 300_000, 262_143_328_850),  # part of package-0
}
EPYC = {"intel-rapl:0": ("package-0", 262_143_000_000, 262_143_328_850)}  # near the wrap


def _tree(tmp_path, zones):
    for zone, (name, uj, top) in zones.items():
        d = tmp_path / "sys/class/powercap" / zone
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text(f"{top}\n")
    return tmp_path


def _advance(root, zone, uj):
    (root / "sys/class/powercap" / zone / "energy_uj").write_text(f"{uj}\n")


def test_packages_and_dram_are_summed_once(tmp_path):
    root = _tree(tmp_path, XEON)
    rapl = Rapl(HostFS(str(root)))
    assert sorted(z.name for z in rapl.zones) == ["dram", "dram", "package-0", "package-1"]
    a = rapl.read()
    _advance(root, "intel-rapl:0", 1_000_000 + 150_000_000)  # 150 J
    _advance(root, "intel-rapl:1", 2_000_000 + 140_000_000)  # 140 J
    _advance(root, "intel-rapl:0:0", 500_000 + 20_000_000)  # 20 J
    _advance(root, "intel-rapl:1:0", 700_000 + 10_000_000)  # 10 J
    _advance(root, "intel-rapl-mmio:0", 999_999_999)  # not counted
    b = rapl.read()
    assert rapl.joules(a, b) == {"package": pytest.approx(290.0), "dram": pytest.approx(30.0)}


def test_a_wrapped_counter_is_counted_once_around(tmp_path):
    root = _tree(tmp_path, EPYC)
    rapl = Rapl(HostFS(str(root)))
    a = rapl.read()
    _advance(root, "intel-rapl:0", 671_150)  # 328_850 to the top + 671_150 = 1 J
    assert rapl.joules(a, rapl.read()) == {"package": pytest.approx(1.0)}


def test_no_powercap_and_a_root_only_counter_say_why(tmp_path, monkeypatch):
    none = Rapl(HostFS(str(tmp_path)))
    assert not none.available and "no RAPL package zone" in none.reason and none.read() is None
    root = _tree(tmp_path / "m", EPYC)
    fs = HostFS(str(root))
    rapl = Rapl(fs)
    original = HostFS.read_bytes

    def denied(self, rel, **kw):  # as an unprivileged user reads it since Linux 5.10
        if rel.endswith("energy_uj"):
            self.note(rel, "permission denied (needs root)")
            return None
        return original(self, rel, **kw)

    monkeypatch.setattr(HostFS, "read_bytes", denied)
    assert rapl.read() is None and rapl.reason == NEEDS_ROOT and "CVE-2020-8694" in NEEDS_ROOT


def test_the_bench_meters_its_timed_repetitions(tmp_path, monkeypatch):
    """The worker reads RAPL around each timed repetition (not the warm-up, not the depth
    prefix): a fake model whose every decode costs 0.5 J of package energy gives 2 tok/J."""
    from rigtui.engine import worker_bench
    from rigtui.model.engine import BenchResult

    root = _tree(tmp_path, {"intel-rapl:0": ("package-0", 0, 262_143_328_850)})
    spent = {"uj": 0}

    class FakeLlama:
        def n_vocab(self):
            return 100

        def n_ctx(self):
            return 512

        def reset(self):
            pass

        def token_bos(self):
            return 1

        def eval(self, tokens):
            spent["uj"] += 500_000 * len(tokens)
            _advance(root, "intel-rapl:0", spent["uj"])

    monkeypatch.setattr(worker_bench, "_rapl", lambda: Rapl(HostFS(str(root))))
    got = []
    worker_bench.bench(FakeLlama(), {"seq": 1, "n_prompt": 0, "n_gen": 8, "reps": 3, "n_depth": 64},
                       {"plan": {"threads": 2, "batch_threads": 2}}, lambda seq: False,
                       lambda cls, **kw: got.append((cls, kw)))  # fmt: skip
    [(cls, ev)] = got
    assert cls is BenchResult and ev["n_depth"] == 64
    assert ev["energy_j"] == pytest.approx(3 * 8 * 0.5)  # 3 timed reps x 8 decodes x 0.5 J
    assert ev["energy"].startswith("measured: RAPL via powercap (package-0)")
    # no RAPL at all: no joules, and the reason for the CLI's one `# tok/J:` line
    monkeypatch.setattr(worker_bench, "_rapl", lambda: Rapl(HostFS(str(tmp_path / "none"))))
    got.clear()
    worker_bench.bench(FakeLlama(), {"seq": 1, "n_prompt": 4, "n_gen": 0, "reps": 1},
                       {"plan": {"threads": 2, "batch_threads": 2}}, lambda seq: False,
                       lambda cls, **kw: got.append((cls, kw)))  # fmt: skip
    assert got[0][1]["energy_j"] is None and "no RAPL package zone" in got[0][1]["energy"]
