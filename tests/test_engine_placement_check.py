"""placement_warnings: the policy asked vs the pages numa_maps found (pure)."""

from __future__ import annotations

from rigtui.engine.placement_check import fs_type_of, placement_warnings

MIB = 1 << 20
MOUNTS = """sysfs /sys sysfs rw 0 0
/dev/vda1 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
tmpfs /dev/shm tmpfs rw 0 0
/dev/vdb /tmp/disk ext4 rw 0 0
"""


def test_fs_type_is_the_longest_mount_prefix():
    assert fs_type_of("/tmp/m.gguf", MOUNTS) == "tmpfs"
    assert fs_type_of("/tmp/disk/m.gguf", MOUNTS) == "ext4"
    assert fs_type_of("/models/m.gguf", MOUNTS) == "ext4"
    assert fs_type_of("/tmpfoo/m.gguf", MOUNTS) == "ext4"  # a prefix of the name is not a dir


def test_bind_that_held_and_one_that_did_not():
    ok = placement_warnings(policy="bind", policy_nodes=[1], file_bytes_per_node={1: 50 * MIB})
    assert ok == ()
    (w,) = placement_warnings(policy="bind", policy_nodes=[1],
                              file_bytes_per_node={0: 49 * MIB, 1: 1 * MIB})  # fmt: skip
    assert "bind to node 1" in w and "2% of the model's resident pages" in w
    assert "page cache" in w and "drop_caches" in w  # the cause on a disk file system
    (w,) = placement_warnings(policy="bind", policy_nodes=[1], file_bytes_per_node={0: 50 * MIB},
                              fs_type="tmpfs")  # fmt: skip
    assert "on tmpfs" in w and "numactl --membind=1 cp" in w  # the fix for this policy
    (w,) = placement_warnings(policy="interleave", policy_nodes=[0, 1],
                              file_bytes_per_node={0: 50 * MIB}, fs_type="tmpfs")  # fmt: skip
    assert "numactl --interleave=0,1 cp" in w


def test_interleave_needs_every_node():
    even = {0: 25 * MIB, 1: 26 * MIB}
    assert placement_warnings(policy="interleave", policy_nodes=[0, 1],
                              file_bytes_per_node=even) == ()  # fmt: skip
    (w,) = placement_warnings(policy="interleave", policy_nodes=[0, 1],
                              file_bytes_per_node={1: 50 * MIB})  # fmt: skip
    assert "interleave over nodes 0,1" in w and "node1 100%" in w
    four = {0: 10 * MIB, 1: 10 * MIB, 2: 10 * MIB, 3: 2 * MIB}
    assert placement_warnings(policy="interleave", policy_nodes=[0, 1, 2, 3],
                              file_bytes_per_node=four)  # node 3 far below its 25%  # fmt: skip


def test_nothing_to_judge():
    assert placement_warnings(policy="bind", policy_nodes=[1], file_bytes_per_node={}) == ()
    assert placement_warnings(policy="bind", policy_nodes=[1],
                              file_bytes_per_node={0: 4096}) == ()  # fmt: skip
    assert placement_warnings(policy="default", policy_nodes=[],
                              file_bytes_per_node={0: 50 * MIB}) == ()  # fmt: skip


def test_threads_outside_the_cpu_set():
    (w,) = placement_warnings(policy="default", policy_nodes=[], file_bytes_per_node={},
                              cpus_asked=[2, 3], thread_cpus=[0, 1, 2, 3])  # fmt: skip
    assert "outside the profile's set (0,1)" in w and 'numa = "numactl"' in w
    assert placement_warnings(policy="default", policy_nodes=[], file_bytes_per_node={},
                              cpus_asked=[2, 3], thread_cpus=[2, 3]) == ()  # fmt: skip
