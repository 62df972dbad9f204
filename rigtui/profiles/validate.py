"""Profile TOML -> checked values with their file and line (no machine checks here, see checks.py).

Every problem becomes a `ProfileIssue(file, line, key, message, hint)`; a value that fails its
check is dropped so the rest of the file is still checked (all problems reported at once).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from typing import Any

from rigtui.model.profile import (
    DEMO_PREFIX,
    ENGINES,
    KV_CACHE_TYPES,
    MEMORY_POLICIES,
    NUMA_STRATEGIES,
    PROFILE_KEYS,
    SAMPLING_KEYS,
    SPLIT_MODES,
    ProfileIssue,
    parse_demo_spec,
    parse_listen,
    parse_size,
)
from rigtui.profiles.textutil import key_lines, parse_cpulist, toml_error_line

_CHOICES = {
    "engine": ENGINES,
    "numa": NUMA_STRATEGIES,
    "memory_policy": MEMORY_POLICIES,
    "split_mode": SPLIT_MODES,
    "cache_type_k": KV_CACHE_TYPES,
    "cache_type_v": KV_CACHE_TYPES,
}
# key -> (minimum, maximum or None, hint when out of range)
_RANGES: dict[str, tuple[float, float | None, str]] = {
    "threads": (1, 4096, "use at least 1 thread; usually one per physical core of the nodes used"),
    "batch_threads": (1, 4096, "use at least 1 thread"),
    "ctx": (0, 1 << 24, "0 means the model's training context; otherwise tokens, e.g. 4096"),
    "batch": (1, 1 << 20, "llama.cpp's default is 2048; 512 is common"),
    "ubatch": (1, 1 << 20, "llama.cpp's default is 512"),
    "gpu_layers": (-1, 100000, "-1 offloads every layer, 0 keeps all on the CPU"),
    "main_gpu": (0, 1024, "the index of a GPU as CUDA numbers them (0 = first)"),
    "seed": (-1, 2**32 - 1, "-1 picks a random seed"),
    "n_cpu_moe": (0, 100000, "the number of leading layers whose experts stay in RAM"),
    "sampling.temperature": (0.0, 100.0, "0 is greedy; 0.7-1.0 is usual"),
    "sampling.top_k": (0, 1 << 20, "0 disables top-k"),
    "sampling.top_p": (0.0, 1.0, "between 0 and 1 (1 disables it)"),
    "sampling.min_p": (0.0, 1.0, "between 0 and 1 (0 disables it)"),
    "sampling.repeat_penalty": (0.0, 100.0, "1.0 disables it"),
    "sampling.max_tokens": (1, 1 << 24, "tokens to generate per prompt"),
}


@dataclass(frozen=True)
class Located:
    value: Any
    file: str
    line: int | None


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list", dict: "a table"}  # fmt: skip


def _type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


# llama.cpp / llama-cpp-python spellings people carry over from their command lines.
_ALIASES = {"n_ctx": "ctx", "c": "ctx", "n_threads": "threads", "t": "threads",
            "n_threads_batch": "batch_threads", "n_batch": "batch", "n_ubatch": "ubatch",
            "ngl": "gpu_layers", "n_gpu_layers": "gpu_layers", "model_path": "model",
            "temp": "temperature", "n_predict": "max_tokens", "max_tokens": "max_tokens",
            "cpunodebind": "nodes", "membind": "memory_nodes", "interleave": "memory_policy",
            "use_mmap": "mmap", "use_mlock": "mlock", "type_k": "cache_type_k",
            "type_v": "cache_type_v", "ctk": "cache_type_k", "ctv": "cache_type_v",
            "fa": "flash_attn", "sm": "split_mode", "mg": "main_gpu", "ts": "tensor_split"}  # fmt: skip


def _suggest(key: str, known: list[str]) -> str | None:
    alias = _ALIASES.get(key.lower().lstrip("-").replace("-", "_"))
    if alias in known:
        return f"did you mean `{alias}`?"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _type_hint(key: str, expected: Any, value: Any) -> str | None:
    """How to write the value, for a wrong TOML type (a quoted number is the usual slip)."""
    name = key.rsplit(".", 1)[-1]
    if isinstance(value, str) and expected in (int, float):
        return f"write a number without quotes, e.g. {name} = 4096" if expected is int else \
            f"write a number without quotes, e.g. {name} = 0.8"  # fmt: skip
    if expected is bool:
        return f"write {name} = true or {name} = false (lower case, no quotes)"
    if expected is str:
        return f'quote it: {name} = "{value}"'
    if expected is list and isinstance(value, (int, float)):
        return f"write a list in brackets: {name} = [{value}]"
    return "see the commented example profiles (`rigtui profiles show demo`)"


def _int_list(value: list[Any]) -> str | None:
    if not value:
        return "is an empty list"
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "must list integer node ids, e.g. [0, 1]"
    if any(v < 0 for v in value):
        return "has a negative node id"
    return None


DEMO_MAX = "16G"  # the largest synthetic model: generated on disk, then loaded into RAM


def check_value(key: str, value: Any) -> tuple[str, str | None] | None:
    """(message, hint) when `value` is wrong for the profile key `key` (dotted), else None: the
    profile's own rules, for command-line overrides (`rigtui run --temperature`)."""
    return _check_value(key, value)


