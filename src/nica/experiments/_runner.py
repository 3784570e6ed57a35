"""Running an experiment: its tasks on worker processes, then the CSV, the figure and the
summary.

Each task is run by :func:`run_task` in a worker process (or in this process for
``jobs=1``) with one torch thread, so the rows are the same for any number of jobs.
A worker finds the task's experiment by name in :data:`nica.experiments.EXPERIMENTS`
(importing this module imports the package, which registers the built-in experiments).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from nica.datasets.io import atomic_write
from nica.experiments._core import (
    Experiment,
    ExperimentResult,
    Task,
    csv_bytes,
    default_seeds,
    format_table,
    merged_rows,
    ordered,
    output_paths,
    read_results,
    save_figure,
)
from nica.experiments._plots import new_figure
from nica.experiments._registry import get_experiment


# ---------------------------------------------------------------- execution
def run_task(task: Task) -> list[dict[str, Any]]:
    """Run one fit (in a worker process or here); a failure becomes a row with its error."""
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
    rows = read_results(csv_path)
    if not rows:
        raise ValueError(f"{csv_path} holds no rows")
    names, sizes = {r["experiment"] for r in rows}, {r["size"] for r in rows}
    if len(names) != 1 or len(sizes) != 1:
        raise ValueError(f"{csv_path} mixes experiments {sorted(names)} or sizes {sorted(sizes)}")
    return write_figure(get_experiment(names.pop()), rows, sizes.pop(), Path(png_path), overwrite=overwrite)
