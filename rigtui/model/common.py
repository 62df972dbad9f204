"""Types shared by every part of the model, and JSON conversion."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something that could not be read or used, and why (shown to the user, never a crash)."""

    path: str
    reason: str


def to_jsonable(obj: Any) -> Any:
    """Dataclasses/tuples/enums/dicts -> plain JSON values. Dict keys become strings.

    NaN and infinities become None (JSON has no NaN). Properties named in a dataclass's
    `__json_extra__` tuple are added to its object (derived values scripts rely on); fields
    with `metadata={"json": False}` are left out (bulky inputs, not results).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
               if f.metadata.get("json", True)}  # fmt: skip
        for name in getattr(obj, "__json_extra__", ()):
            out[name] = to_jsonable(getattr(obj, name))
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):  # dict and the read-only MappingProxyType
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, frozenset, set)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, float):
        return None if (math.isnan(obj) or math.isinf(obj)) else obj
    return obj
