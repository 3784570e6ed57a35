"""What every experiment shares: the :class:`Experiment` base, fits as :class:`Task` s,
the results table and the summary.

An experiment turns its configuration and a list of seeds into :class:`Task` s (one per
fit); :mod:`nica.experiments._runner` runs them and writes the rows (the columns
:data:`FIELDS`) to ``OUT/NAME.csv``, the figure to ``OUT/NAME.png``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from nica.datasets.io import atomic_write

#: columns of the results table, one row per fit (per evaluated epoch for ``dynamics``)
FIELDS = ("experiment", "size", "method", "setting", "value", "data_seed", "model_seed", "step",
          "mcc", "score", "score_name", "seconds", "error")
#: configuration sizes: the paper's, a few minutes on 2 cores, and the tests' tiny one
SIZES = ("full", "quick", "smoke")
#: default data seeds are SEED_BASE + 1, SEED_BASE + 2, ...: apart from the tests' seeds
#: (< 100), the tuning rounds' (1001-1005) and the restart study's (2001-2010)
SEED_BASE = 3000


def default_seeds(n_seeds: int) -> list[int]:
    """The first ``n_seeds`` data seeds: 3001, 3002, ..."""
    if not isinstance(n_seeds, (int, np.integer)) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ValueError(f"the number of seeds must be a positive integer, got {n_seeds!r}")
    return [SEED_BASE + i for i in range(1, int(n_seeds) + 1)]


@dataclass(frozen=True)
class Task:
    """One fit: which experiment and configuration size, which method, which setting.

    ``setting`` names the quantity the experiment varies and ``value`` its value here;
    the model is seeded with ``model_seed``, the data with ``data_seed``.
    """

    experiment: str
    size: str
    method: str
    setting: str
    value: Any
    data_seed: int
    model_seed: int

    def row(self, *, mcc: float, score: float = math.nan, score_name: str = "", seconds: float = math.nan,
            step: int | None = None, error: str = "", **changes: Any) -> dict[str, Any]:
        """A results row for this task; ``changes`` override the task's own columns."""
        base = {f.name: getattr(self, f.name) for f in fields(self)}
        base.update(changes)
        return {**base, "step": step if step is not None else "", "mcc": mcc, "score": score,
                "score_name": score_name, "seconds": seconds, "error": error}

    def describe(self) -> str:
        return f"{self.method} {self.setting}={self.value} seed {self.data_seed}"


class Experiment:
    """Base of the paper's experiments; a subclass fills in the class attributes and
    :meth:`tasks`, :meth:`run` and :meth:`plot` (and may refine :meth:`table`).

    Attributes
    ----------
    name : the command-line name (``nica reproduce NAME``).
    figure, title : the paper's figure and what it shows.
    paper : the paper's numbers, as one line printed under the summary.
    configs : ``{"full": ..., "quick": ..., "smoke": ...}`` configuration dataclasses,
        each with a ``seeds`` field (the default number of data seeds).
    setting : name of the varied quantity (the x axis).
    """

    name: str = ""
    figure: str = ""
    title: str = ""
    paper: str = ""
    setting: str = ""
    configs: dict[str, Any] = {}

    def config(self, size: str) -> Any:
        if size not in SIZES:
            raise ValueError(f"unknown configuration size {size!r}; choose one of {SIZES}")
        return self.configs[size]

    def tasks(self, config: Any, seeds: Sequence[int], size: str) -> list[Task]:  # pragma: no cover
        raise NotImplementedError

    def run(self, task: Task, config: Any) -> list[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def plot(self, rows: list[dict[str, Any]], config: Any, ax: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def grid(self, size: str, seeds: Sequence[int], methods: Iterable[str], values: Iterable[Any]) -> list[Task]:
        """Tasks for every value x method x seed, the model seeded like the data."""
        return [Task(self.name, size, method, self.setting, value, seed, seed)
                for value in values for method in methods for seed in seeds]

    def table(self, rows: list[dict[str, Any]], config: Any) -> tuple[list[str], list[list[str]]]:
        """Summary: MCC mean ± sd over seeds per method and setting value (final rows)."""
        return mcc_table(final_rows(rows), self.setting)


# ---------------------------------------------------------------- rows and tables
def final_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row of every fit (rows of one fit share method, value and seeds)."""
    last: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        last[(r["method"], str(r["value"]), r["data_seed"], r["model_seed"])] = r
    return list(last.values())


def finite(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def mean_sd(values: Iterable[float], digits: int = 3) -> str:
    """``"0.812 ± 0.034 (5)"``: mean, sample sd and count of the finite values (``"0.812 (1)"``)."""
    arr = finite(values)
    if arr.size == 0:
        return "–"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f} (1)"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f} ({arr.size})"


def ordered(values: Iterable[Any]) -> list[Any]:
    """Distinct values in first-seen order."""
    return list(dict.fromkeys(values))


def mcc_table(rows: list[dict[str, Any]], setting: str) -> tuple[list[str], list[list[str]]]:
    """Methods as columns, setting values as rows, MCC mean ± sd (n seeds) in the cells."""
    methods = ordered(r["method"] for r in rows)
    values = ordered(r["value"] for r in rows)
    body = []
    for value in values:
        cells = [mean_sd(r["mcc"] for r in rows if r["method"] == m and r["value"] == value) for m in methods]
        body.append([str(value), *cells])
    return [setting, *methods], body


def format_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pastes into docs/results.md as is)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


# ---------------------------------------------------------------- outputs
def csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """The results table as UTF-8 CSV with the columns :data:`FIELDS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k, "")) for k in FIELDS})
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a results CSV, numbers parsed (empty cells become NaN; a numeric ``value``
    becomes the int or float the experiment wrote, so merged rows group with new ones)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("mcc", "score", "seconds"):
            row[key] = float(row[key]) if row[key] != "" else math.nan
        for key in ("data_seed", "model_seed"):
            row[key] = int(row[key])
        row["value"] = _number_or_text(row["value"])
    return rows


def _number_or_text(cell: str) -> int | float | str:
    """``"5"`` -> 5, ``"0.5"`` -> 0.5, anything else unchanged."""
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def save_figure(fig: Any, path: Path, *, overwrite: bool) -> Path:
    """Write a matplotlib figure as PNG, atomically."""
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), overwrite=overwrite)


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced."""

    name: str
    size: str
    seeds: list[int]
    rows: list[dict[str, Any]]
    csv_path: Path
    png_path: Path
    table: str
    seconds: float

    @property
    def n_failed(self) -> int:
        return sum(bool(r["error"]) for r in self.rows)


def output_paths(name: str, out: Path) -> tuple[Path, Path]:
    return out / f"{name}.csv", out / f"{name}.png"


def merged_rows(csv_path: Path, name: str, size: str) -> list[dict[str, Any]]:
    """The rows of an existing results CSV to merge new fits into (none if it is absent);
    refuses one written by another experiment or configuration size."""
    if not csv_path.exists():
        return []
    rows = read_results(csv_path)
    found = {(r["experiment"], r["size"]) for r in rows}
    if found - {(name, size)}:
        raise ValueError(f"{csv_path} holds rows of {sorted(found)}, not of {name} ({size}); "
                         "merge only into a CSV of the same experiment and size")
    return rows
