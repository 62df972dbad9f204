"""The one GGUF header parser: metadata and tensor index of a model file, read from a stream
without touching the weights (cheap for a 400 GB model, and no `gguf` import: that costs 0.2 s
of numpy and yaml on every `rigtui run`). Used by the profile check (is the file complete?)
and by the analysis (architecture, layers, heads, experts, the bytes of every tensor).

Format (ggml's docs/gguf.md): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count;
each metadata entry a string key, a u32 value type and the value (arrays: item type, u64 count,
items); each tensor a string name, u32 n_dims, u64 dims, u32 ggml type, u64 offset from the
start of the data, which begins at the next multiple of `general.alignment` (32) past the index.

Anything that is not a readable GGUF raises `GgufFormatError` with a `kind` (not_gguf, version,
truncated, corrupt, no_tensors) that callers turn into their own advice.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 26
_MAX_DEPTH = 16  # arrays of arrays: real files nest one or two deep; a crafted one, thousands
KEEP_ITEMS = 4096  # a scalar array up to this long is kept (per-layer head counts); longer: counted
_MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8  # name length, n_dims, one dim, type, offset
_MIN_KV = 8 + 4 + 1  # key length, value type, a 1-byte value

# (elements per block, bytes per block) of the ggml types models ship in, by type id: the `gguf`
# package's GGML_QUANT_SIZES (a test keeps them equal); only a type not listed here (newer than
# this table) asks the package.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17),
}  # fmt: skip
# their names, as the `gguf` package's GGMLQuantizationType spells them (a test keeps them equal)
GGML_TYPE_NAMES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS",
    17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S",
    23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}  # fmt: skip


def block_size(ttype: int) -> tuple[int, int] | None:
    """(elements, bytes) per block of ggml type `ttype`, None when unknown even to `gguf`."""
    found = GGML_BLOCKS.get(ttype)
    if found is not None:
        return found
    try:
        from gguf import GGML_QUANT_SIZES
    except ImportError:
        return None
    return GGML_QUANT_SIZES.get(ttype)  # type: ignore[call-overload]


def type_name(ttype: int) -> str:
    found = GGML_TYPE_NAMES.get(ttype)
    if found is not None:
        return found
    try:
        from gguf import GGMLQuantizationType

        return GGMLQuantizationType(ttype).name
    except (ImportError, ValueError):
        return f"type{ttype}"


class GgufFormatError(ValueError):
    """Not a readable GGUF model. `kind`: not_gguf, version, truncated, corrupt, no_tensors."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ArrayInfo:
    """A metadata array not kept item by item (strings, nested, or longer than KEEP_ITEMS)."""

    item_type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int  # from the start of the data section

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def n_bytes(self) -> int | None:
        """None: a ggml type neither this table nor the `gguf` package knows."""
        sizes = block_size(self.ggml_type)
        return None if sizes is None else self.n_elements // sizes[0] * sizes[1]

    @property
    def type_name(self) -> str:
        return type_name(self.ggml_type)


@dataclass(frozen=True)
class GgufHeader:
    version: int
    metadata: dict[str, object]  # scalars, strings, tuples of scalars, or ArrayInfo
    tensors: tuple[TensorInfo, ...]
    data_start: int  # file offset of the tensor data
    file_bytes: int

    @property
    def data_end(self) -> int | None:
        """Where the last tensor's data ends (None: a tensor of an unknown type)."""
        end = self.data_start
        for t in self.tensors:
            n = t.n_bytes
            if n is None:
                return None
            end = max(end, self.data_start + t.offset + n)
        return end

    def array_len(self, key: str) -> int | None:
        v = self.metadata.get(key)
        if isinstance(v, ArrayInfo):
            return v.count
        return len(v) if isinstance(v, tuple) else None

    def model_problem(self) -> GgufFormatError | None:
        """Why this well-formed GGUF is not a model that can run: no tensors (a vocabulary
        file), or tensor data past the end of the file (an unfinished download)."""
        if not self.tensors:
            return GgufFormatError("has no tensors: a vocabulary-only GGUF (like llama.cpp's "
                                   "ggml-vocab-*.gguf) or a stub, not a model that can run",
                                   "no_tensors")  # fmt: skip
        end = self.data_end
        if end is not None and end > self.file_bytes:
            return GgufFormatError(f"is truncated: its tensors need {end} bytes, the file has "
                                   f"{self.file_bytes} (an incomplete download?)", "truncated")  # fmt: skip
        return None


