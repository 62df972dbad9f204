"""Gathers the live-machine inputs of `rigtui check` that are not in the Topology: memory
pressure (/proc/pressure/memory, via HostFS) and where a model file's page cache sits
(`rigtui.syscalls.pages`, live machine only). Engine facts are passed in by the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rigtui.hostfs import HostFS
from rigtui.model.analysis import CheckContext
from rigtui.syscalls import pages


def parse_psi(text: str | None) -> tuple[float | None, float | None]:
    """`some avg10=0.00 avg60=... \\nfull avg10=...` -> (some avg10, full avg10)."""
    some = full = None
    for line in (text or "").splitlines():
        kind, _, rest = line.partition(" ")
        fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        try:
            val = float(fields["avg10"])
        except (KeyError, ValueError):
            continue
        if kind == "some":
            some = val
        elif kind == "full":
            full = val
    return some, full


def model_page_placement(path: str) -> tuple[dict[int, int] | None, str | None]:
    """(resident bytes per node, None) or (None, why not)."""
    try:
        placement = pages.file_page_placement(path)
    except OSError as exc:
        return None, f"cannot examine {path}: {exc.strerror or exc}"
    return dict(placement.bytes_per_node), None


def profile_nodes(profile: Any) -> tuple[int, ...] | None:
    """The nodes a profile confines its model to (its CPUs' `nodes`, or the nodes its memory is
    bound to), None when it may use every node (or there is no profile)."""
    if profile is None:
        return None
    nodes = set(getattr(profile, "nodes", None) or ())
    if getattr(profile, "memory_policy", None) == "bind":
        nodes |= set(getattr(profile, "memory_nodes", None) or ())
    return tuple(sorted(nodes)) or None


def build_context(
    fs: HostFS,
    *,
    model_path: str | None = None,
    model_source: str | None = None,
    profile_threads: int | None = None,
    profile: Any = None,
    engine_system_info: str | None = None,
    engine_gpu_offload: bool | None = None,
    engine_reason: str | None = None,
    server_build: Mapping[str, Any] | None = None,
    topology: Any = None,
) -> CheckContext:
    """A CheckContext for `fs` (live when its root is "/"); with the live machine's `topology`,
    its cached `rigtui bench mem` result too."""
    live = fs.is_live
    membench = None
    if live and topology is not None:
        from rigtui.analysis.membench_cache import load_cached_membench

        membench = load_cached_membench(topology)
    some, full = parse_psi(fs.read_text("proc/pressure/memory")) if live else (None, None)
    model_bytes = per_node = None
    page_reason: str | None = None
    if model_path:
        try:
            model_bytes = os.path.getsize(model_path)
        except OSError as exc:
            page_reason = f"cannot read {model_path}: {exc.strerror}"
        if live and page_reason is None:
            per_node, page_reason = model_page_placement(model_path)
        elif not live:
            page_reason = "captured tree (--root): page placement is a live figure"
    return CheckContext(
        live=live,
        engine_system_info=engine_system_info,
        engine_gpu_offload=engine_gpu_offload,
        engine_reason=engine_reason,
        server_build=server_build,
        model_path=model_path,
        model_bytes=model_bytes,
        model_source=model_source,
        model_page_bytes_per_node=per_node,
        model_page_reason=page_reason,
        profile_threads=profile_threads,
        profile_nodes=profile_nodes(profile),
        profile_numa=getattr(profile, "numa", None),
        profile_memory_policy=getattr(profile, "memory_policy", None),
        psi_memory_some_avg10=some,
        psi_memory_full_avg10=full,
        is_root=(os.geteuid() == 0) if live else None,
        membench=membench,
    )
