"""Is this file a complete GGUF model? Reads the header only (no weights), with the one GGUF
parser (rigtui.model.gguf), and says what to do about what users hit: a text/HTML file saved as
.gguf (a failed download), a truncated download (tensor data ends past the end of the file), an
old GGML/GGJT file, a vocabulary-only GGUF.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rigtui.model.gguf import GgufFormatError, read_gguf


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


_REDOWNLOAD = "download it again (compare its size/sha256 with the source)"
HINTS = {
    "not_gguf": f"point model at a .gguf file, or {_REDOWNLOAD}",
    "version": "convert it again with a current llama.cpp",
    "truncated": _REDOWNLOAD,
    "corrupt": _REDOWNLOAD,
    "no_tensors": "point model at the model's .gguf file",
}


def check_gguf(path: str | os.PathLike[str]) -> GgufFacts:
    """Facts from the header; raises GgufProblem (message + hint) or OSError (unreadable)."""
    try:
        h = read_gguf(path)
        problem = h.model_problem()
        if problem is not None:
            raise problem
    except GgufFormatError as exc:
        raise GgufProblem(f"{os.fspath(path)}: {exc}", HINTS.get(exc.kind, _REDOWNLOAD)) from None
    arch = h.metadata.get("general.architecture")
    return GgufFacts(version=h.version, n_tensors=len(h.tensors), n_kv=len(h.metadata),
                     architecture=arch if isinstance(arch, str) else None,
                     file_bytes=h.file_bytes, data_end=h.data_end,
                     n_params=sum(t.n_elements for t in h.tensors))  # fmt: skip
