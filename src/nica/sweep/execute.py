"""Running a sweep on Dask: which runs are still to do, the cluster, the tasks, and one
run as a task on a worker (fit, evaluate, record a failure as a row)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._threads import usable_cpus
from nica.datasets.io import Dataset
from nica.metrics import mean_corr_coef
from nica.sweep._values import canonical_json, one_line
from nica.sweep.config import INSTALL_HINT, Run, SweepConfig, SweepConfigError, _make_data, load_config
from nica.sweep.table import ResultsTable, SweepResult, grid_cells, table_fields, table_row

@dataclass
class SweepPlan:
    """What a sweep would do: all its runs, those to run now and how many are already done."""

    config: SweepConfig
    out: Path
    runs: list[Run]
    pending: list[Run]
    n_done: int
    warnings: list[str]


def plan_sweep(config: SweepConfig | Mapping[str, Any] | str | Path, out: str | Path | None = None, *,
               rerun_failed: bool = False) -> SweepPlan:
    """Validate ``config`` fully (one-step fits included) and find the runs still to do in ``out``."""
    if not isinstance(config, SweepConfig):
        config = SweepConfig.from_dict(config) if isinstance(config, Mapping) else load_config(config)
    out = Path(out) if out is not None else config.out
    if out is None:
        raise SweepConfigError('no results table: pass --out FILE or set out = "FILE.csv" in the config')
    runs = config.runs()
    done = ResultsTable(out, table_fields(config)).read()  # refuses a file that is not a results table
    found = config.check()
    pending = [r for r in runs if r.key not in done or (rerun_failed and done[r.key]["status"] != "ok")]
    return SweepPlan(config, out, runs, pending, len(runs) - len(pending), found)


def run_sweep(
    config: SweepConfig | Mapping[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    torch_threads: int = 1,
    rerun_failed: bool = False,
    max_runs: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run a sweep on Dask; one row per run is appended to ``out`` as runs finish.

    Parameters
    ----------
    config : a :class:`SweepConfig`, a dict of the config file's contents, or the path of
        a ``.toml`` / ``.yaml`` file.
    out : the results table (CSV); default the config's ``out``.
    client : a ``distributed.Client`` to run on (left open); default a new local cluster
        (or ``scheduler``), closed at the end.
    scheduler : address of a running Dask scheduler, e.g. ``"tcp://host:8786"``.
    n_workers, threads_per_worker : shape of the local cluster (default one worker per
        ``threads_per_worker * torch_threads`` cores).
    torch_threads : torch threads of each fit, set in the worker before each run (with an
        in-process cluster, in this process).
    rerun_failed : run again the runs whose current row is a failure (by default every run
        already in the table is skipped).
    max_runs : run at most this many of the runs still to do (the rest on a later call).
    progress : show a progress bar over the runs.
    echo : where to print status lines (e.g. ``print``); None prints nothing.

    Returns
    -------
    SweepResult with the sweep's rows and :meth:`SweepResult.summary`.
    """
    import_distributed()
    if client is not None and scheduler is not None:
        raise ValueError("pass a client or a scheduler address, not both")
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker),
                        ("torch_threads", torch_threads), ("max_runs", max_runs)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    say = echo or (lambda _: None)
    plan = plan_sweep(config, out, rerun_failed=rerun_failed)
    for message in plan.warnings:
        warnings.warn(message, stacklevel=2)
    pending = plan.pending[:max_runs] if max_runs is not None else plan.pending
    say(f"{len(plan.runs)} runs: {plan.n_done} already in {plan.out}, {len(pending)} to run now"
        + (f", {len(plan.pending) - len(pending)} left for later" if len(pending) < len(plan.pending) else ""))
    table = ResultsTable(plan.out, table_fields(plan.config))
    if pending:
        table.prepare()
        with _connect(client, scheduler, n_workers, threads_per_worker, torch_threads) as cl:
            _execute(cl, plan.config, pending, table, torch_threads, progress, say)
    current = table.read()
    # the grid values come from the run: a row written before a value moved into the grid lacks them
    rows = [{**current[r.key], **grid_cells(r)} for r in plan.runs if r.key in current]
    return SweepResult(plan.out, rows, list(plan.config.grid), len(plan.runs), plan.n_done, len(pending))


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"nica sweep runs on Dask distributed, which is not installed: {INSTALL_HINT}") from None
    return distributed