def _not_gguf(head: bytes) -> str:
    if not head:
        return "empty (0 bytes), not a GGUF file"
    if head[8:9] == b"{":
        return ("a safetensors checkpoint, not a GGUF file: convert it with llama.cpp's "
                "convert_hf_to_gguf.py")  # fmt: skip
    if head[:2] == b"PK":
        return "a zip archive (a PyTorch checkpoint?), not a GGUF file: convert it with llama.cpp's convert_hf_to_gguf.py"
    if head[:4] in (b"lmgg", b"fmgg", b"tjgg"):
        return "an old GGML/GGJT model, not a GGUF file: llama.cpp no longer loads those"
    if head[:1] in (b"<", b"{") or head.isascii():
        return f"a text file, not a GGUF file (starts with {head[:24]!r})"
    return f"not a GGUF file (starts with {head[:4]!r}, expected b'GGUF')"


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def read(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise EOFError
        return b

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))

    def string(self) -> str:
        (n,) = self.unpack("<Q")
        if n > _MAX_STRING or n > self.size:
            raise ValueError(f"a string of {n} bytes")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0) -> object:
        if depth > _MAX_DEPTH:
            raise ValueError(f"metadata arrays nested more than {_MAX_DEPTH} deep")
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])[0]
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY:
            raise ValueError(f"unknown metadata value type {vtype}")
        itype, count = self.unpack("<IQ")
        if count > self.size:
            raise ValueError(f"an array of {count} items")
        if itype in _SCALARS:
            fmt = _SCALARS[itype]
            if count <= KEEP_ITEMS:
                return struct.unpack(f"<{count}{fmt[1]}", self.read(count * struct.calcsize(fmt)))
            self.f.seek(count * struct.calcsize(fmt), os.SEEK_CUR)
        else:
            for _ in range(count):
                self.value(itype, depth + 1)
        return ArrayInfo(itype, count)


def parse_gguf(f: BinaryIO, size: int) -> GgufHeader:
    """The header of the GGUF file open as `f` (`size` bytes); reads the header and tensor
    index only. Raises GgufFormatError."""
    r = _Reader(f, size)
    magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise GgufFormatError(_not_gguf(magic + f.read(60)), "not_gguf")
    try:
        version, n_tensors, n_kv = r.unpack("<IQQ")
        if version & 0xFFFF == 0 and version:  # byte-swapped: a big-endian file
            raise GgufFormatError("a big-endian GGUF (s390x builds): not supported here",
                                  "version")  # fmt: skip
        if version < 2:
            raise GgufFormatError(f"GGUF version {version} is too old: convert it again with a "
                                  "current llama.cpp", "version")  # fmt: skip
        if version > 3:
            raise GgufFormatError(f"GGUF version {version} is not supported (2 and 3 are)",
                                  "version")  # fmt: skip
        for n, what, least in ((n_tensors, "tensors", _MIN_TENSOR_INFO), (n_kv, "metadata keys", _MIN_KV)):
            if n * least > size:
                raise GgufFormatError(f"the header claims {n} {what}, impossible in a {size}-byte "
                                      "file: a corrupt header", "corrupt")  # fmt: skip
        metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = r.string()
            (vtype,) = r.unpack("<I")
            metadata[key] = r.value(vtype)
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            (n_dims,) = r.unpack("<I")
            if n_dims > 8:
                raise ValueError(f"tensor {name} has {n_dims} dimensions")
            dims = r.unpack(f"<{n_dims}Q")
            ttype, offset = r.unpack("<IQ")
            tensors.append(TensorInfo(name, tuple(dims), ttype, offset))
        header_end = f.tell()
    except EOFError:
        raise GgufFormatError(f"ends inside its GGUF header ({size} bytes): truncated",
                              "truncated") from None  # fmt: skip
    except (ValueError, struct.error, OverflowError) as exc:
        if isinstance(exc, GgufFormatError):
            raise
        raise GgufFormatError(f"has a corrupt GGUF header: {exc}", "corrupt") from None
    alignment = metadata.get("general.alignment")
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0:
        alignment = 32
    data_start = -(-header_end // alignment) * alignment
    return GgufHeader(version, metadata, tuple(tensors), data_start, size)


def read_gguf(path: str | os.PathLike[str]) -> GgufHeader:
    """parse_gguf of the file at `path`; OSError when it cannot be read."""
    with open(path, "rb") as f:
        return parse_gguf(f, os.fstat(f.fileno()).st_size)
