"""What every experiment shares: fits as tasks, parallel execution, the results table,
the figure, and the summary.

An experiment turns its configuration and a list of seeds into :class:`Task` s (one per
fit); each task is run by :func:`run_task` in a worker process (or in this process for
``jobs=1``) with one torch thread, so the rows are the same for any number of jobs.
Each task returns rows with the columns :data:`FIELDS`; they are written to
``OUT/NAME.csv``, the figure to ``OUT/NAME.png``.
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
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


# ---------------------------------------------------------------- execution
def run_task(task: Task) -> list[dict[str, Any]]:
    """Run one fit (in a worker process or here); a failure becomes a row with its error."""
    from nica.experiments import get_experiment

    experiment = get_experiment(task.experiment)
    try:
        return experiment.run(task, experiment.config(task.size))
    except Exception as exc:  # noqa: BLE001 - one failed fit must not lose the others
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return [task.row(mcc=math.nan, error=message[:500])]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def execute(tasks: Sequence[Task], jobs: int = 1, echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every task on ``jobs`` processes (one torch thread each); rows in task order."""
    import torch

    if not isinstance(jobs, (int, np.integer)) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    results: list[list[dict[str, Any]] | None] = [None] * len(tasks)
    width = len(str(len(tasks)))

    def report(done: int, index: int) -> None:
        if echo is None:
            return
        last = results[index][-1]
        status = (f"FAILED ({last['error']})" if last["error"]
                  else f"MCC {last['mcc']:.3f} ({last['seconds']:.1f} s)")
        echo(f"[{done:>{width}}/{len(tasks)}] {tasks[index].describe()}: {status}")

    if jobs == 1 or len(tasks) <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: the same sums, the same results
        try:
            for i, task in enumerate(tasks):
                results[i] = run_task(task)
                report(i + 1, i)
        finally:
            torch.set_num_threads(threads)
    else:
        # spawn: a fresh interpreter per worker (forking a process that holds torch's
        # thread pools can deadlock)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context,
                                 initializer=_init_worker) as pool:
            futures = {pool.submit(run_task, task): i for i, task in enumerate(tasks)}
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    index = futures[future]
                    results[index] = future.result()
                    report(done, index)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    return [row for rows in results for row in rows or []]


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
    """Rows of a results CSV, numbers parsed (empty cells become NaN)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("mcc", "score", "seconds"):
            row[key] = float(row[key]) if row[key] != "" else math.nan
        for key in ("data_seed", "model_seed"):
            row[key] = int(row[key])
    return rows


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


def run_experiment(
    name: str,
    *,
    size: str = "full",
    n_seeds: int | None = None,
    out: str | Path = "nica-reproduce",
    jobs: int = 1,
    overwrite: bool = False,
    echo: Callable[[str], None] | None = None,
    methods: Sequence[str] | None = None,
    merge: bool = False,
    values: Sequence[str] | None = None,
) -> ExperimentResult:
    """Run experiment ``name`` at configuration ``size`` and write ``out/NAME.csv`` and ``.png``.

    Parameters
    ----------
    name : a registered experiment (see :data:`nica.experiments.EXPERIMENTS`).
    size : ``"full"`` (the paper's sizes), ``"quick"`` (minutes on 2 cores) or ``"smoke"``.
    n_seeds : number of data seeds (3001, 3002, ...); default the configuration's.
    out : output folder.
    jobs : worker processes, one torch thread each; the rows do not depend on it.
    overwrite : replace existing output files (otherwise refuse before any fit).
    echo : called with one progress line per finished fit.
    methods : run only the fits of these methods (default: all of the configuration's).
    merge : with ``methods`` and/or ``values``, keep the rows of an existing ``NAME.csv``
        (same experiment and size) that this run does not redo, and replace the others;
        the figure is redrawn from the merged rows.
    values : run only the fits at these values of the experiment's setting (e.g. the
        numbers of segments), matched as text.
    """
    from nica.experiments import get_experiment

    experiment = get_experiment(name)
    config = experiment.config(size)
    seeds = default_seeds(config.seeds if n_seeds is None else n_seeds)
    csv_path, png_path = output_paths(name, Path(out))
    kept: list[dict[str, Any]] = []
    def redone(method: str, value: Any) -> bool:
        return (methods is None or method in methods) and (values is None or str(value) in values)

    if merge:
        if methods is None and values is None:
            raise ValueError("merge needs methods or values: the rows this run does not redo are what it keeps")
        kept = [r for r in merged_rows(csv_path, name, size) if not redone(r["method"], r["value"])]
    else:
        for path in (csv_path, png_path):  # refuse now, not after hours of fitting
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    tasks = experiment.tasks(config, seeds, size)
    if methods is not None:
        known = ordered(t.method for t in tasks)
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ValueError(f"{name} has no method(s) {unknown} in its {size} configuration; "
                             f"its methods are {known}")
    if values is not None:
        known_values = ordered(str(t.value) for t in tasks)
        unknown = [v for v in values if v not in known_values]
        if unknown:
            raise ValueError(f"{name} has no {experiment.setting} {unknown} in its {size} configuration; "
                             f"its values are {known_values}")
    tasks = [t for t in tasks if redone(t.method, t.value)]
    start = time.perf_counter()
    rows = kept + execute(tasks, jobs, echo)
    seconds = time.perf_counter() - start
    atomic_write(csv_path, lambda fh: fh.write(csv_bytes(rows)), overwrite=overwrite or merge)
    write_figure(experiment, rows, size, png_path, overwrite=overwrite or merge)
    table = format_table(*experiment.table([r for r in rows if not r["error"]], config))
    return ExperimentResult(name, size, seeds, rows, csv_path, png_path, table, seconds)


def write_figure(experiment: Experiment, rows: list[dict[str, Any]], size: str, path: Path, *,
                 overwrite: bool = False) -> Path:
    """Draw the experiment's figure from its rows (failed fits left out) and save it as PNG."""
    import matplotlib.pyplot as plt

    from nica.experiments._plots import new_figure

    good = [r for r in rows if not r["error"]]
    n_seeds = len({r["data_seed"] for r in good})
    fig, ax = new_figure()
    try:
        experiment.plot(good, experiment.config(size), ax)
        ax.set_title(f"{experiment.title}\n{experiment.figure}, {size} configuration, {n_seeds} seed(s)",
                     fontsize=9)
        fig.tight_layout()
        return save_figure(fig, path, overwrite=overwrite)
    finally:
        plt.close(fig)


def replot(csv_path: str | Path, png_path: str | Path, *, overwrite: bool = False) -> Path:
    """Draw the figure of a results CSV written by :func:`run_experiment` again (e.g. after
    a change of the plotting code, or for rows gathered from several runs)."""
    from nica.experiments import get_experiment

    rows = read_results(csv_path)
    if not rows:
        raise ValueError(f"{csv_path} holds no rows")
    names, sizes = {r["experiment"] for r in rows}, {r["size"] for r in rows}
    if len(names) != 1 or len(sizes) != 1:
        raise ValueError(f"{csv_path} mixes experiments {sorted(names)} or sizes {sorted(sizes)}")
    return write_figure(get_experiment(names.pop()), rows, sizes.pop(), Path(png_path), overwrite=overwrite)
