"""Is this file a complete GGUF model? Reads the header only (no weights), streaming.

Catches what users hit: a text/HTML file saved as .gguf (failed download), a truncated download
(tensor data ends past the end of the file), an old GGML/GGJT file. Sizes per tensor type come
from the `gguf` package's GGML_QUANT_SIZES (maintained upstream with llama.cpp).
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
_MAX_COUNT = 1 << 32


class GgufProblem(ValueError):
    """The file is not a usable GGUF; `hint` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class GgufFacts:
    version: int
    n_tensors: int
    n_kv: int
    architecture: str | None
    file_bytes: int
    data_end: int | None  # where the last tensor's data ends (None: unknown tensor type)
    n_params: int


def _read(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise EOFError
    return b


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", _read(f, 8))
    if n > _MAX_STRING:
        raise ValueError(f"string of {n} bytes")
    return _read(f, n).decode("utf-8", errors="replace")


_MAX_DEPTH = 16  # arrays of arrays: real files nest one or two deep; a crafted one, thousands


def _skip_value(f: BinaryIO, vtype: int, depth: int = 0) -> object:
    if depth > _MAX_DEPTH:
        raise ValueError(f"metadata arrays nested more than {_MAX_DEPTH} deep")
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        return struct.unpack(fmt, _read(f, struct.calcsize(fmt)))[0]
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        (itype,) = struct.unpack("<I", _read(f, 4))
        (count,) = struct.unpack("<Q", _read(f, 8))
        if count > _MAX_COUNT:
            raise ValueError(f"array of {count} items")
        if itype in _SCALARS:
            f.seek(count * struct.calcsize(_SCALARS[itype]), os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, itype, depth + 1)
        return None
    raise ValueError(f"unknown metadata value type {vtype}")


# (elements per block, bytes per block) of the ggml types models ship in, by type id: the `gguf`
# package's GGML_QUANT_SIZES (a test keeps them equal). Importing `gguf` costs 0.2 s (numpy,
# its writer, yaml) on every `rigtui run` and profile check; only a type not listed here
# (newer than this table) asks the package.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17),
}  # fmt: skip


def block_size(ttype: int) -> tuple[int, int] | None:
    """(elements, bytes) per block of ggml type `ttype`, None when unknown even to `gguf`."""
    found = GGML_BLOCKS.get(ttype)
    if found is not None:
        return found
    from gguf import GGML_QUANT_SIZES

    return GGML_QUANT_SIZES.get(ttype)  # type: ignore[call-overload]


def check_gguf(path: str | os.PathLike[str]) -> GgufFacts:
    """Facts from the header; raises GgufProblem (message + hint) or OSError (unreadable)."""
    size = os.path.getsize(path)
    redownload = "download it again (compare its size/sha256 with the source)"
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != GGUF_MAGIC:
            head = magic + f.read(60)
            if head[:1] in (b"<", b"{") or head.isascii():
                what = f"a text file, not a GGUF model (starts with {head[:24]!r})"
            elif magic in (b"lmgg", b"fmgg", b"tjgg"):
                what = "an old GGML/GGJT model, which llama.cpp no longer loads"
            else:
                what = f"not a GGUF model (magic {magic!r}, expected b'GGUF')"
            if size == 0:
                what = "empty (0 bytes)"
            raise GgufProblem(
                f"{os.fspath(path)} is {what}", f"point model at a .gguf file, or {redownload}"
            )
        try:
            version, n_tensors, n_kv = struct.unpack("<IQQ", _read(f, 20))
            if version < 2:
                raise GgufProblem(
                    f"GGUF version {version} is too old",
                    "convert it again with a current llama.cpp",
                )
            if n_tensors > 1 << 20 or n_kv > 1 << 20:
                raise ValueError(f"{n_tensors} tensors / {n_kv} keys")
            alignment = 32
            arch = None
            for _ in range(n_kv):
                key = _string(f)
                (vtype,) = struct.unpack("<I", _read(f, 4))
                value = _skip_value(f, vtype)
                if key == "general.alignment" and isinstance(value, int) and value > 0:
                    alignment = value
                elif key == "general.architecture" and isinstance(value, str):
                    arch = value
            infos = []
            for _ in range(n_tensors):
                name = _string(f)
                (n_dims,) = struct.unpack("<I", _read(f, 4))
                if n_dims > 8:
                    raise ValueError(f"tensor {name} has {n_dims} dimensions")
                dims = struct.unpack(f"<{n_dims}Q", _read(f, 8 * n_dims))
                ttype, offset = struct.unpack("<IQ", _read(f, 12))
                infos.append((name, dims, ttype, offset))
            header_end = f.tell()
        except EOFError:
            raise GgufProblem(
                f"{os.fspath(path)} ends inside its GGUF header ({size} bytes): truncated",
                redownload,
            ) from None
        except (ValueError, struct.error) as exc:
            if isinstance(exc, GgufProblem):
                raise
            raise GgufProblem(
                f"{os.fspath(path)} has a corrupt GGUF header: {exc}", redownload
            ) from None

    if n_tensors == 0:
        raise GgufProblem(f"{os.fspath(path)} has no tensors: a vocabulary-only GGUF (like "
                          "llama.cpp's ggml-vocab-*.gguf) or a stub, not a model that can run",
                          "point model at the model's .gguf file")  # fmt: skip
    data_start = -(-header_end // alignment) * alignment
    data_end: int | None = data_start
    n_params = 0
    for _name, dims, ttype, offset in infos:
        count = 1
        for d in dims:
            count *= d
        n_params += count
        sizes = block_size(ttype)
        if sizes is None or data_end is None:
            data_end = None
            continue
        block, type_size = sizes
        data_end = max(data_end, data_start + offset + count // block * type_size)
    if data_end is not None and data_end > size:
        raise GgufProblem(
            f"{os.fspath(path)} is truncated: its tensors need {data_end} bytes, the file has {size}",
            redownload,
        )
    return GgufFacts(version, n_tensors, n_kv, arch, size, data_end, n_params)
