"""A sweep's results: the CSV table one line per finished run, and the summary over it."""

from __future__ import annotations

import csv
import io
import os
import statistics
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nica.datasets.io import atomic_write
from nica.sweep._values import canonical_json, cell
from nica.sweep.config import Run, SweepConfig

#: leading and trailing columns of the results table; the grid's hyperparameters go between
HEAD_FIELDS = ["run_key", "status", "data", "data_seed", "model_seed", "estimator", "preset"]
TAIL_FIELDS = ["mcc", "heldout_mcc", "train_score", "elbo", "score", "score_on", "fit_time", "steps",
               "params", "error", "finished_at", "worker"]


class ResultsTable:
    """The sweep's CSV file: one complete line per run, appended and fsynced as runs finish.

    Reading ignores a torn last line (a write cut short by a crash); :meth:`prepare`
    removes it and makes sure the header holds every column before the first append.
    The last row of a run key is its current result (a failed run rerun with
    ``--rerun-failed`` gets a second row).
    """

    def __init__(self, path: str | Path, fields: list[str]) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        self.header = list(fields)

    def check(self) -> None:
        """Refuse a file at the table's path that is not a results table (its first line is
        not a header with ``run_key`` and ``status``): a sweep appends to its own table and
        cuts a torn last line, and must do neither to anything else."""
        if not self.path.exists():
            return
        if not self.path.is_file():
            raise ValueError(f"{self.path} is not a file; choose another --out for the results table")
        if self.path.stat().st_size == 0:
            return  # an empty file: the header is written into it
        with open(self.path, "rb") as fh:
            first = fh.readline(1 << 16)
        try:
            header = next(csv.reader([first.decode("utf-8")]), [])
        except UnicodeDecodeError:
            header = []
        if not {"run_key", "status"} <= {name.strip() for name in header}:
            raise ValueError(f"{self.path} exists and is not a nica sweep results table (its first line is not "
                             "the table's header); a sweep writes only into its own table: choose another --out")

    def read(self) -> dict[str, dict[str, str]]:
        """The current row of each run key, as strings."""
        self.check()
        text = self._complete_lines()
        if not text:
            return {}
        reader = csv.DictReader(io.StringIO(text))
        if "run_key" not in (reader.fieldnames or []):
            raise ValueError(f"{self.path} is not a sweep results table (no run_key column); choose another --out")
        rows: dict[str, dict[str, str]] = {}
        bad = 0
        for row in reader:
            if None in row or None in row.values() or not row["run_key"]:
                bad += 1  # too many or too few fields: not a row this module wrote
                continue
            rows.pop(row["run_key"], None)  # re-insert so that dict order is finishing order
            rows[row["run_key"]] = row
        if bad:
            warnings.warn(f"{self.path}: ignored {bad} malformed row(s)", stacklevel=2)
        return rows

    def _complete_lines(self) -> str:
        if not self.path.exists():
            return ""
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        return data[:end].decode("utf-8")

    def prepare(self) -> None:
        """Cut a torn last line; write the header, or widen it to every column, atomically."""
        self.check()
        if self.path.exists():
            size, complete = self.path.stat().st_size, len(self._complete_lines().encode("utf-8"))
            if complete < size:
                warnings.warn(f"{self.path}: removed an incomplete last line (a write cut short)", stacklevel=2)
                os.truncate(self.path, complete)
        text = self._complete_lines()
        if not text:
            atomic_write(self.path, lambda fh: fh.write(self._line(None).encode("utf-8")), overwrite=True)
            return
        existing = next(csv.reader(io.StringIO(text)))
        missing = [f for f in self.fields if f not in existing]
        self.header = existing + missing
        if missing:  # a config with new grid columns: rewrite with the union of the columns
            all_rows = list(csv.DictReader(io.StringIO(text)))
            body = self._line(None) + "".join(self._line(r) for r in all_rows if None not in r)
            atomic_write(self.path, lambda fh: fh.write(body.encode("utf-8")), overwrite=True)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one complete line and force it to disk."""
        line = self._line(row)
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _line(self, row: Mapping[str, Any] | None) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.header, restval="", extrasaction="ignore", lineterminator="\n")
        if row is None:
            writer.writeheader()
        else:
            writer.writerow(row)
        return buf.getvalue()


@dataclass
class SweepResult:
    """The outcome of :func:`run_sweep`.

    Attributes
    ----------
    out : the results table.
    rows : the current row of each of the sweep's runs found in the table, as strings,
        in the order of :meth:`SweepConfig.runs` (runs not yet done are missing).
    grid : the names of the grid's hyperparameters.
    n_runs, n_skipped, n_computed : all runs, runs already in the table, runs run now.
    """

    out: Path
    rows: list[dict[str, str]]
    grid: list[str]
    n_runs: int
    n_skipped: int
    n_computed: int

    @property
    def n_failed(self) -> int:
        """Runs whose current row is a failure."""
        return sum(r["status"] != "ok" for r in self.rows)

    def summary(self, markdown: bool = False) -> str:
        """Median MCC (and more) per hyperparameter combination, best first."""
        groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for row in self.rows:
            groups.setdefault(tuple(row.get(k, "") for k in self.grid), []).append(row)
        header = [*self.grid, "runs", "failed", "median MCC", "mean MCC", "min MCC", "median train score",
                  "median s / fit"]
        lines = []
        for values, rows in groups.items():
            ok = [r for r in rows if r["status"] == "ok"]
            stats = ["-"] * 5
            if ok:
                mcc = [float(r["mcc"]) for r in ok]
                stats = [f"{statistics.median(mcc):.3f}", f"{statistics.fmean(mcc):.3f}", f"{min(mcc):.3f}",
                         f"{statistics.median(float(r.get('train_score') or r['elbo']) for r in ok):.3f}",
                         f"{statistics.median(float(r['fit_time']) for r in ok):.1f}"]
            lines.append([*values, str(len(rows)), str(len(rows) - len(ok)), *stats])
        lines.sort(key=lambda line: -float(line[len(self.grid) + 2]) if line[len(self.grid) + 2] != "-"
                   else float("inf"))
        return _format_table(header, lines, markdown)


def _format_table(header: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [header, *lines])


def table_fields(config: SweepConfig) -> list[str]:
    return HEAD_FIELDS + list(config.grid) + TAIL_FIELDS


def table_row(config: SweepConfig, run: Run, measured: Mapping[str, Any]) -> dict[str, str]:
    row = {
        "run_key": run.key, "data": config.data.label, "data_seed": run.data_seed, "model_seed": run.model_seed,
        "estimator": config.estimator, "preset": config.preset, **measured,
        "params": canonical_json(run.params),
    }
    return {**{k: cell(v) for k, v in row.items()}, **grid_cells(run)}


def grid_cells(run: Run) -> dict[str, str]:
    return {k: cell(v, exact=True) for k, v in run.combination.items()}
