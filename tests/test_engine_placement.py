from __future__ import annotations

from rigtui.engine.placement import parse_numa_maps, parse_status_lists

NUMA_MAPS = """\
55d0c0a00000 default file=/usr/bin/python3.11 mapped=200 N0=200 kernelpagesize_kB=4
7f0000000000 interleave:0-1 file=/models/m.gguf mapped=1000 mapmax=2 N0=500 N1=500 kernelpagesize_kB=4
7f1000000000 interleave:0-1 file=/models/m.gguf mapped=10 N1=10 kernelpagesize_kB=4
7f2000000000 bind:0 anon=300 dirty=300 N0=300 kernelpagesize_kB=4
7f3000000000 bind:0 anon=2 dirty=2 N0=2 kernelpagesize_kB=2048
7ffc00000000 default stack anon=5 dirty=5 N0=5 kernelpagesize_kB=4
"""


def test_numa_maps_model_pages_per_node():
    file_bytes, anon_bytes = parse_numa_maps(NUMA_MAPS, "/models/m.gguf")
    assert file_bytes == {0: 500 * 4096, 1: 510 * 4096}
    assert anon_bytes == {0: 305 * 4096 + 2 * 2048 * 1024}
    assert parse_numa_maps(NUMA_MAPS, None)[0] == {}


def test_status_lists():
    text = "Name:\tpython\nCpus_allowed_list:\t0-2,8\nMems_allowed_list:\t0-1\n"
    assert parse_status_lists(text) == ((0, 1, 2, 8), (0, 1))
