"""A minimal llama-cpp-python engine process for the telemetry tests and the demo recording.

    python tests/telemetry_engine_child.py MODEL.gguf [THREADS]

Loads MODEL with mmap (as rigtui's engine does by default), prints `{"event": "ready", ...}` on
stdout, then for each `gen N` line on stdin generates N tokens (EOS ignored: the demo model's
weights are random), printing `{"event": "progress", "n_gen": k, "gen_tok_s": ...}` every few
tokens and `{"event": "done", ...}` at the end. EOF on stdin exits. llama.cpp's own logging goes
to stderr. Not part of the package: only rigtui/engine/worker.py may import llama_cpp there.
"""

from __future__ import annotations

import json
import os
import sys
import time


def emit(**obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    from llama_cpp import Llama

    model = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    t0 = time.monotonic()
    llm = Llama(
        model_path=model,
        n_ctx=512,
        n_threads=threads,
        n_threads_batch=threads,
        use_mmap=True,
        verbose=False,
        seed=1,
    )
    emit(event="ready", pid=os.getpid(), load_s=time.monotonic() - t0, model_path=model)
    prompt = llm.tokenize(b"Once upon a time")
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "gen":
            continue
        n = int(parts[1])
        start = time.monotonic()
        first = None
        k = 0
        # The context holds n_ctx tokens: a long request restarts from the prompt before it
        # fills (llama.cpp fails a decode past n_ctx, which would kill this process).
        per_round = llm.n_ctx() - len(prompt) - 1
        while k < n:
            for in_round, _tok in enumerate(llm.generate(prompt, temp=0.8, reset=True), 1):
                k += 1
                now = time.monotonic()
                if first is None:
                    first = now
                if k % 8 == 0 and now > first:
                    emit(event="progress", n_gen=k, gen_tok_s=(k - 1) / (now - first))
                if k >= n or in_round >= per_round:
                    break
        end = time.monotonic()
        emit(
            event="done",
            n_gen=k,
            ttft_s=(first or end) - start,
            gen_tok_s=(k - 1) / (end - first) if first and end > first else None,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
