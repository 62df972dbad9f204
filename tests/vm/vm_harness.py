"""Boot a multi-socket, multi-node Linux guest (QEMU TCG + virtme-ng over this machine's own
file system) and run a command in it with the project's venv: the real kernel behind every
placement claim. Used by tests/vm/test_vm_*.py (pytest -m vm).

Pieces (test.sh installs them as root): Debian's qemu-system-x86, busybox-static and
linux-image-amd64 (/boot/vmlinuz-*), PyPI's virtme-ng (`vng`, a test extra). /dev/kvm may exist
and still not boot guests, so the guest always runs under TCG (--disable-kvm): slow, but a real
kernel with the NUMA nodes, distances and SMBIOS records asked for.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
MARK = "RIGTUI-VM "


@dataclass(frozen=True)
class GuestTopology:
    """What the guest is booted with; the tests compare rigtui's probe against it."""

    name: str
    cpus: int
    sockets: int
    cores_per_socket: int
    node_mib: tuple[int, ...]  # memory per node
    node_cpus: tuple[tuple[int, ...], ...]  # CPUs per node (() = memory-only)
    distances: dict[tuple[int, int], int] = field(default_factory=dict)  # off-diagonal
    dimm: dict[str, str] | None = None  # -smbios type=17 fields

    def distance(self, a: int, b: int) -> int:
        if a == b:
            return 10
        return self.distances.get((a, b)) or self.distances.get((b, a)) or 20

    def vng_args(self) -> list[str]:
        args = ["--cpus", str(self.cpus), "--memory", f"{sum(self.node_mib)}M"]
        for mib, cpus in zip(self.node_mib, self.node_cpus, strict=True):
            spec = f"{mib}M"
            if cpus:
                spec += f",cpus={cpus[0]}-{cpus[-1]}"
            args += ["--numa", spec]
        for (a, b), d in sorted(self.distances.items()):
            args += ["--numa-distance", f"{a},{b}={d}"]
        qemu = f"-smp {self.cpus},sockets={self.sockets},cores={self.cores_per_socket},threads=1"
        if self.dimm:
            qemu += " -smbios type=17," + ",".join(f"{k}={v}" for k, v in self.dimm.items())
        return args + [f"--qemu-opts={qemu}"]


TWO_SOCKETS = GuestTopology(
    name="2s-2n", cpus=4, sockets=2, cores_per_socket=2, node_mib=(2048, 2048),
    node_cpus=((0, 1), (2, 3)), distances={(0, 1): 32},
    dimm={"loc_pfx": "DIMM", "bank": "P0_Node0_Channel", "manufacturer": "Samsung",
          "part": "M321R8GA0BB0-CQKZJ", "speed": "4800", "serial": "RIGTUI01"},
)  # fmt: skip
# NPS2-like: two nodes per socket (near 12, far 32) and a memory-only node (CXL-like).
NPS2_CXL = GuestTopology(
    name="2s-4n-cxl", cpus=4, sockets=2, cores_per_socket=2,
    node_mib=(768, 768, 768, 768, 1024), node_cpus=((0,), (1,), (2,), (3,), ()),
    distances={(0, 1): 12, (2, 3): 12, (0, 2): 32, (0, 3): 32, (1, 2): 32, (1, 3): 32,
               (0, 4): 20, (1, 4): 20, (2, 4): 40, (3, 4): 40},
)  # fmt: skip


def kernel() -> str | None:
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    return found[-1] if found else None


def vng_path() -> str | None:
    here = Path(sys.executable).parent / "vng"  # the venv's, next to this interpreter
    return str(here) if here.exists() else shutil.which("vng")


def missing() -> list[str]:
    """What is needed to boot a guest and is not here (empty: ready)."""
    out = []
    if vng_path() is None:
        out.append("virtme-ng (pip install virtme-ng: a test extra)")
    if shutil.which("qemu-system-x86_64") is None:
        out.append("qemu-system-x86_64 (apt install qemu-system-x86)")
    if shutil.which("busybox") is None:
        out.append("busybox (apt install busybox-static)")
    if kernel() is None:
        out.append("a kernel in /boot (apt install linux-image-amd64)")
    return out


def boot(topology: GuestTopology, command: str, *, rwdir: Path, timeout: float = 1500
         ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Boot `topology`, run `command` (a shell line, as root, cwd = the repository), return it
    when the guest powers off. `rwdir` is writable inside (the host's root is read-only)."""
    argv = [vng_path() or "vng", "--run", kernel() or "", "--disable-kvm", "--disable-microvm",
            *topology.vng_args(), f"--rwdir={rwdir}", "--cwd", str(REPO), "--exec", command]  # fmt: skip
    # vng runs virtme-run and friends from PATH: the venv's bin, even when it is not activated
    vng_dir = str(Path(argv[0]).parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PATH": os.pathsep.join([vng_dir, os.environ.get("PATH", "")])}  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def results(stdout: str) -> dict[str, object]:
    """The `RIGTUI-VM name json` lines guest.py printed, by name."""
    out: dict[str, object] = {}
    for line in stdout.splitlines():
        if line.startswith(MARK):
            name, _, payload = line[len(MARK) :].partition(" ")
            out[name] = json.loads(payload)
    return out
