"""What-if sizing without a file (issue 11, item 5), checked against the owners' arithmetic in
../shared/notes: the 400B-on-DDR5 thread and the local-ML hardware guide's platform table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rigtui.analysis.whatif import (
    WhatIfError,
    count_text,
    parse_bits,
    parse_count,
    parse_gpus,
    rig_bandwidth,
    what_if,
)


def _plan(**kw):
    rig = {k: kw.pop(k) for k in ("platform", "sockets", "ccds", "channels", "mts") if k in kw}
    bw, name, notes = rig_bandwidth(**rig)
    return what_if(bandwidth=bw, rig=name, notes=notes, **kw)


def test_the_400b_threads_arithmetic():
    # "(6/8) * 400B = 300GB ... an M.2 drive (read speed <10GB/sec) ... 300/10 = 30 seconds per token"
    p = _plan(params=400e9, bits=6, channels=2, mts=5000)
    assert p.weights_bytes.value == pytest.approx(300e9)
    assert p.disk_s_per_token.value == pytest.approx(30.0) and p.fits == "unknown"
    # "with 2 channels, this becomes 80GB/sec. 300GB/80GB = theoretical minimum of 4 seconds"
    assert p.bandwidth_gbs.value == pytest.approx(80.0)
    assert 1 / p.cpu_only_tok_s.value == pytest.approx(3.75, rel=1e-3)
    # "2 EPYC CPUs = 24 RAM channels = 960GB/sec" (DDR5 at ~40 GB/s a channel: 5000 MT/s)
    two = _plan(params=400e9, bits=6, channels=24, mts=5000, ram_bytes=384e9)
    assert two.bandwidth_gbs.value == pytest.approx(960.0) and two.fits == "ram"
    assert two.cpu_only_tok_s.value == pytest.approx(3.2)
    turin = _plan(params=400e9, bits=6, channels=24, mts=5600)  # the guide's 2 x EPYC 9005 figure
    assert turin.bandwidth_gbs.value == pytest.approx(1075.2)
    assert "nothing streams" in two.disk_s_per_token.detail


def test_the_threads_sample_build_of_two_epyc_9124_is_fabric_capped():
    """The thread's sample build (2 x EPYC 9124, 24 x DDR5-4800) "1-2 tok/sec": its 4 CCDs per
    socket read 230.4 of the 460.8 GB/s its channels allow, so 1.5 tok/s, not 3."""
    p = _plan(params=400e9, bits=6, platform="EPYC 9124", sockets=2, ccds=4, ram_bytes=384e9)
    assert p.bandwidth_gbs.value == pytest.approx(460.8)
    assert p.cpu_only_tok_s.value == pytest.approx(1.536)
    assert "capped by the fabric" in p.bandwidth_gbs.detail
    assert any("230.4 of 460.8" in n for n in p.notes)
    uncapped = _plan(params=400e9, bits=6, platform="EPYC 9124", sockets=2, ccds=12)
    assert uncapped.bandwidth_gbs.value == pytest.approx(921.6)


@pytest.mark.parametrize(("platform", "sockets", "gbs"), [
    ("EPYC 9004", 1, 460.8), ("EPYC 9004", 2, 921.6),  # the guide's SP5 table
    # the guide counts Turin at DDR5-5600 (537.6 / 1075.2); AMD rates it DDR5-6000, the table's
    ("EPYC 9005", 2, 1152.0), ("Threadripper PRO 7000WX", 1, 332.8),
    ("EPYC 8004", 1, 230.4),
])  # fmt: skip
def test_platform_bandwidth_matches_the_guides_tables(platform, sockets, gbs):
    bw, rig, _ = rig_bandwidth(platform=platform, sockets=sockets)
    assert bw.value == pytest.approx(gbs) and bw.basis == "estimated" and str(sockets) in rig


def test_gpus_full_offload_runs_them_in_turn_and_hybrid_reads_the_rest_from_ram():
    # "The highest-memory consumer GPUs (3090/4090) are 24GB. We would need about 16 of them"
    sixteen = _plan(params=400e9, bits=6, channels=24, mts=4800, gpus=parse_gpus(["RTX 4090 x16"]))
    assert sixteen.fits == "vram"
    # layers split over 16 cards read one after another: the speed of one card's bandwidth
    assert sixteen.full_offload_tok_s.value == pytest.approx(1008 / 300, rel=1e-3)
    twelve = _plan(params=400e9, bits=6, channels=24, mts=4800, gpus=parse_gpus(["RTX 4090 x12"]),
                   ram_bytes=384e9)  # fmt: skip
    assert twelve.fits == "ram" and twelve.full_offload_tok_s.value is None
    vram = 12 * 23.5e9
    t = vram / 300e9 * 300e9 / 1008e9 + (300e9 - vram) / 921.6e9
    assert twelve.hybrid_tok_s.value == pytest.approx(1 / t, rel=1e-3)
    mixed = parse_gpus(["RTX 4090", "3090 Ti", "Tesla P40 x2", "H100x2", "MI300X"])
    assert [g[0] for g in mixed] == ["RTX 4090", "RTX 3090 Ti", "Tesla P40", "Tesla P40", "H100",
                                     "H100", "MI300X"]  # fmt: skip
    assert mixed[2][2] == 347 and parse_gpus(["3090"])[0][2] == 936  # the P40, 3090


def test_moe_reads_its_active_share_and_a_model_too_big_streams_from_disk():
    p = _plan(params=671e9, bits=4.85, active_params=37e9, channels=24, mts=4800, ram_bytes=256e9)
    assert p.bytes_per_token.value == pytest.approx(37e9 * 4.85 / 8)
    assert p.cpu_only_tok_s.value == pytest.approx(921.6e9 / (37e9 * 4.85 / 8), rel=1e-3)
    assert p.fits == "disk" and any("does not fit" in n for n in p.notes)
    missing = 671e9 * 4.85 / 8 - 256e9
    assert p.disk_s_per_token.value == pytest.approx(37e9 * 4.85 / 8 * missing / (671e9 * 4.85 / 8) / 10e9, rel=1e-3)
    with pytest.raises(WhatIfError, match="cannot exceed"):
        _plan(params=8e9, bits=4, active_params=9e9, channels=2, mts=4800)


def test_parsers():
    assert parse_count("405B") == 405e9 and parse_count("405e9") == 405e9 and parse_count("1.5T") == 1.5e12
    assert count_text(405e9) == "405B" and count_text(1.5e12) == "1.5T"
    assert parse_bits("Q8_0") == 8.5 and parse_bits("6") == 6.0
    for bad in ("lots", "-3", "0"):
        with pytest.raises(WhatIfError):
            parse_count(bad)
    with pytest.raises(WhatIfError, match="quant"):
        parse_bits("Q9_Z")
    with pytest.raises(WhatIfError, match="GPU table"):
        parse_gpus(["RTX 9999"])
    with pytest.raises(WhatIfError, match="CCD fabric"):
        rig_bandwidth(platform="Xeon Platinum 8480+", sockets=2, ccds=4)
    with pytest.raises(WhatIfError, match="1 to 1"):
        rig_bandwidth(platform="EPYC 8004", sockets=2)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rigtui", "plan", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_cli_what_if_json_text_and_exit_codes():
    ok = _cli("--params", "400e9", "--bits", "6", "--channels", "24", "--mts", "5000",
              "--ram-gb", "384", "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["fits"] == "ram" and doc["weights_bytes"]["value"] == pytest.approx(300e9)
    assert doc["cpu_only_tok_s"]["basis"] == "estimated"
    assert doc["cpu_only_tok_s"]["value"] == pytest.approx(3.2)
    text = _cli("--params", "400B", "--bits", "6", "--platform", "EPYC 9124", "--sockets", "2",
                "--ccds", "4", "--gpu", "RTX 4090 x2")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "What if: 400B params at 6 bits on 2 x EPYC 9004" in text.stdout
    assert "460.8 GB/s" in text.stdout and "RTX 4090 x2" in text.stdout
    too_big = _cli("--params", "400e9", "--bits", "6", "--channels", "2", "--mts", "5000",
                   "--ram-gb", "128")  # fmt: skip
    assert too_big.returncode == 1 and "streamed from the disk" in too_big.stdout
    for bad in (["--params", "400e9"], ["--params", "x", "--bits", "6"],
                ["--params", "8B", "--bits", "4", "--gpu", "RTX 9999"],
                ["model.gguf", "--params", "8B", "--bits", "4"],
                ["--bits", "4", "--platform", "EPYC 9004"]):  # fmt: skip
        r = _cli(*bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, bad


def test_this_machine_is_sized_with_the_figure_plan_uses():
    """One model over every node: the interleaved `bench mem` run, not the all-local sum."""
    from analysis_helpers import epyc

    from rigtui.model.analysis import MemBandwidth, MemBenchResult

    def bw(label, nodes, gbs):
        return MemBandwidth(label, nodes, nodes, 8, 1, gbs, None, None, None, True)

    top = epyc()
    res = MemBenchResult(0.0, "c", top.fingerprint(), (), (), (), bw("machine", (0, 1), 800.0),
                         interleaved=bw("interleaved", (0, 1), 330.0))  # fmt: skip
    fig, rig, _ = rig_bandwidth(topology=top, membench=res)
    assert fig.value == 330.0 and fig.basis == "measured" and rig.startswith("this machine")
    theo, _, _ = rig_bandwidth(topology=top)
    assert theo.value == pytest.approx(921.6)


@pytest.mark.parametrize("platform, fclk", [
    ("EPYC 9005", 2000), ("EPYC 9004", 1800), ("EPYC 8004", 1800), ("EPYC 7003", 1600),
    ("EPYC 7002", 1467), ("Threadripper PRO 7000WX", 1800), ("Threadripper PRO 9000WX", 2000),
    ("EPYC 4005", 2000),
])  # fmt: skip
def test_the_fabric_cap_takes_the_fclk_of_the_probes_generation_table(platform, fclk):
    """--ccds uses probes/fabric's generations (one table for the probe and the what-if)."""
    from rigtui.probes.fabric import BYTES_PER_CLOCK, generation_of_platform
    from rigtui.probes.platforms import all_platforms

    plat = next(p for p in all_platforms() if p.name.startswith(platform))
    assert generation_of_platform(plat.name).fclk_mhz == fclk
    bw, _, _ = rig_bandwidth(platform=platform, sockets=1, ccds=1)
    assert f"1 CCDs x {BYTES_PER_CLOCK} B x {fclk / 1000:g} GHz FCLK" in bw.detail


def test_an_am4_ryzen_is_zen_2_or_3_at_1600():
    from rigtui.probes.fabric import generation_of_platform

    assert generation_of_platform("Ryzen 3000/5000 (AM4)").fclk_mhz == 1600
    assert generation_of_platform("Xeon 6 (Granite Rapids)") is None
