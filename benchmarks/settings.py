"""The benchmark data settings of the README table (REFERENCE.md §3): the library's own
table, :data:`nica.datasets.settings.BENCHMARK_SETTINGS`, shared with ``nica sweep``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from nica.datasets.settings import BENCHMARK_SETTINGS as SETTINGS

#: data seeds of the benchmarks; the test suite uses seeds below 100
DATA_SEEDS = (1001, 1002, 1003, 1004, 1005)



def append_row(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    """Append one result row to the CSV ``path`` (its header first when the file is new),
    so that a sweep cut short keeps every fit it finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def record_row(path: Path, fields: list[str], row: dict[str, Any], digits: int = 4) -> None:
    """:func:`append_row` with floats rounded to ``digits``, and the row printed."""
    row = {k: round(v, digits) if isinstance(v, float) else v for k, v in row.items()}
    append_row(path, fields, row)
    print(row, flush=True)


__all__ = ["SETTINGS", "DATA_SEEDS", "append_row", "record_row"]
