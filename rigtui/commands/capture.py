"""`rigtui capture OUT.tar.gz [--root DIR]`: pack the files `rigtui probe` reads, for bug reports
and new test fixtures (like hwloc-gather-topology).

Only a whitelist is copied (CPU/NUMA topology, caches, cpufreq, memory DIMM records, EDAC, GPU
and hwmon PCI attributes, a few OS settings). Symlinks are kept as symlinks, with their targets
copied too, so `rigtui probe --root` reads the tree the way it reads /. Nothing secret: SMBIOS
serial numbers, asset tags and the system UUID are blanked, DMI is reduced to memory devices,
udev serial/asset properties and the hostname are left out, proc/self/status is reduced to its
Cpus_allowed/Mems_allowed lines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time

from rigtui.cli import EXIT_FAILURE, EXIT_OK, add_root_arg, make_fs

TOP = "rigtui-capture"

WHITELIST = (
    "proc/cpuinfo", "proc/meminfo", "proc/mounts", "proc/self/mounts", "proc/version",
    "proc/self/cpuset", "proc/self/cgroup", "proc/self/status", "proc/sys/kernel/osrelease",
    # virtualization facts the host probe reads (what kind of VM/container this is)
    "run/systemd/container", ".dockerenv", "proc/1/cgroup", "sys/hypervisor/type",
    "proc/sys/kernel/numa_balancing", "proc/sys/kernel/perf_event_paranoid",
    "etc/os-release", "usr/lib/os-release",
    "sys/devices/system/cpu/online", "sys/devices/system/cpu/possible",
    "sys/devices/system/cpu/present", "sys/devices/system/cpu/offline",
    "sys/devices/system/cpu/smt/*", "sys/devices/system/cpu/cpufreq/boost",
    "sys/devices/system/cpu/intel_pstate/no_turbo",
    "sys/devices/system/cpu/cpu[0-9]*/online", "sys/devices/system/cpu/cpu[0-9]*/topology/*",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/level",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/size",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/type",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/id",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/shared_cpu_list",
    "sys/devices/system/cpu/cpu[0-9]*/cache/index*/shared_cpu_map",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_min_freq",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/base_frequency",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor",
    "sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_driver",
    "sys/devices/system/cpu/cpu[0-9]*/cpu_capacity",
    "sys/devices/system/cpu/cpu[0-9]*/regs/identification/midr_el1",
    "sys/devices/cpu_core/cpus", "sys/devices/cpu_atom/cpus",
    "sys/devices/system/node/online", "sys/devices/system/node/possible",
    "sys/devices/system/node/has_*",
    "sys/devices/system/node/node[0-9]*/cpulist", "sys/devices/system/node/node[0-9]*/cpumap",
    "sys/devices/system/node/node[0-9]*/meminfo", "sys/devices/system/node/node[0-9]*/distance",
    "sys/devices/system/node/node[0-9]*/hugepages/hugepages-*/nr_hugepages",
    "sys/kernel/mm/transparent_hugepage/enabled", "sys/kernel/mm/transparent_hugepage/defrag",
    "sys/firmware/dmi/entries/17-*/raw", "sys/firmware/dmi/tables/DMI",
    "sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name",
    "sys/class/dmi/id/board_vendor", "sys/class/dmi/id/board_name",
    "sys/class/dmi/id/bios_vendor", "sys/class/dmi/id/bios_version",
    "run/udev/data/+dmi:id",
    "sys/devices/system/edac/mc/mc[0-9]*/mc_name",
    "sys/devices/system/edac/mc/mc[0-9]*/dimm[0-9]*/*",
    "sys/devices/system/edac/mc/mc[0-9]*/rank[0-9]*/*",
    "sys/class/hwmon/hwmon*/name", "sys/class/hwmon/hwmon*/device",
    "sys/class/hwmon/hwmon*/temp*_input", "sys/class/hwmon/hwmon*/temp*_label",
    "sys/class/hwmon/hwmon*/temp*_crit",
)  # fmt: skip
PCI_FILES = (
    "class", "vendor", "device", "numa_node", "local_cpulist", "local_cpus",
    "current_link_speed", "current_link_width", "max_link_speed", "max_link_width", "driver",
    "mem_info_vram_total",
)  # fmt: skip
SKIP_NAMES = {"uevent", "serial", "serial_number"}  # never copied, even under a wildcard
_MOUNT_TYPES = {"resctrl", "cgroup", "cgroup2", "cpuset", "hugetlbfs"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "capture",
        help="pack what `rigtui probe` reads into a tar.gz (for bug reports; no serial numbers)",
        description="Capture the /sys and /proc files rigtui probes into OUT.tar.gz. "
        "Extract it and run `rigtui probe --root rigtui-capture` to see the same machine.",
    )
    p.add_argument("out", metavar="OUT.tar.gz", help="archive to write")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_root_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fs = make_fs(args)
    if not fs.isdir(""):
        print(f"rigtui capture: root {fs.root} is not a directory (check --root)", file=sys.stderr)
        return EXIT_FAILURE
    if os.path.lexists(args.out) and not args.force:
        print(f"rigtui capture: {args.out} exists; --force replaces it", file=sys.stderr)
        return EXIT_FAILURE
    if os.path.isdir(args.out):
        print(f"rigtui capture: {args.out} is a directory", file=sys.stderr)
        return EXIT_FAILURE
    # written next to OUT and renamed over it when whole: a full disk or a kill leaves the old
    # archive (if any) as it was, and no partial file under OUT's name
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                       f".{os.path.basename(args.out)}.{os.getpid()}.tmp")  # fmt: skip
    try:
        n_files, skipped = capture(fs.root, tmp)
        os.replace(tmp, args.out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        print(f"rigtui capture: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    print(
        f"wrote {args.out}: {n_files} files"
        + (f", {skipped} unreadable skipped" if skipped else "")
    )
    print(f"see it with: tar xzf {args.out} && rigtui probe --root {TOP}")
    return EXIT_OK


def _sanitize(rel: str, data: bytes) -> bytes | None:
    """The copy of a file that may leave the machine (None: leave it out)."""
    from rigtui.probes.parse import SMBIOS_SECRET_STRINGS, blank_smbios_strings, smbios_filter

    if rel == "sys/firmware/dmi/tables/DMI":
        # Keep only memory devices (type 17): the probe reads nothing else from the table.
        return blank_smbios_strings(smbios_filter(data, {17}), SMBIOS_SECRET_STRINGS)
    if rel.startswith("sys/firmware/dmi/entries/"):
        return blank_smbios_strings(data, SMBIOS_SECRET_STRINGS)
    if rel == "run/udev/data/+dmi:id":
        keep = [
            ln
            for ln in data.decode("utf-8", "replace").splitlines()
            if ln.startswith("E:MEMORY_") and not ln.endswith(("SERIAL_NUMBER", "ASSET_TAG"))
            and "_SERIAL_NUMBER=" not in ln and "_ASSET_TAG=" not in ln
        ]  # fmt: skip
        return ("\n".join(keep) + "\n").encode()
    # proc/self is a link: the file arrives here under the capturing process's pid.
    if re.fullmatch(r"proc/(self|\d+)/status", rel):
        keep = [
            ln
            for ln in data.decode("utf-8", "replace").splitlines()
            if ln.startswith(("Cpus_allowed", "Mems_allowed"))
        ]
        return ("\n".join(keep) + "\n").encode()
    if re.fullmatch(r"proc/(self|\d+)/mounts", rel):
        # Only the mounts the probes look at (resctrl, cgroup cpusets, hugetlbfs): the rest
        # names the user's disks and directories.
        keep = [
            ln
            for ln in data.decode("utf-8", "replace").splitlines()
            if len(ln.split()) > 2 and ln.split()[2] in _MOUNT_TYPES
        ]
        return ("\n".join(keep) + "\n").encode()
    return data


class _Writer:
    def __init__(self, root: str, tf) -> None:
        self.root, self.tf = root, tf
        self.done: set[str] = set()
        self.files = 0
        self.skipped = 0
        self.mtime = int(time.time())

    def _abs(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def _resolve_link(self, rel: str) -> str:
        target = os.readlink(self._abs(rel))
        if os.path.isabs(target):
            return os.path.normpath(target.lstrip("/"))
        return os.path.normpath(os.path.join(os.path.dirname(rel), target))

    def add(self, rel: str, depth: int = 0) -> None:
        """Add `rel`, keeping every symlink on its path as a symlink plus its target."""
        import io
        import tarfile

        if rel in self.done or depth > 16 or rel.startswith(".."):
            return
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if os.path.islink(self._abs(prefix)):
                if prefix not in self.done:
                    self.done.add(prefix)
                    info = tarfile.TarInfo(f"{TOP}/{prefix}")
                    info.type, info.linkname = tarfile.SYMTYPE, os.readlink(self._abs(prefix))
                    info.mtime = self.mtime
                    self.tf.addfile(info)
                target = self._resolve_link(prefix)
                rest = "/".join(parts[i:])
                if not rest:  # a link as the leaf (hwmon `device`, PCI `driver`): keep it only
                    self.done.add(rel)
                    return
                self.add(f"{target}/{rest}", depth + 1)
                return
        self.done.add(rel)
        path = self._abs(rel)
        if not os.path.isfile(path) or os.path.basename(rel) in SKIP_NAMES:
            return
        try:
            with open(path, "rb") as f:
                data = f.read(1 << 20)
        except OSError:
            self.skipped += 1  # write-only or EIO sysfs attributes
            return
        clean = _sanitize(rel, data)
        if clean is None:
            return
        info = tarfile.TarInfo(f"{TOP}/{rel}")
        info.size, info.mtime, info.mode = len(clean), self.mtime, 0o444
        self.tf.addfile(info, io.BytesIO(clean))
        self.files += 1


def capture(root: str, out: str) -> tuple[int, int]:
    """Write the archive; returns (files written, unreadable files skipped)."""
    import glob
    import io
    import tarfile  # here, not at the top: `rigtui probe` imports every command module

    with tarfile.open(out, "w:gz") as tf:
        w = _Writer(root, tf)
        for pattern in WHITELIST:
            for rel in sorted(glob.glob(pattern, root_dir=root)):
                w.add(rel)
        for addr in sorted(glob.glob("sys/bus/pci/devices/*", root_dir=root)):
            cls = _read(os.path.join(root, addr, "class"))
            # GPUs/accelerators, and the data-fabric functions k10temp sits on (00:18.3, ...)
            if cls.startswith(("0x03", "0x12")) or addr.endswith(".3"):
                for name in PCI_FILES:
                    if os.path.lexists(os.path.join(root, addr, name)):
                        w.add(f"{addr}/{name}")
        info = (
            f"rigtui capture of {root} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            f"files: {w.files}\n"
        ).encode()
        ti = tarfile.TarInfo(f"{TOP}/CAPTURE-INFO")
        ti.size, ti.mtime = len(info), w.mtime
        tf.addfile(ti, io.BytesIO(info))
    return w.files, w.skipped


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(64).strip()
    except OSError:
        return ""
