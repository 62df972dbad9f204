"""`rigtui engines build`: compile llama.cpp's llama-server and rpc-server from the llama.cpp
source vendored in llama-cpp-python's sdist (the same llama.cpp the embedded engine runs), into
the user cache dir. Resumable: a second run reuses the source and the build tree, so an
interrupted build continues and a finished one costs a few seconds.

    pip download --no-binary :all: --no-deps llama-cpp-python==VERSION
    tar x .../vendor/llama.cpp                       -> engines/llama.cpp-VERSION[-native]/src
    cmake -S src -B build -DGGML_RPC=ON ...           (variant flags below)
    cmake --build build --target llama-server rpc-server llama-fit-params -j N
    build/bin/{llama-server,rpc-server,llama-fit-params} -> bin/, and rigtui-build.json

llama-fit-params (llama.cpp's own memory estimate per device and fitted -ngl/-ot, which
`rigtui plan` shows beside its own) is built where the source has it (tools/fit-params).

Variants: "portable" (AVX2/FMA/F16C, no -march=native: what llama-cpp-python's generic wheel
runs, so the two engines compare like for like, and what runs in the test guest) and "native"
(GGML_NATIVE: AVX-512, AMX... whatever this CPU has; the fastest on the machine it was built on).
GPU backends: `cuda=True` adds GGML_CUDA (needs nvcc).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rigtui.engine.demo_model import cache_dir
from rigtui.engine.llama_server import LLAMA_CPP_PYTHON_VERSION, RPC_NAME, SERVER_NAME

FIT_NAME = "llama-fit-params"

VARIANTS = ("portable", "native")
_COMMON_FLAGS = {
    "CMAKE_BUILD_TYPE": "Release", "BUILD_SHARED_LIBS": "OFF", "GGML_RPC": "ON",
    "LLAMA_CURL": "OFF", "LLAMA_OPENSSL": "OFF", "LLAMA_BUILD_TESTS": "OFF",
    "LLAMA_BUILD_EXAMPLES": "OFF", "LLAMA_BUILD_UI": "OFF", "LLAMA_USE_PREBUILT_UI": "OFF",
    "LLAMA_BUILD_APP": "OFF", "GGML_CCACHE": "OFF",
}  # fmt: skip
_VARIANT_FLAGS = {
    "portable": {"GGML_NATIVE": "OFF", "GGML_AVX": "ON", "GGML_AVX2": "ON", "GGML_FMA": "ON",
                 "GGML_F16C": "ON", "GGML_BMI2": "ON"},
    "native": {"GGML_NATIVE": "ON"},
}  # fmt: skip
_PERCENT = re.compile(r"^\[\s*(\d+)%\]")
Progress = Callable[[str, float | None], None]  # (what, fraction 0..1 or None)


class BuildError(RuntimeError):
    """A step failed; the message says which, with the tail of its output."""


def variant_dir(variant: str = "portable", version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    suffix = "" if variant == "portable" else f"-{variant}"
    return cache_dir() / "engines" / f"llama.cpp-{version}{suffix}"


def cmake_flags(variant: str = "portable", cuda: bool = False) -> dict[str, str]:
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: use one of {', '.join(VARIANTS)}")
    flags = {**_COMMON_FLAGS, **_VARIANT_FLAGS[variant]}
    if cuda:
        flags["GGML_CUDA"] = "ON"
    return flags


def missing_tools(cuda: bool = False) -> list[str]:
    """Build tools not on PATH (cmake, a C/C++ compiler; nvcc for CUDA)."""
    need = ["cmake", "make"] + [next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), "c++")]
    if cuda:
        need.append("nvcc")
    return [t for t in need if not shutil.which(t)]


def _run(argv: list[str], log: Path, progress: Progress | None, what: str,
         cwd: Path | None = None) -> None:  # fmt: skip
    """Run a step, its output appended to `log`; cmake's "[ 42%]" lines drive `progress`."""
    tail: list[str] = []
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd, text=True, errors="replace")  # fmt: skip
        except OSError as exc:
            raise BuildError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            tail = (tail + [line.rstrip()])[-15:]
            m = _PERCENT.match(line)
            if progress and m:
                progress(f"{what}: {line[m.end():].strip()[:100]}", int(m.group(1)) / 100)
        code = proc.wait()
    if code != 0:
        raise BuildError(f"{what} failed (exit {code}); the last lines of {log}:\n  "
                         + "\n  ".join(tail))  # fmt: skip


