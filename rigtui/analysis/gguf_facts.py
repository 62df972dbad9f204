"""What a GGUF file's header says: architecture, exact parameter count, quantization mix, layer
sizes, attention heads, context, experts. Read with the `gguf` package's GGUFReader (it mmaps the
file and parses only the header and tensor index: cheap even for 100+ GB models).

Shell equivalent: `gguf-dump MODEL.gguf` (from the same package).

Bad files (not GGUF, truncated, absurd counts, a reader crash on corrupt bytes) raise GgufError
with a message naming the file and what is wrong; callers print it, never a traceback.
"""

from __future__ import annotations

import os
import re
import struct
from collections import defaultdict
from typing import Any

from rigtui.model.analysis import GgufFacts, TensorTypeShare

_MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset
_MIN_KV = 8 + 4 + 1  # key length, value type, a 1-byte value
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


class GgufError(Exception):
    """A file rigtui cannot read as a GGUF model; the message says what and where."""


def check_header(path: str) -> tuple[int, int, int, int]:
    """(version, tensor_count, kv_count, file_size) from the fixed 24-byte header, validated
    before GGUFReader allocates anything from those counts."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(24)
    except IsADirectoryError:
        raise GgufError(f"{path}: is a directory, expected a .gguf file") from None
    except OSError as exc:
        raise GgufError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head[:4] != b"GGUF":
        hint = (
            " (a safetensors/PyTorch checkpoint? convert it with llama.cpp's convert_hf_to_gguf.py)"
            if head[:1] in (b"{", b"P") or head[8:9] == b"{"
            else ""
        )
        raise GgufError(f"{path}: not a GGUF file (starts with {head[:4]!r}){hint}")
    if len(head) < 24:
        raise GgufError(f"{path}: truncated GGUF header ({size} bytes)")
    version = struct.unpack_from("<I", head, 4)[0]
    if version & 0xFFFF == 0 and version:  # byte-swapped: a big-endian file
        raise GgufError(f"{path}: big-endian GGUF (s390x builds): not supported here")
    if version < 2 or version > 3:
        raise GgufError(f"{path}: GGUF version {version} not supported (2 and 3 are)")
    n_tensors, n_kv = struct.unpack_from("<QQ", head, 8)
    if n_tensors * _MIN_TENSOR_INFO > size:
        raise GgufError(
            f"{path}: header claims {n_tensors} tensors, impossible in a "
            f"{size}-byte file: corrupt header"
        )
    if n_kv * _MIN_KV > size:
        raise GgufError(
            f"{path}: header claims {n_kv} metadata keys, impossible in a "
            f"{size}-byte file: corrupt header"
        )
    return version, n_tensors, n_kv, size


def _value(field: Any) -> Any:
    """A ReaderField's value: str, number, or list (arrays); works across gguf versions."""
    from gguf import GGUFValueType

    if not field.types:
        return None
    kind = field.types[0]
    if kind == GGUFValueType.ARRAY:
        sub = field.types[-1]
        if sub == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
        out: list[Any] = []
        for i in field.data:
            out.extend(field.parts[i].tolist())
        return out
    if kind == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    val = field.parts[field.data[0]].tolist()
    return val[0] if isinstance(val, list) else val


def _file_type_name(value: Any) -> str | None:
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(value)).name
    except (ImportError, ValueError, TypeError):
        return None if value is None else str(value)


def read_gguf_facts(path: str | os.PathLike[str]) -> GgufFacts:
    """Facts of the model at `path`. Raises GgufError for anything unreadable."""
    path_s = os.fspath(path)
    version, _, _, size = check_header(path_s)
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path_s, "r")
        fields = {
            name: _value(f)
            for name, f in reader.fields.items()
            if not name.startswith("tokenizer.ggml.")
        }
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        n_vocab_tok = len(tokens.data) if tokens is not None else None
        tensors = [
            (t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes), int(t.data_offset))
            for t in reader.tensors
        ]
    except GgufError:
        raise
    except MemoryError:
        raise GgufError(
            f"{path_s}: corrupt header (a length field asks for more memory than exists)"
        ) from None
    except Exception as exc:  # the reader fails in many ways on corrupt bytes
        raise GgufError(f"{path_s}: corrupt GGUF ({type(exc).__name__}: {exc})") from None
    for name, _, _, nbytes, offset in tensors:
        if offset + nbytes > size:
            raise GgufError(
                f"{path_s}: truncated: tensor {name} ends at byte {offset + nbytes}, "
                f"the file has {size} (incomplete download?)"
            )
    arch = fields.get("general.architecture")

    def key(suffix: str) -> Any:
        return fields.get(f"{arch}.{suffix}") if arch else None

    def as_int(v: Any) -> int | None:
        if isinstance(v, list):
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
    if isinstance(kv_raw, list):
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
        as_int(next((h for h in heads_raw if h), None)) if isinstance(heads_raw, list) else n_head
    )
    if head_dim_k is None and n_embd and n_head_0:
        head_dim_k = n_embd // n_head_0
    if head_dim_v is None and n_embd and n_head_0:
        head_dim_v = n_embd // n_head_0

    mix: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    layer_bytes: dict[int, int] = defaultdict(int)
    non_layer = expert = token_embd = output = 0
    names = set()
    for name, ttype, nel, nbytes, _ in tensors:
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
    if not tensors:
        raise GgufError(f"{path_s}: has no tensors: a vocabulary-only GGUF (like llama.cpp's "
                        "ggml-vocab-*.gguf) or a stub, not a model that can run")  # fmt: skip
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
