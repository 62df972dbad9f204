"""llama.cpp's own sizing of a model: `llama-fit-params`, the tool behind llama-server's `--fit`.

It loads the model and a context without allocating (no weights read) and either prints what
each device would hold (`--fit-print on`: one line per device and one for the host, "NAME
model context compute" in MiB, from common/fit.cpp `common_fit_print`) or fits the arguments
left unset to the free device memory and prints them (`-c N -ngl N [-ts A,B] [-ot "p=B,..."]`,
tools/fit-params). `rigtui plan` shows both beside its own figures, so a user sees where
rigtui's estimate and llama.cpp's disagree (new architectures, compute buffers, padding).

Runs the binary as a child with an argv (no shell), a timeout, and never raises.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from rigtui.model.analysis import LlamaFit, LlamaFitDevice

MiB = 1 << 20
_DEVICE_LINE = re.compile(r"^(\S+) (\d+) (\d+) (\d+)\s*$")
_FITTED = re.compile(r"^-c \d+ -ngl -?\d+")


def fit_argv(binary: str, model: str, *, ctx: int, n_gpu_layers: int | None = None,
             override_tensors: Sequence[str] = (), n_cpu_moe: int | None = None,
             cache_type_k: str = "f16", cache_type_v: str = "f16", ubatch: int = 512,
             flash_attn: bool | None = None, print_memory: bool = True) -> list[str]:  # fmt: skip
    """The llama-fit-params command line. `print_memory`: what each device holds for these
    arguments; else let it fit `n_gpu_layers` (None: unset, so llama.cpp chooses)."""
    argv = [binary, "--model", model, "--ctx-size", str(ctx), "--ubatch-size", str(ubatch),
            "--cache-type-k", cache_type_k, "--cache-type-v", cache_type_v]  # fmt: skip
    if flash_attn is not None:
        argv += ["--flash-attn", "on" if flash_attn else "off"]
    if n_gpu_layers is not None:
        argv += ["--n-gpu-layers", "all" if n_gpu_layers < 0 else str(n_gpu_layers)]
    for entry in override_tensors:
        argv += ["--override-tensor", entry]
    if n_cpu_moe:
        argv += ["--n-cpu-moe", str(n_cpu_moe)]
    if print_memory:
        argv += ["--fit-print", "on"]
    return argv


def parse_fit_print(stdout: str) -> tuple[LlamaFitDevice, ...]:
    """The device lines of `--fit-print on` ("CUDA0 20480 1024 512", "Host 300 0 24")."""
    out = []
    for line in stdout.splitlines():
        m = _DEVICE_LINE.match(line.strip())
        if m:
            name, model, ctx, compute = m.group(1), *(int(g) * MiB for g in m.groups()[1:])
            out.append(LlamaFitDevice(name, model, ctx, compute))
    return tuple(out)


def parse_fitted(stdout: str) -> str | None:
    """The fitted arguments line (`-c 4096 -ngl 99 -ot "blk\\.1[0-9]\\.ffn=CPU"`), or None."""
    return next((ln.strip() for ln in stdout.splitlines() if _FITTED.match(ln.strip())), None)


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, errors="replace")  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, "", f"no answer in {timeout:g} s"
    except OSError as exc:
        return None, "", str(exc)
    return p.returncode, p.stdout, p.stderr


_ERROR_LINE = re.compile(r"^[\d.]+ E (.+)$")  # llama.cpp's log: "0.00.006.511 E message"


def _tail(stderr: str) -> str:
    """The last error llama.cpp logged, else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [m.group(1) for ln in lines if (m := _ERROR_LINE.match(ln))]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def llama_fit(binary: str, model: str, *, ctx: int, n_gpu_layers: int,
              override_tensors: Sequence[str] = (), n_cpu_moe: int | None = None,
              cache_type_k: str = "f16", cache_type_v: str = "f16", ubatch: int = 512,
              flash_attn: bool | None = None, fit_gpu: bool = False,
              timeout: float = 60.0) -> LlamaFit:  # fmt: skip
    """llama.cpp's memory per device for these arguments and, with `fit_gpu` (a machine with
    GPUs), the arguments its own fit would choose with n_gpu_layers left to it."""
    common = dict(ctx=ctx, override_tensors=override_tensors, n_cpu_moe=n_cpu_moe,
                  cache_type_k=cache_type_k, cache_type_v=cache_type_v, ubatch=ubatch,
                  flash_attn=flash_attn)  # fmt: skip
    rc, out, err = _run(fit_argv(binary, model, n_gpu_layers=n_gpu_layers, **common), timeout)
    devices = parse_fit_print(out) if rc == 0 else ()
    if not devices:
        why = f"exit {rc}: {_tail(err)}" if rc is not None else _tail(err)
        return LlamaFit(binary, (), None, f"llama-fit-params gave no estimate ({why})")
    fitted = None
    fit_reason = None
    if fit_gpu:
        rc, out, err = _run(fit_argv(binary, model, print_memory=False, **common), timeout)
        fitted = parse_fitted(out) if rc == 0 else None
        if fitted is None:
            fit_reason = f"its fit found none ({_tail(err)})"
    return LlamaFit(binary, devices, fitted, None, fit_reason)
