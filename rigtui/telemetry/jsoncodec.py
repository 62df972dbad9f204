"""JSON -> the model's frozen dataclasses, driven by their type hints (the inverse of
`rigtui.model.to_jsonable`): nested dataclasses, `X | None`, `tuple[X, ...]`, fixed tuples,
`Mapping[int, V]` (JSON object keys back to ints), enums. Unknown keys are ignored and missing
keys take the field's default, so recordings from older/newer versions still load.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping as AbcMapping
from functools import cache
from types import MappingProxyType
from typing import Any


class DecodeError(ValueError):
    pass


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, value: Any) -> Any:
    """Decode `value` as type `tp`. Raises DecodeError on a shape that does not fit."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_jsonable(arg, value)
            except (DecodeError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise DecodeError(f"{value!r} fits none of {tp}: {'; '.join(errors)}")
    if value is None:
        raise DecodeError(f"null where {tp} expected")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise DecodeError(f"expected a list for {tp}, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in value)
        if args and len(args) != len(value):
            raise DecodeError(f"expected {len(args)} items for {tp}, got {len(value)}")
        return tuple(from_jsonable(a, v) for a, v in zip(args, value, strict=False))
    if origin in (typing.Mapping, AbcMapping, dict):
        if not isinstance(value, dict):
            raise DecodeError(f"expected an object for {tp}")
        kt, vt = args if args else (Any, Any)
        out = {from_jsonable(kt, _key(kt, k)): from_jsonable(vt, v) for k, v in value.items()}
        return out if origin is dict else MappingProxyType(out)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise DecodeError(f"expected an object for {tp.__name__}")
            hints = _hints(tp)
            kwargs = {}
            for f in dataclasses.fields(tp):
                if f.name in value:
                    kwargs[f.name] = from_jsonable(hints[f.name], value[f.name])
            try:
                return tp(**kwargs)
            except TypeError as exc:
                raise DecodeError(f"{tp.__name__}: {exc}") from None
        if issubclass(tp, enum.Enum):
            return tp(value)
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DecodeError(f"expected a number, got {value!r}")
            return float(value)
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise DecodeError(f"expected an integer, got {value!r}")
            return value
        if tp is str:
            if not isinstance(value, str):
                raise DecodeError(f"expected a string, got {value!r}")
            return value
        if tp is bool:
            if not isinstance(value, bool):
                raise DecodeError(f"expected true/false, got {value!r}")
            return value
    return value


def _key(kt: Any, k: str) -> Any:
    """JSON object keys are strings; int-keyed mappings come back as ints."""
    if kt is int:
        try:
            return int(k)
        except ValueError:
            raise DecodeError(f"expected an integer key, got {k!r}") from None
    return k