@contextmanager
def _connect(client: Any, scheduler: str | None, n_workers: int | None, threads_per_worker: int,
             torch_threads: int) -> Iterator[Any]:
    """The caller's client, a client of ``scheduler``, or a new local cluster (closed on exit)."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as c:
            yield c
        return
    if n_workers is None:
        n_workers = max(1, usable_cpus() // (threads_per_worker * torch_threads))
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def _execute(client: Any, config: SweepConfig, pending: list[Run], table: ResultsTable, torch_threads: int,
             progress: bool, say: Callable[[str], None]) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm

    # this call's own task keys: a scheduler outlives a sweep, and a key it still holds from an
    # earlier call (an erred data task not yet released) would hand back that old outcome
    call = uuid.uuid4().hex[:8]
    data: dict[int | None, Any] = {}
    for seed in dict.fromkeys(r.data_seed for r in pending):
        if config.data.path is not None:  # read here, sent to the workers: no shared file system needed
            data[seed] = client.scatter(config.data.load(None))
        else:
            identity = hashlib.sha256(canonical_json(config.data.generator).encode()).hexdigest()[:16]
            data[seed] = client.submit(_make_data, config.data.generator, seed, key=f"nica-data-{identity}-{seed}-{call}")
    futures = {}
    for run in pending:
        model = config.estimator_for(run.params, model_seed=run.model_seed)
        if model.checkpoint_dir is not None:  # each run checkpoints to its own folder, and resumes from it
            model.set_params(checkpoint_dir=Path(model.checkpoint_dir) / run.key)
        future = client.submit(_run_task, data[run.data_seed], model, config.data.holdout, run.data_seed or 0,
                               torch_threads, key=f"nica-run-{run.key}-{call}", retries=0)
        futures[future] = run
    bar = tqdm(total=len(pending), unit="run", disable=not progress, desc="sweep")
    n_failed = 0
    try:
        for future in as_completed(list(futures)):
            run = futures.pop(future)
            try:
                measured = future.result()
            except Exception as exc:  # the task itself could not run (its data failed, a worker died)
                measured = {"status": "failed", "error": one_line(exc), "finished_at": _now()}
            table.append(table_row(config, run, measured))
            future.release()
            n_failed += measured["status"] != "ok"
            bar.update()
            bar.set_postfix_str(f"failed {n_failed}" + (f", last MCC {measured['mcc']:.3f}" if "mcc" in measured
                                                         else ""))
    except KeyboardInterrupt:
        client.cancel(list(futures))
        say(f"interrupted: {len(pending) - len(futures)} of {len(pending)} runs written to {table.path}; "
            "run the same command again to resume")
        raise
    finally:
        bar.close()


# ---------------------------------------------------------------------- one run, on a worker
def _split(u: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out row indices; categorical u is split within each label."""
    rng = np.random.default_rng(seed)
    n = len(u)
    labels = np.unique(u, axis=0, return_inverse=True)[1].reshape(n)
    groups = [np.nonzero(labels == g)[0] for g in range(labels.max() + 1)] if labels.max() < n // 2 \
        else [np.arange(n)]
    held = np.concatenate([rng.permutation(g)[: round(fraction * len(g))] for g in groups])
    mask = np.zeros(n, bool)
    mask[held] = True
    return np.nonzero(~mask)[0], np.nonzero(mask)[0]


def _fit_and_evaluate(data: Dataset, model: Any, holdout: float, split_seed: int) -> dict[str, Any]:
    """Fit on the training rows; MCC of the posterior mean, training ELBO, score and time."""
    x, u, s = data.x, data.u, data.s
    train, test = _split(u, holdout, split_seed) if holdout > 0 else (np.arange(len(x)), None)
    # a run with checkpoints continues where a killed sweep left it (the folder is the run's own)
    model.fit(x[train], u[train], resume=model.checkpoint_dir is not None)
    z = model.transform(x[train], u[train])
    measured: dict[str, Any] = {
        "mcc": mean_corr_coef(s[train], z), "train_score": model.score_,
        "elbo": model.score_ if model.score_name == "ELBO" else "", "fit_time": model.fit_time_,
        "steps": model.n_steps_,
    }
    if test is None:
        measured.update(score=model.score(x, u), score_on="train")
    else:
        z_test = model.transform(x[test], u[test])
        measured.update(heldout_mcc=mean_corr_coef(s[test], z_test), score=model.score(x[test], u[test]),
                        score_on="heldout")
    return measured


def _run_task(data: Dataset, model: Any, holdout: float, split_seed: int, torch_threads: int) -> dict[str, Any]:
    """One run as a Dask task; an error becomes a failed row rather than a failed task."""
    torch.set_num_threads(torch_threads)  # workers x threads x torch threads within the cores
    start = time.perf_counter()
    try:
        measured = {**_fit_and_evaluate(data, model, holdout, split_seed), "status": "ok", "error": ""}
    except Exception as exc:  # recorded in the table; the sweep goes on
        measured = {"status": "failed", "error": one_line(exc), "fit_time": time.perf_counter() - start}
    return {**measured, "worker": _worker_name(), "finished_at": _now()}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
