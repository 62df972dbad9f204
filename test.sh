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
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v busybox >/dev/null || need+=(busybox-static)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
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

.venv/bin/ruff check rigtui tests benchmarks
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
