"""How a sweep writes values: canonical JSON for run keys, table cells, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def cell(value: Any, exact: bool = False) -> str:
    """A value as written to the table: measurements to 6 digits (``exact``: all), lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if exact or abs(value) >= 1e6 else f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the table holds one line per run), at most 500 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 500 else text[:497] + "..."
