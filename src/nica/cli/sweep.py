"""``nica sweep``: a grid of data seeds x model seeds x hyperparameters on Dask
(:mod:`nica.sweep`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from nica.cli._common import user_errors


@click.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="results table (CSV); default: out in the config")
@click.option("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786 "
              "(default: a local cluster)")
@click.option("--workers", "n_workers", type=click.IntRange(min=1),
              help="local worker processes  [default: cores / (threads per worker x torch threads)]")
@click.option("--threads-per-worker", type=click.IntRange(min=1), help="runs side by side in each local "
              "worker  [default: 1]")
@click.option("--torch-threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads of each fit")
@click.option("--rerun-failed", is_flag=True, help="run again the runs recorded as failed")
@click.option("--max-runs", type=click.IntRange(min=1), help="run at most this many new runs now")
@click.option("--dry-run", is_flag=True, help="validate the config, count the runs to do, and exit")
@click.option("--quiet", is_flag=True, help="no progress bar")
@user_errors
def sweep_command(config: Path, out: Path | None, scheduler: str | None, n_workers: int | None,
                  threads_per_worker: int | None, torch_threads: int, rerun_failed: bool,
                  max_runs: int | None, dry_run: bool, quiet: bool) -> None:
    """Run CONFIG's grid of data seeds x model seeds x hyperparameters on Dask.

    CONFIG is a .toml or .yaml file (docs/sweeps.md).  One row per run is appended to the
    results table as runs finish; running the same command again skips the runs already
    there, so an interrupted sweep resumes where it stopped.
    """
    from nica.sweep.execute import import_distributed, plan_sweep, run_sweep

    if scheduler is not None and (n_workers is not None or threads_per_worker is not None):
        raise ValueError("--workers and --threads-per-worker shape the local cluster; "
                         "drop them when you pass --scheduler")
    try:
        import_distributed()
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        plan = plan_sweep(config, out, rerun_failed=rerun_failed)
        for message in plan.warnings:
            warnings.warn(message, stacklevel=1)
        click.echo(f"config OK: {len(plan.config.data_seeds)} data seed(s) x {len(plan.config.model_seeds)} "
                   f"model seed(s) x {len(plan.config.combinations())} combination(s) = {len(plan.runs)} runs; "
                   f"{plan.n_done} already in {plan.out}, {len(plan.pending)} to run")
        return
    result = run_sweep(config, out, scheduler=scheduler, n_workers=n_workers,
                       threads_per_worker=threads_per_worker or 1, torch_threads=torch_threads,
                       rerun_failed=rerun_failed, max_runs=max_runs, progress=not quiet, echo=click.echo)
    click.echo(f"{result.n_computed} runs done now, {len(result.rows)} of {result.n_runs} in {result.out}"
               f" ({result.n_failed} failed)")
    if result.rows:
        click.echo(result.summary())
    if result.n_failed:  # the table records why; the exit code says that not every run succeeded
        raise click.ClickException(f"{result.n_failed} of {len(result.rows)} runs failed (their error is in the "
                                   f"error column of {result.out}); fix the cause and run again with --rerun-failed")