def fetch_source(dest: Path, version: str, log: Path, progress: Progress | None) -> None:
    """llama.cpp's source from llama-cpp-python's sdist (PyPI) into `dest`."""
    with tempfile.TemporaryDirectory(prefix="rigtui-sdist-") as tmp:
        if progress:
            progress(f"downloading llama-cpp-python {version} source (sdist, ~75 MB)", None)
        _run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
              f"llama-cpp-python=={version}", "-d", tmp], log, None,
             "pip download")  # fmt: skip
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if not sdists:
            raise BuildError(f"pip download left no llama_cpp_python sdist in {tmp}")
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        if progress:
            progress("unpacking vendor/llama.cpp", None)
        with tarfile.open(sdists[0]) as tar:
            members = []
            for m in tar.getmembers():
                if m.name.startswith(prefix) and len(m.name) > len(prefix):
                    m.name = m.name[len(prefix):]
                    members.append(m)
            if not members:
                raise BuildError(f"{sdists[0].name} holds no vendor/llama.cpp")
            tar.extractall(staging, members=members, filter="data")
        os.replace(staging, dest)


def build(variant: str = "portable", *, cuda: bool = False, jobs: int | None = None,
          version: str = LLAMA_CPP_PYTHON_VERSION, progress: Progress | None = None) -> Path:  # fmt: skip
    """Build (or finish building) llama-server and rpc-server; returns the bin/ directory."""
    flags = cmake_flags(variant, cuda)
    missing = missing_tools(cuda)
    if missing:
        raise BuildError(f"missing build tools: {', '.join(missing)} (Debian/Ubuntu: apt install "
                         "cmake build-essential" + ("; CUDA: the CUDA toolkit" if cuda else "") + ")")  # fmt: skip
    root = variant_dir(variant, version)
    root.mkdir(parents=True, exist_ok=True)
    src, tree, bin_dir = root / "src", root / "build", root / "bin"
    log = root / "build.log"
    manifest = root / "rigtui-build.json"
    t0 = time.monotonic()
    if not (src / "CMakeLists.txt").is_file():
        fetch_source(src, version, log, progress)
    if _configured_flags(tree) != flags:
        if progress:
            progress("cmake configure", None)
        _run(["cmake", "-S", str(src), "-B", str(tree)] + [f"-D{k}={v}" for k, v in flags.items()],
             log, None, "cmake configure")  # fmt: skip
        (tree / "rigtui-flags.json").write_text(json.dumps(flags, sort_keys=True))
    jobs = jobs or max(1, len(os.sched_getaffinity(0)))
    rpc_target = rpc_target_name(src)
    targets = [(SERVER_NAME, SERVER_NAME), (RPC_NAME, rpc_target)]
    if (src / "tools" / "fit-params" / "CMakeLists.txt").is_file():
        targets.append((FIT_NAME, FIT_NAME))
    _run(["cmake", "--build", str(tree), "--target", *(t for _, t in targets), "-j", str(jobs)],
         log, progress, "compile")  # fmt: skip
    bin_dir.mkdir(exist_ok=True)
    for name, target in targets:
        built = tree / "bin" / target
        if not built.is_file():
            raise BuildError(f"the build finished but left no {built}")
        tmp = bin_dir / f".{name}.tmp"
        shutil.copy2(built, tmp)
        os.replace(tmp, bin_dir / name)
    manifest.write_text(json.dumps({"llama_cpp_python": version, "variant": variant,
                                    "cmake_flags": flags, "built_at": time.time(),
                                    "build_s": round(time.monotonic() - t0, 1)}, indent=2) + "\n")  # fmt: skip
    if progress:
        progress(f"built {bin_dir / SERVER_NAME} and {RPC_NAME}", 1.0)
    return bin_dir


def rpc_target_name(src: Path) -> str:
    """llama.cpp renamed its rpc-server target to ggml-rpc-server (tools/rpc/CMakeLists.txt);
    rigtui installs it as rpc-server either way."""
    try:
        text = (src / "tools" / "rpc" / "CMakeLists.txt").read_text()
    except OSError:
        return RPC_NAME
    return "ggml-rpc-server" if "ggml-rpc-server" in text else RPC_NAME


def _configured_flags(tree: Path) -> dict[str, str] | None:
    try:
        if not (tree / "CMakeCache.txt").is_file():
            return None
        return json.loads((tree / "rigtui-flags.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def built_binary(name: str = SERVER_NAME, version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """rigtui's own build of `name`: the native variant if built, else the portable one."""
    for variant in ("native", "portable"):
        path = variant_dir(variant, version) / "bin" / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None
