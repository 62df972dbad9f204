"""The multi-node guest's harness, without booting (tests/vm/ boots it): which hosts need the
portable engine build, and the ext4 model disk."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "vm"))
import vm_harness as harness  # noqa: E402

ZEN4 = ("flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 "
        "movbe popcnt aes xsave avx f16c rdrand avx2 bmi2 avx512f avx512dq avx512ifma avx512cd "
        "avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg avx512_vpopcntdq\n")  # fmt: skip
SPR = "flags\t: sse avx2 fma f16c avx_vnni avx512f amx_bf16 amx_tile amx_int8\n"
ZEN3 = "processor\t: 0\nflags\t\t: fpu sse sse2 fma avx f16c avx2 bmi2 sha_ni vaes vpclmulqdq\n"


def test_hosts_whose_native_build_would_die_in_the_guest():
    assert harness.tcg_lacks(harness.cpu_flags(ZEN3)) == []
    zen4 = harness.tcg_lacks(harness.cpu_flags(ZEN4))
    assert "avx512f" in zen4 and "avx512_vnni" in zen4 and "avx2" not in zen4
    assert set(harness.tcg_lacks(harness.cpu_flags(SPR))) == {"avx_vnni", "avx512f", "amx_bf16",
                                                               "amx_tile", "amx_int8"}  # fmt: skip
    assert harness.cpu_flags("no flags here") == set()


@pytest.mark.skipif(shutil.which("mkfs.ext4") is None or shutil.which("debugfs") is None,
                    reason="needs e2fsprogs")  # fmt: skip
def test_model_disk_holds_the_files(tmp_path):
    src = tmp_path / "models"
    src.mkdir()
    (src / "a.gguf").write_bytes(b"GGUF" + bytes(3 << 20))
    image = harness.make_disk(src, tmp_path / "models.img")
    listing = subprocess.run(["debugfs", "-R", "ls -l /", str(image)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert "a.gguf" in listing and str(4 + (3 << 20)) in listing
    assert image.stat().st_size >= (3 << 20) + (32 << 20)


@pytest.fixture
def fake_vng(tmp_path, monkeypatch):
    """`vng` replaced by a script that runs its --exec command (the last argument) in bash."""
    vng = tmp_path / "vng"
    vng.write_text('#!/bin/bash\nexec bash -c "${@: -1}"\n')
    vng.chmod(0o755)
    monkeypatch.setattr(harness, "vng_path", lambda: str(vng))
    return tmp_path


def test_a_silent_guest_is_killed_at_the_alive_deadline(fake_vng):
    t0 = time.monotonic()
    b = harness.boot(harness.TWO_SOCKETS, "sleep 60", rwdir=fake_vng, timeout=120, alive_s=1.5)
    assert not b.alive and not b.timed_out and b.returncode is None
    assert time.monotonic() - t0 < 15  # the sleep (a grandchild) was killed with the session


def test_a_guest_past_its_timeout_keeps_what_it_printed(fake_vng):
    cmd = (f"echo '{harness.ALIVE_MARK} {{}}'; echo 'RIGTUI-VM probe {{\"rc\": 0}}'; "
           "echo 'RIGTUI-VM bench_mem.started 1.0'; sleep 60")  # fmt: skip
    b = harness.boot(harness.TWO_SOCKETS, cmd, rwdir=fake_vng, timeout=3, alive_s=2)
    assert b.alive and b.timed_out and b.returncode is None
    found = harness.results(b.stdout)
    assert found["probe"] == {"rc": 0} and "bench_mem" not in found and "bench_mem.started" in found


def test_a_guest_that_finishes(fake_vng):
    cmd = f"echo '{harness.ALIVE_MARK} {{}}'; echo 'RIGTUI-VM probe [1, 2]'; echo oops >&2; exit 3"
    b = harness.boot(harness.TWO_SOCKETS, cmd, rwdir=fake_vng, timeout=30, alive_s=10)
    assert b.alive and not b.timed_out and b.returncode == 3 and "oops" in b.stderr
    assert harness.results(b.stdout)["probe"] == [1, 2]
