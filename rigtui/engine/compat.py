"""The private llama-cpp-python API the engine worker relies on, checked by duck typing.

The worker builds one sampler chain per request with `Llama._init_sampler` (llama-cpp-python
0.3.x, checked up to 0.3.36; `Llama.sample()` alone rebuilds and re-seeds the chain for every
token). The worker checks it right after the model loads, so a release that renames it fails
with a clear "not supported" error instead of a traceback in the middle of an answer. This
module never imports llama_cpp (it is handed the Llama object).
"""

from __future__ import annotations

import inspect
from typing import Any

# The private llama-cpp-python API the worker relies on (checked right after load, so that a
# release that renames it fails with this message instead of a traceback mid-answer).
_SAMPLER_KWARGS = ("top_k", "top_p", "min_p", "temp", "repeat_penalty")


def private_api_problem(llm: Any) -> str | None:
    """None if `llm` has `_init_sampler(top_k=, top_p=, min_p=, temp=, repeat_penalty=)` and a
    `_sampler` attribute (llama-cpp-python 0.3.x, checked up to 0.3.36), else what is missing."""
    init = getattr(llm, "_init_sampler", None)
    if not callable(init):
        return "Llama._init_sampler is missing"
    if not hasattr(llm, "_sampler"):
        return "Llama._sampler is missing"
    try:
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):
        return None  # not introspectable (a C function?): trust it
    missing = [k for k in _SAMPLER_KWARGS if k not in params]
    return f"Llama._init_sampler has no {', '.join(missing)} argument" if missing else None
