#!/usr/bin/env bash
# rigtui's test command (the README's and CI's): installs everything into .venv, then runs
# ruff, the import-layering contracts and the test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

# Real tools some tests drive: tmux for the TUI, numactl to cross-check placement, and for the
# multi-node guest (tests/vm, marker `vm`) QEMU, busybox and a Debian kernel in /boot.
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v numactl >/dev/null || need+=(numactl)
# a real Prometheus (and promtool) scrapes `rigtui exporter` in tests/test_exporter.py
command -v prometheus >/dev/null || need+=(prometheus)
# headless Chromium opens `rigtui web` in tests/test_web_browser.py
command -v chromium >/dev/null || need+=(chromium)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v busybox >/dev/null || need+=(busybox-static)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
# llama.cpp's llama-server / rpc-server are built from source (rigtui engines build)
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") \
            >/dev/null 2>&1 || echo "test.sh: could not install ${need[*]}; those tests will skip" >&2
    else
        echo "test.sh: not root: ${need[*]} missing; the tests that need them will skip" >&2
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# llama-cpp-python builds from source the first time (~4 min on 2 cores); pip caches the wheel.
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    .venv/bin/python -m pip install -q -e '.[test]'

# llama-server and rpc-server for the llama-server backend's tests: compiled once from the
# llama.cpp inside llama-cpp-python's sdist into ~/.cache/rigtui/engines (~30 min on 2 cores
# the first time, seconds after that). A failure is reported and those tests then fail.
.venv/bin/rigtui engines build || echo "test.sh: rigtui engines build failed (see above)" >&2

.venv/bin/ruff check rigtui tests benchmarks
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
