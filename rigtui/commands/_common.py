"""Helpers shared by command modules (output, JSON)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rigtui.model import to_jsonable


def print_json(obj: Any, *, stream=None, indent: int | None = 2) -> None:
    """Write `obj` (dataclasses welcome) as JSON followed by a newline."""
    stream = stream or sys.stdout
    stream.write(json.dumps(to_jsonable(obj), indent=indent, ensure_ascii=False))
    stream.write("\n")
    stream.flush()


def print_ndjson(obj: Any, *, stream=None) -> None:
    """One compact JSON object per line (streams, samples, events)."""
    print_json(obj, stream=stream, indent=None)
