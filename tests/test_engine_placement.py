from __future__ import annotations

import pytest

from rigtui.engine.placement import model_pages as parse_numa_maps
from rigtui.model.procfs import parse_status_lists

NUMA_MAPS = """\
55d0c0a00000 default file=/usr/bin/python3.11 mapped=200 N0=200 kernelpagesize_kB=4
7f0000000000 interleave:0-1 file=/models/m.gguf mapped=1000 mapmax=2 N0=500 N1=500 kernelpagesize_kB=4
7f1000000000 interleave:0-1 file=/models/m.gguf mapped=10 N1=10 kernelpagesize_kB=4
7f2000000000 bind:0 anon=300 dirty=300 N0=300 kernelpagesize_kB=4
7f3000000000 bind:0 anon=2 dirty=2 N0=2 kernelpagesize_kB=2048
7ffc00000000 default stack anon=5 dirty=5 N0=5 kernelpagesize_kB=4
"""


def test_numa_maps_model_pages_per_node():
    file_bytes, anon_bytes = parse_numa_maps(NUMA_MAPS.encode(), "/models/m.gguf")
    assert file_bytes == {0: 500 * 4096, 1: 510 * 4096}
    assert anon_bytes == {0: 305 * 4096 + 2 * 2048 * 1024}
    assert parse_numa_maps(NUMA_MAPS.encode(), None)[0] == {}


def test_status_lists():
    text = "Name:\tpython\nCpus_allowed_list:\t0-2,8\nMems_allowed_list:\t0-1\n"
    assert parse_status_lists(text) == ((0, 1, 2, 8), (0, 1))


def test_thread_cpus_sees_a_thread_re_pinned_wider_than_the_process():
    """What llama.cpp's numa = distribute does: the process is pinned narrow, a compute thread
    re-pins itself wider; /proc/PID/status alone would miss it."""
    import os
    import threading

    from rigtui.engine.placement import read_process_placement as read_placement
    from rigtui.engine.placement import thread_cpus

    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("needs two usable CPUs")
    ready, done = threading.Event(), threading.Event()

    def wide() -> None:
        os.sched_setaffinity(0, set(allowed))  # 0 = the calling thread only
        ready.set()
        done.wait(10)

    os.sched_setaffinity(0, {allowed[0]})  # the main thread, like rigtui's pin
    t = threading.Thread(target=wide)  # starts with the narrow set, then widens
    try:
        t.start()
        assert ready.wait(10)
        placement = read_placement("self")
        assert placement["cpus_allowed"] == (allowed[0],)
        assert placement["thread_cpus"] == thread_cpus("self") == tuple(allowed)
    finally:
        done.set()
        t.join()
        os.sched_setaffinity(0, set(allowed))
    assert thread_cpus(999_999_999) == ()
