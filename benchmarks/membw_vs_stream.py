"""`rigtui bench mem`'s kernel against a STREAM-style C loop (cc -O3 -fopenmp), in one run.

Both move the same working set with the same number of threads (one per physical core of the
machine, all nodes); both keep the best of N repetitions and count bytes the STREAM way (read:
8 B per element, triad: 24 B). The ratio rigtui / STREAM is the figure quoted in docs/analysis.md.

    .venv/bin/python benchmarks/membw_vs_stream.py [--mib-per-thread 256] [--reps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STREAM_C = r"""
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
static void *big(size_t bytes, int huge) {  /* malloc's large-block path, THP on request */
    void *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}
int main(int argc, char **argv) {
    size_t n = strtoull(argv[1], 0, 10);   /* elements per array */
    int reps = atoi(argv[2]), huge = atoi(argv[3]);
    double *a = big(n * 8, huge), *b = big(n * 8, huge), *c = big(n * 8, huge);
    uint64_t *w = big(3 * n * 8, huge);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.5; }
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < 3 * n; i++) w[i] = i;
    double best_read = 1e30, best_triad = 1e30; uint64_t sink = 0;
    for (int r = 0; r <= reps; r++) {
        double t = omp_get_wtime(); uint64_t s = 0;
        #pragma omp parallel for schedule(static) reduction(+:s)
        for (size_t i = 0; i < 3 * n; i++) s += w[i];
        t = omp_get_wtime() - t; sink += s;
        if (r && t < best_read) best_read = t;
        t = omp_get_wtime();
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        t = omp_get_wtime() - t;
        if (r && t < best_triad) best_triad = t;
    }
    printf("%f %f %llu\n", 24.0 * n / best_read / 1e9, 24.0 * n / best_triad / 1e9,
           (unsigned long long)(sink & 1));
    return 0;
}
"""


def stream(
    n_total: int, reps: int, threads: int, cpus: list[int], huge: bool
) -> tuple[float, float]:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("no C compiler")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp, "stream.c"), Path(tmp, "stream")
        src.write_text(STREAM_C)
        subprocess.run(
            [cc, "-O3", "-march=native", "-fopenmp", "-o", str(exe), str(src)], check=True
        )
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(threads),
            OMP_PROC_BIND="close",
            OMP_PLACES="{" + "},{".join(map(str, cpus)) + "}",
        )
        out = subprocess.run(
            [str(exe), str(n_total), str(reps), str(int(huge))],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib-per-thread", type=int, default=256)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternate rigtui/STREAM this often")
    ap.add_argument("--threads", type=int, help="threads (default: one per physical core)")
    ap.add_argument("--small-pages", action="store_true", help="4 KiB pages for both sides")
    args = ap.parse_args()

    from rigtui.analysis.membench import run_membench
    from rigtui.analysis.membw_kernel import NumpyKernel, load_kernel
    from rigtui.hostfs import HostFS
    from rigtui.probes import detect

    top = detect(HostFS("/"))
    cpus = [c for c in top.first_thread_per_core() if c in os.sched_getaffinity(0)]
    cpus = cpus[: args.threads] if args.threads else cpus
    threads = len(cpus)
    per_thread = args.mib_per_thread << 20
    n_per_thread = per_thread // 24
    print(
        f"{top.cpu.model_name}; {threads} threads (one per physical core, first ones), "
        f"{args.mib_per_thread} MiB per thread, best of {args.reps}, "
        f"{'4 KiB' if args.small_pages else '2 MiB (THP)'} pages"
    )
    kernels = {"rigtui C kernel": load_kernel("c"), "rigtui numpy kernel": NumpyKernel()}
    best: dict[str, list[float]] = {k: [0.0, 0.0] for k in (*kernels, "STREAM (OpenMP)")}
    for rnd in range(args.rounds):
        for name, kern in kernels.items():
            res = run_membench(
                top,
                bytes_per_thread=per_thread,
                reps=args.reps,
                matrix=False,
                kernel=kern,
                huge_pages=not args.small_pages,
                threads_per_node=threads if len(top.nodes) == 1 else args.threads,
            )
            m = res.machine
            assert m is not None and m.read_gbs is not None and m.triad_gbs is not None
            best[name] = [max(best[name][0], m.read_gbs), max(best[name][1], m.triad_gbs)]
            print(
                f"  round {rnd + 1} {name:<20} read {m.read_gbs:6.2f} GB/s  "
                f"triad {m.triad_gbs:6.2f} GB/s"
            )
        r, t = stream(n_per_thread * threads, args.reps, threads, cpus, not args.small_pages)
        s = best["STREAM (OpenMP)"]
        best["STREAM (OpenMP)"] = [max(s[0], r), max(s[1], t)]
        print(f"  round {rnd + 1} {'STREAM (OpenMP)':<20} read {r:6.2f} GB/s  triad {t:6.2f} GB/s")
    ref = best["STREAM (OpenMP)"]
    print("best over rounds, ratio to STREAM:")
    for name, (r, t) in best.items():
        print(
            f"  {name:<20} read {r:6.2f} GB/s ({r / ref[0]:.2f})  triad {t:6.2f} GB/s "
            f"({t / ref[1]:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
