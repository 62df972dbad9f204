"""Where a process runs and where its pages sit: /proc/PID/status and /proc/PID/numa_maps.

Shell equivalent: `grep -E 'Cpus_allowed_list|Mems_allowed_list' /proc/PID/status`,
`grep Cpus_allowed_list /proc/PID/task/*/status` (per thread: llama.cpp's numa = distribute /
isolate re-pin their threads) and `numastat -p PID` (numa_maps counts pages per node, `N0=1234`,
for each mapping).
"""

from __future__ import annotations

import os

from rigtui.model.procfs import model_mapping, parse_numa_maps, parse_status_lists


def model_pages(numa_maps: bytes, model_path: str | None) -> tuple[dict[int, int], dict[int, int]]:
    """(bytes per node of the model's mapping, bytes per node of anonymous memory) from a
    numa_maps text (the one parser: rigtui.model.procfs)."""
    maps = parse_numa_maps(numa_maps)
    model = model_mapping(maps, model_path) if model_path else None
    return (dict(maps.file_bytes.get(model, {})) if model else {}), maps.anon_bytes


def thread_cpus(pid: int | str = "self") -> tuple[int, ...]:
    """Union of Cpus_allowed_list over the threads of `pid` other than the main one (() if
    /proc/PID/task is unreadable). The main thread is left out when there are others: llama.cpp
    pins its compute threads (numa = distribute/isolate/numactl) but widens the main thread to
    every CPU after each graph ("don't leave affinity set on the main thread")."""
    union: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ()
    main = str(os.getpid() if pid == "self" else pid)
    if len(tids) > 1:
        tids = [t for t in tids if t != main]
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                union.update(parse_status_lists(f.read())[0])
        except OSError:  # the thread ended meanwhile
            continue
    return tuple(sorted(union))


def read_process_placement(pid: int | str = "self", model_path: str | None = None
                           ) -> dict[str, object]:  # fmt: skip
    """Placement facts of a live process, as plain values (the worker sends them as an event)."""
    out: dict[str, object] = {"cpus_allowed": (), "mems_allowed": (), "file": {}, "anon": {},
                              "thread_cpus": ()}  # fmt: skip
    try:
        with open(f"/proc/{pid}/status") as f:
            out["cpus_allowed"], out["mems_allowed"] = parse_status_lists(f.read())
    except OSError:
        pass
    out["thread_cpus"] = thread_cpus(pid)
    try:  # read as bytes: mapped file names need not be UTF-8
        with open(f"/proc/{pid}/numa_maps", "rb") as f:
            out["file"], out["anon"] = model_pages(f.read(), model_path)
    except OSError:
        pass  # kernels without CONFIG_NUMA have no numa_maps
    return out


def placement_fields(pid: int | str, model_path: str, plan: dict[str, object], mmap: bool = True
                     ) -> dict[str, object]:  # fmt: skip
    """The fields of a `Placement` event for a live engine process (the worker's own, or a
    llama-server's): where it runs, where the model's pages are, and what did not hold."""
    from rigtui.engine.placement_check import fs_type_of, placement_warnings

    p = read_process_placement(pid, model_path)
    try:
        with open(f"/proc/{pid}/mounts") as f:
            fs_type = fs_type_of(os.path.realpath(model_path), f.read())
    except OSError:
        fs_type = None
    warnings = placement_warnings(
        policy=str(plan.get("memory_policy") or "default"),
        policy_nodes=tuple(plan.get("memory_nodes") or ()),  # type: ignore[arg-type]
        # mmap = false: the weights are the engine's own (anonymous) memory
        file_bytes_per_node=p["file"] if mmap else p["anon"],  # type: ignore[arg-type]
        fs_type=fs_type, mmap=mmap,
        # the main thread too: ggml's NUMA mode widens whichever thread ran a graph
        cpus_asked=plan.get("cpus"),  # type: ignore[arg-type]
        thread_cpus=sorted({*p["thread_cpus"], *p["cpus_allowed"]}),  # type: ignore[misc]
    )  # fmt: skip
    cached = None
    if mmap:
        from rigtui.syscalls.pages import file_cached_bytes

        try:
            cached = file_cached_bytes(model_path)
        except OSError:
            cached = None
    return {"pid": int(pid) if str(pid).isdigit() else os.getpid(),
            "cpus_allowed": p["cpus_allowed"], "mems_allowed": p["mems_allowed"],
            "model_file_bytes_per_node": p["file"], "anon_bytes_per_node": p["anon"],
            "model_path": model_path, "thread_cpus_allowed": p["thread_cpus"],
            "warnings": warnings, "fs_type": fs_type, "model_cached_bytes": cached}  # fmt: skip
