"""What a GGUF file's header says: architecture, exact parameter count, quantization mix, layer
sizes, attention heads, context, experts. Read with the one GGUF parser (rigtui.model.gguf: the
header and tensor index only, cheap even for 100+ GB models, with the `gguf` package's type
tables).

Shell equivalent: `gguf-dump MODEL.gguf` (from the `gguf` package).

Bad files (not GGUF, truncated, absurd counts, corrupt bytes) raise GgufError with a message
naming the file and what is wrong; callers print it, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any

from rigtui.model.analysis import GgufFacts, TensorTypeShare
from rigtui.model.gguf import GgufFormatError, read_gguf

_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


class GgufError(Exception):
    """A file rigtui cannot read as a GGUF model; the message says what and where."""


def _file_type_name(value: Any) -> str | None:
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(value)).name
    except (ImportError, ValueError, TypeError):
        return None if value is None else str(value)


def read_gguf_facts(path: str | os.PathLike[str]) -> GgufFacts:
    """Facts of the model at `path`. Raises GgufError for anything unreadable."""
    path_s = os.fspath(path)
    try:
        header = read_gguf(path_s)
        problem = header.model_problem()
        if problem is not None:
            raise problem
    except IsADirectoryError:
        raise GgufError(f"{path_s}: is a directory, expected a .gguf file") from None
    except OSError as exc:
        raise GgufError(f"{path_s}: cannot read: {exc.strerror or exc}") from None
    except GgufFormatError as exc:
        raise GgufError(f"{path_s}: {exc}") from None
    unknown = next((t for t in header.tensors if t.n_bytes is None), None)
    if unknown is not None:
        raise GgufError(f"{path_s}: tensor {unknown.name} has ggml type {unknown.ggml_type}, "
                        "which this version does not know (a newer llama.cpp's file?)")  # fmt: skip
    version, size = header.version, header.file_bytes
    fields = {k: v for k, v in header.metadata.items() if not k.startswith("tokenizer.ggml.")}
    n_vocab_tok = header.array_len("tokenizer.ggml.tokens")
    tensors = [(t.name, t.type_name, t.n_elements, t.n_bytes or 0) for t in header.tensors]
    arch = fields.get("general.architecture")

    def key(suffix: str) -> Any:
        return fields.get(f"{arch}.{suffix}") if arch else None

    def as_int(v: Any) -> int | None:
        if isinstance(v, tuple):
            v = max(v) if v else None
        try:
            return None if v is None else int(v)
        except (TypeError, ValueError):
            return None

    n_layers = as_int(key("block_count"))
    n_embd = as_int(key("embedding_length"))
    n_head = as_int(key("attention.head_count"))
    kv_raw = key("attention.head_count_kv")
    if kv_raw is None:
        kv_raw = key("attention.head_count")  # llama.cpp: no KV count means no GQA
    if isinstance(kv_raw, tuple):
        kv_per_layer = tuple(int(x) for x in kv_raw)
    elif kv_raw is not None and n_layers:
        kv_per_layer = (int(kv_raw),) * n_layers
    else:
        kv_per_layer = ()
    head_dim_k = as_int(key("attention.key_length"))
    head_dim_v = as_int(key("attention.value_length"))
    # llama.cpp's default head size is n_embd / n_head() of layer 0 (not the largest count of a
    # per-layer array); a layer without attention (0) cannot give it, so the first non-zero.
    heads_raw = key("attention.head_count")
    n_head_0 = (
        as_int(next((h for h in heads_raw if h), None)) if isinstance(heads_raw, tuple) else n_head
    )
    if head_dim_k is None and n_embd and n_head_0:
        head_dim_k = n_embd // n_head_0
    if head_dim_v is None and n_embd and n_head_0:
        head_dim_v = n_embd // n_head_0

    mix: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    layer_bytes: dict[int, int] = defaultdict(int)
    non_layer = expert = token_embd = output = 0
    names = set()
    for name, ttype, nel, nbytes in tensors:
        names.add(name)
        m = mix[ttype]
        m[0] += 1
        m[1] += nel
        m[2] += nbytes
        lm = _LAYER_RE.match(name)
        if lm:
            layer_bytes[int(lm.group(1))] += nbytes
        else:
            non_layer += nbytes
        if "_exps." in name:
            expert += nbytes
        if name.startswith("token_embd."):
            token_embd += nbytes
        if name.startswith(("output.", "output_norm.")):
            output += nbytes
    n_layer_count = (
        n_layers if n_layers is not None else (max(layer_bytes) + 1 if layer_bytes else 0)
    )
    quant = tuple(
        sorted(
            (TensorTypeShare(t, v[0], v[1], v[2]) for t, v in mix.items()), key=lambda s: -s.bytes
        )
    )
    tied = "output.weight" not in names
    if tied:
        output += token_embd
    n_vocab = as_int(key("vocab_size")) or n_vocab_tok
    name = fields.get("general.name")
    return GgufFacts(
        path=path_s, file_bytes=size, version=version,
        architecture=str(arch) if arch is not None else None,
        name=str(name) if name is not None else None,
        file_type=_file_type_name(fields.get("general.file_type")),
        n_tensors=len(tensors), n_params=sum(t[2] for t in tensors),
        tensors=tuple((t[0], t[3]) for t in tensors),
        weights_bytes=sum(t[3] for t in tensors), quant_mix=quant, n_layers=n_layers,
        n_embd=n_embd, n_ff=as_int(key("feed_forward_length")), n_head=n_head,
        n_head_kv=max(kv_per_layer) if kv_per_layer else None, n_head_kv_per_layer=kv_per_layer,
        head_dim_k=head_dim_k, head_dim_v=head_dim_v,
        n_ctx_train=as_int(key("context_length")), n_vocab=n_vocab,
        n_experts=as_int(key("expert_count")), n_experts_used=as_int(key("expert_used_count")),
        expert_bytes=expert, token_embd_bytes=token_embd, output_tied=tied,
        layer_bytes=tuple(layer_bytes.get(i, 0) for i in range(n_layer_count)),
        non_layer_bytes=non_layer, output_bytes=output,
    )  # fmt: skip