def _check_value(key: str, value: Any) -> tuple[str, str | None] | None:
    """(message, hint) when `value` is wrong for `key`, else None."""
    if key in _CHOICES and value not in _CHOICES[key]:
        choices = _CHOICES[key]
        return f"{value!r} is not one of {', '.join(choices)}", _suggest(str(value), list(choices))
    if key in _RANGES:
        lo, hi, hint = _RANGES[key]
        if not value >= lo or (hi is not None and not value <= hi):  # nan fails both
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            return f"{value} is out of range (must be {bound})", hint
    if key == "cpus":
        try:
            parse_cpulist(value)
        except ValueError as exc:
            return f"bad CPU list: {exc}", 'write CPU ids and ranges, e.g. "0-47,96-143"'
    if key in ("nodes", "memory_nodes"):
        problem = _int_list(value)
        if problem:
            return f"{key} {problem}", "list NUMA node ids as `numactl -H` shows them, e.g. [0, 1]"
    if key == "tensor_split":
        ok = value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value
        )
        if not ok or sum(value) <= 0:
            return "must be non-negative numbers, one per GPU", "e.g. [3, 1] puts 3/4 on GPU 0"
    if key == "listen":
        try:
            parse_listen(value)
        except ValueError as exc:
            return str(exc), 'e.g. listen = "127.0.0.1:8080"'
    if key == "api_key_env" and (not value or not value.replace("_", "").isalnum()):
        return (f"{value!r} is not an environment variable name",
                'name the variable that holds the key, e.g. api_key_env = "RIGTUI_API_KEY"')
    if key == "model":
        if not value.strip():
            return "is empty", 'give the path of a .gguf file, or "demo:300M"'
        if value.startswith(DEMO_PREFIX):
            try:
                size, experts = parse_demo_spec(value)
                if parse_size(size) < 1_000_000:
                    return "demo model size is below 1M", 'use e.g. "demo:8M" or "demo:300M"'
                if parse_size(size) > parse_size(DEMO_MAX):
                    return (f"demo model of {size}: the synthetic model goes up to {DEMO_MAX} (it "
                            "is written to ~/.cache/rigtui and loaded whole)",
                            'use e.g. "demo:1G"; for a real size, point model at a GGUF file')  # fmt: skip
            except ValueError as exc:
                return str(exc), 'use e.g. "demo:300M", "demo:1G", or "demo:8M-moe4" (MoE)'
            if experts and not 2 <= experts <= 64:
                return (f"demo model with {experts} experts", "use 2 to 64 experts, e.g. "
                        '"demo:8M-moe4"')  # fmt: skip
    if key in ("override_tensors", "rpc", "extra_args"):
        problem = _server_list_problem(key, value)
        if problem:
            return problem
    if key == "binary" and not value.strip():
        return "is empty", 'give the llama-server executable, e.g. binary = "~/llama.cpp/build/bin/llama-server"'
    if (
        key == "cuda_visible_devices"
        and not all(p.strip() for p in value.split(","))
        and value != ""
    ):
        return "has an empty entry", 'a comma list of GPU indices or UUIDs, e.g. "0,1"'
    return None


