"""Boot a multi-socket, multi-node Linux guest (QEMU TCG + virtme-ng over this machine's own
file system) and run a command in it with the project's venv: the real kernel behind every
placement claim. Used by tests/vm/test_vm_*.py (pytest -m vm).

Pieces (test.sh installs them as root): Debian's qemu-system-x86, busybox-static and
linux-image-amd64 (/boot/vmlinuz-*), PyPI's virtme-ng (`vng`, a test extra). /dev/kvm may exist
and still not boot guests, so the guest always runs under TCG (--disable-kvm): slow, but a real
kernel with the NUMA nodes, distances and SMBIOS records asked for.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
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


# Instruction sets QEMU's TCG does not emulate. pip builds llama-cpp-python from source with
# GGML_NATIVE (-march=native), so on a host with any of these the venv's engine dies of SIGILL in
# the guest; the guest then gets a portable build (portable_engine) ahead of it on PYTHONPATH.
TCG_LACKS = ("avx512", "amx", "avx_vnni", "avxvnni", "avx_ifma", "avx_ne_convert")
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"


def cpu_flags(cpuinfo: str) -> set[str]:
    """The first `flags` line of a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def tcg_lacks(flags: set[str]) -> list[str]:
    """The host's flags a -march=native build may use and the TCG guest does not have."""
    return sorted(f for f in flags if f.startswith(TCG_LACKS))


def portable_engine() -> Path | None:
    """A directory to put first on the guest's PYTHONPATH whose llama_cpp runs under TCG
    (GGML_NATIVE off, AVX2/FMA/F16C), or None when the venv's own build does (the host has
    nothing TCG lacks). Built once per llama-cpp-python version into the user cache dir
    (~5-12 min on 2 cores); RIGTUI_VM_PORTABLE_ENGINE=1 forces it."""
    from importlib.metadata import version

    from rigtui.engine.demo_model import cache_dir

    lacking = tcg_lacks(cpu_flags(Path("/proc/cpuinfo").read_text()))
    if not lacking and os.environ.get("RIGTUI_VM_PORTABLE_ENGINE") != "1":
        return None
    ver = version("llama-cpp-python")
    dest = cache_dir() / "vm" / f"llama-cpp-python-{ver}-avx2"
    if (dest / ".built").is_file():
        return dest
    print(f"vm: building a portable llama-cpp-python {ver} for the guest (host has "
        f"{', '.join(lacking[:4]) or 'forced'}; TCG does not) into {dest}", file=sys.stderr)  # fmt: skip
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = {**os.environ, "CMAKE_ARGS": PORTABLE_CMAKE_ARGS,
           "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir",
                    "--no-binary", "llama-cpp-python", "--target", str(tmp),
                    f"llama-cpp-python=={ver}"], check=True, env=env)  # fmt: skip
    (tmp / ".built").write_text(PORTABLE_CMAKE_ARGS + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


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
    if shutil.which("mkfs.ext4") is None:
        out.append("mkfs.ext4 (apt install e2fsprogs)")
    return out


def make_disk(src: Path, image: Path) -> Path:
    """An ext4 image holding the files of `src` (mkfs.ext4 -d: no root, no loop mount), for
    `boot(disk=...)`: the guest sees it as /dev/vda, a real block-backed file system."""
    used = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
    size_mib = used * 12 // 10 // (1 << 20) + 32
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", str(src), str(image),
                    f"{size_mib}M"], check=True, capture_output=True)  # fmt: skip
    return image


@dataclass
class Boot:
    """One boot of a guest: what it printed, and how it ended."""

    returncode: int | None  # None: killed (no sign of life in time, or past the timeout)
    stdout: str
    stderr: str
    alive: bool  # guest.py printed its first line (the kernel booted and the command ran)
    timed_out: bool  # killed after `timeout` with the scenarios unfinished
    seconds: float


ALIVE_MARK = MARK + "alive"
# A guest boots in ~20-60 s under TCG even beside a second one on 2 cores. QEMU's TCG has hung
# a boot with no output at all (CI, a 5-node guest: 1500 s of silence), and aborted one (an
# MSI-X assertion): a boot that shows no sign of life by then is killed and booted again.
ALIVE_S = 240.0


def boot(topology: GuestTopology, command: str, *, rwdir: Path, disk: Path | None = None,
         timeout: float = 1500, alive_s: float = ALIVE_S) -> Boot:  # fmt: skip
    """Boot `topology`, run `command` (a shell line, as root, cwd = the repository), return
    when the guest powers off. `rwdir` is writable inside (the host's root is read-only);
    `disk` (make_disk's image) is attached as /dev/vda. The command must print ALIVE_MARK
    first (guest.py does): a guest silent for `alive_s` is killed (alive False), and one still
    running after `timeout` is killed with what it printed so far (timed_out True)."""
    argv = [vng_path() or "vng", "--run", kernel() or "", "--disable-kvm", "--disable-microvm",
            *topology.vng_args(), f"--rwdir={rwdir}", "--cwd", str(REPO)]  # fmt: skip
    if disk is not None:
        argv += ["--disk", str(disk)]
    argv += ["--exec", command]
    # vng runs virtme-run and friends from PATH: the venv's bin, even when it is not activated
    vng_dir = str(Path(argv[0]).parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PATH": os.pathsep.join([vng_dir, os.environ.get("PATH", "")])}  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    out: list[str] = []
    err: list[str] = []
    alive = threading.Event()

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith(ALIVE_MARK):
                alive.set()

    def read_err() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    for t in readers:
        t.start()

    def kill() -> None:  # vng, virtme-run and QEMU: the whole session
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    timed_out = False
    while proc.poll() is None and not alive.is_set() and time.monotonic() - t0 < alive_s:
        alive.wait(0.5)
    if proc.poll() is None and not alive.is_set():
        kill()
    else:
        try:
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            kill()
            timed_out = True
    for t in readers:
        t.join(timeout=10)
    return Boot(returncode=None if timed_out or not alive.is_set() else proc.returncode,
                stdout="".join(out), stderr="".join(err), alive=alive.is_set(),
                timed_out=timed_out, seconds=round(time.monotonic() - t0, 1))  # fmt: skip


def results(stdout: str) -> dict[str, object]:
    """The `RIGTUI-VM name json` lines guest.py printed, by name."""
    out: dict[str, object] = {}
    for line in stdout.splitlines():
        if line.startswith(MARK):
            name, _, payload = line[len(MARK) :].partition(" ")
            out[name] = json.loads(payload)
    return out
