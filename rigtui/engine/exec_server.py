"""The llama-server child: `python -m rigtui.engine.exec_server --events-fd N`.

Reads the launch config (one JSON line on stdin, as the worker does), pins the CPUs and sets
the NUMA memory policy (the worker's `apply_policy`), then `exec`s llama-server with the argv
the parent built. The process keeps its pid, its affinity and its memory policy across execve
(sched_setaffinity(2), set_mempolicy(2): both are inherited and kept), so every thread
llama-server starts and every page it faults in get them, with no numactl wrapper.

The events fd is closed by the exec (marked non-inheritable first): the parent reads our
`policy` event, sees the end of the stream, and from then on watches llama-server through its
HTTP endpoint and /proc. A binary that cannot be executed becomes an `error` event and exit 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rigtui.model.engine import Error

EXIT_BAD_CONFIG = 2
EXIT_EXEC_FAILED = 3


def main(argv: list[str] | None = None) -> int:
    from rigtui.engine.worker import Emitter, apply_policy

    ap = argparse.ArgumentParser(prog="python -m rigtui.engine.exec_server")
    ap.add_argument("--events-fd", type=int, required=True)
    ap.add_argument("--instance", default="engine")
    args = ap.parse_args(argv)
    from rigtui.syscalls.process import die_with_parent

    if not die_with_parent():  # kept across the exec: llama-server goes with rigtui, however
        return EXIT_BAD_CONFIG  # rigtui ends (SIGKILL, stopped llama-server included)
    emit = Emitter(args.events_fd, args.instance)
    try:
        cfg = json.loads(sys.stdin.readline())
        server_argv = [str(a) for a in cfg["argv"]]
        cfg["plan"]["threads"]  # noqa: B018 - shape check
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        emit(Error, message=f"bad launch config on stdin: {exc}", kind="bad-request", hint=None)
        return EXIT_BAD_CONFIG
    apply_policy(cfg, emit)
    env = dict(os.environ)
    key_env = cfg.get("api_key_env")
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            emit(Error, message=f"api_key_env = {key_env!r}, but the environment variable {key_env} "
                 "is empty or not set", kind="serve", hint=f"export {key_env}=... before launching")  # fmt: skip
            return EXIT_BAD_CONFIG
        env["LLAMA_API_KEY"] = key  # llama-server's --api-key, kept out of the argv
    # llama-server reads nothing on stdin; the parent's later writes must not block on it
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.set_inheritable(args.events_fd, False)  # closed by the exec: the parent sees the stream end
    try:
        os.execve(server_argv[0], server_argv, env)
    except OSError as exc:
        emit(Error, message=f"cannot run {server_argv[0]}: {exc.strerror or exc}", kind="load",
             hint="point the profile's binary at llama.cpp's build/bin/llama-server, or run "
             "`rigtui engines build`")  # fmt: skip
        return EXIT_EXEC_FAILED
    return EXIT_EXEC_FAILED  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