def override_problem(entry: str) -> str | None:
    """Why one `-ot` entry "PATTERN=BUFFER_TYPE" is wrong (llama.cpp compiles the pattern as
    an ECMAScript std::regex and searches tensor names with it), else None."""
    import re

    pattern, sep, buft = entry.rpartition("=")
    if not sep or not pattern:
        return f"{entry!r} is not PATTERN=BUFFER_TYPE"
    if not buft.strip():
        return f"{entry!r} names no buffer type after '='"
    try:
        re.compile(pattern)  # Python's syntax is close to ECMAScript's for these patterns
    except re.error as exc:
        return f"pattern {pattern!r} does not compile: {exc}"
    return None


def _server_list_problem(key: str, value: list[Any]) -> tuple[str, str | None] | None:
    if not all(isinstance(v, str) and v for v in value):
        return f"{key} must list non-empty strings", 'e.g. ["exps=CPU"]'
    if key == "override_tensors":
        for entry in value:
            problem = override_problem(entry)
            if problem:
                return problem, ('write "PATTERN=BUFFER_TYPE", e.g. "exps=CPU" or '
                                 '"blk\\.1[0-9]\\.=CUDA0" (`llama-server --list-devices`)')  # fmt: skip
    if key == "rpc":
        for entry in value:
            host, sep, port = entry.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                return (f"{entry!r} is not HOST:PORT",
                        'list rpc-servers as "HOST:PORT", e.g. ["127.0.0.1:50052"]')  # fmt: skip
    if key == "extra_args" and any("\0" in v for v in value):
        return "an argument holds a NUL character", None
    return None


def read_profile_text(text: str, file: str) -> tuple[dict[str, Located], list[ProfileIssue]]:
    """Checked values keyed by dotted key ("ctx", "sampling.top_k", "env.OMP_WAIT_POLICY")."""
    issues: list[ProfileIssue] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        issues.append(ProfileIssue(file, toml_error_line(str(exc)), None,
                                   f"not valid TOML: {exc}", "see https://toml.io for the syntax"))  # fmt: skip
        return {}, issues
    lines = key_lines(text)
    out: dict[str, Located] = {}

    def bad(key: str, message: str, hint: str | None) -> None:
        issues.append(ProfileIssue(file, lines.get(key), key, message, hint))

    for key, value in data.items():
        expected = PROFILE_KEYS.get(key)
        if expected is None:
            hint = (
                _suggest(key, list(PROFILE_KEYS))
                or "see the commented example profiles (`rigtui profiles show demo`)"
            )
            bad(key, f"unknown key `{key}`", hint)
            continue
        if not _type_ok(value, expected):
            bad(key, f"must be {_TYPE_NAMES[expected]}, got {type(value).__name__} {value!r}",
                _type_hint(key, expected, value))  # fmt: skip
            continue
        if key == "sampling":
            for sub, sv in value.items():
                dotted = f"sampling.{sub}"
                sexp = SAMPLING_KEYS.get(sub)
                if sexp is None:
                    bad(dotted, f"unknown sampling key `{sub}`", _suggest(sub, list(SAMPLING_KEYS)))
                elif not _type_ok(sv, sexp):
                    bad(
                        dotted,
                        f"must be {_TYPE_NAMES[sexp]}, got {sv!r}",
                        _type_hint(dotted, sexp, sv),
                    )
                elif (problem := _check_value(dotted, sv)) is not None:
                    bad(dotted, *problem)
                else:
                    out[dotted] = Located(sv, file, lines.get(dotted))
            continue
        if key == "env":
            for name, ev in value.items():
                dotted = f"env.{name}"
                if not isinstance(ev, str):
                    bad(
                        dotted,
                        f"environment values are strings, got {ev!r}",
                        f'write {name} = "{ev}"',
                    )
                elif not name or "=" in name or "\0" in name or "\0" in ev:
                    # the OS refuses these at launch (execve cannot pass them)
                    bad(dotted, f"environment variable {name!r} = {ev!r} cannot be passed to a "
                        "process", "names are non-empty without '=', and no NUL characters")  # fmt: skip
                else:
                    out[dotted] = Located(ev, file, lines.get(dotted))
            continue
        problem = _check_value(key, value)
        if problem is not None:
            bad(key, *problem)
            continue
        if key == "model" and not value.startswith(DEMO_PREFIX):
            value = os.path.expandvars(os.path.expanduser(value))
            if not os.path.isabs(value):  # relative to the profile's own directory
                value = os.path.normpath(
                    os.path.join(os.path.dirname(os.path.abspath(file)), value)
                )
        out[key] = Located(value, file, lines.get(key))
    return out, issues
