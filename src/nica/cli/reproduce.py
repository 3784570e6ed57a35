"""``nica reproduce``: run one of the paper's experiments (or all) from the command line
(:mod:`nica.experiments`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from nica.cli._common import overwrite_option, user_errors


def describe_config(config: Any) -> str:
    """``seeds=5, n_sources=5, ...``: the configuration's fields, empty ones left out."""
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value in ({}, ()):
            continue
        parts.append(f"{f.name}={value}")
    return ", ".join(parts)


def list_experiments(echo: Any = click.echo) -> None:
    from nica.experiments import EXPERIMENTS

    for name, experiment in EXPERIMENTS.items():
        echo(f"{name:<15} {experiment.figure:<15} {experiment.title}")
        for size in ("full", "quick"):
            echo(f"{'':<16}{size}: {describe_config(experiment.config(size))}")


@click.command("reproduce")
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="list the experiments and their configurations")
@click.option("--quick", is_flag=True, help="the quick configuration: fewer seeds, fewer steps, smaller data")
@click.option("--smoke", is_flag=True, hidden=True, help="the tests' tiny configuration")
@click.option("--seeds", "n_seeds", type=click.IntRange(min=1),
              help="number of data seeds (3001, 3002, ...)  [default: the configuration's]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("nica-reproduce"),
              show_default=True, help="folder for NAME.csv and NAME.png")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="fits in parallel (processes with one torch thread each; results do not depend on it)")
@overwrite_option("replace existing NAME.csv / NAME.png")
@click.option("--methods", help="only these methods, comma-separated (e.g. 'iVAE (16 restarts)'; names as in "
              "the CSV's method column)")
@click.option("--values", help="only the fits at these values of the experiment's setting, comma-separated "
              "(e.g. '40' for 40 segments; see the CSV's value column)")
@click.option("--merge", is_flag=True, help="with --methods and/or --values: keep the rows of an existing "
              "NAME.csv that this run does not redo and replace the others (the figure is redrawn from all)")
@user_errors
def reproduce_command(name: str | None, list_only: bool, quick: bool, smoke: bool, n_seeds: int | None,
                      out: Path, jobs: int, overwrite: bool, methods: str | None, values: str | None,
                      merge: bool) -> None:
    """Run the paper's experiment NAME (or 'all'): a CSV of every fit, a figure, a summary.

    NAME is one of dynamics, latent-dim, segments, easy, discrete, select-dim,
    select-hparams, iflow, dependent-latents, causal, temporal, regimes (see --list). The
    default is the paper's full configuration (hours on a laptop CPU); --quick runs a small
    one in minutes.
    """
    _reproduce(name, list_only, quick, smoke, n_seeds, out, jobs, overwrite, methods, merge, values)


def _comma_list(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def _reproduce(name: str | None, list_only: bool, quick: bool, smoke: bool, n_seeds: int | None, out: Path,
               jobs: int, overwrite: bool, methods: str | None = None, merge: bool = False,
               values: str | None = None) -> None:
    from nica.experiments import EXPERIMENTS, get_experiment, run_experiment
    from nica.experiments._core import output_paths

    if list_only:
        list_experiments()
        return
    if name is None:
        raise click.UsageError("name an experiment (or 'all'); see nica reproduce --list")
    if quick and smoke:
        raise ValueError("--quick and --smoke are two sizes; pass one")
    size = "smoke" if smoke else "quick" if quick else "full"
    names = list(EXPERIMENTS) if name == "all" else [get_experiment(name).name]
    if merge and methods is None and values is None:
        raise click.UsageError("--merge keeps the rows this run does not redo: it needs --methods or --values")
    for each in names:  # refuse before any fit, also for the later experiments of 'all'
        for path in output_paths(each, out):
            if path.exists() and not overwrite and not merge:
                raise FileExistsError(f"{path} already exists; pass --overwrite to replace it "
                                      "(or --merge with --methods / --values to replace only those rows)")
    for each in names:
        experiment = get_experiment(each)
        click.echo(f"{each} ({experiment.figure}: {experiment.title}), {size} configuration, "
                   f"{jobs} job(s)")
        result = run_experiment(each, size=size, n_seeds=n_seeds, out=out, jobs=jobs, overwrite=overwrite,
                                echo=click.echo, methods=_comma_list(methods), merge=merge,
                                values=_comma_list(values))
        seeds = result.seeds
        click.echo(f"\n{each}: {len(result.rows)} rows in {result.csv_path}, figure {result.png_path} "
                   f"({result.seconds:.0f} s; data seeds {seeds[0]}-{seeds[-1]})")
        click.echo(result.table)
        click.echo(experiment.paper)
        if result.n_failed:
            click.echo(f"Warning: {result.n_failed} fit(s) failed; their errors are in {result.csv_path}",
                       err=True)
        click.echo("")
