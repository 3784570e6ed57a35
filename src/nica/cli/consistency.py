"""``nica consistency``: are the latents the same from seed to seed, and more so than without
identifiability?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nica.cli._common import check_outputs, data_options, overwrite_option, read_xu, user_errors

#: what --reference offers (nica.replication.REFERENCES; listed here so that --help stays free of torch)
REFERENCE_CHOICES = ("vae", "shuffled-u", "none")


@click.command("consistency")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--n-components", type=int, required=True, help="latent dimension")
@data_options
@click.option("--seeds", type=click.IntRange(min=2), default=5, show_default=True,
              help="fits of the model (seeds 0..K-1); as many of each reference")
@click.option("--model", "model_name", default="auto", show_default=True,
              help="auto (what nica fit chooses: the flow for real-valued x) or a model name: ivae, flow")
@click.option("--reference", "references", multiple=True, type=click.Choice(REFERENCE_CHOICES),
              help="references, fitted and measured the same way: vae (prior independent of u: no "
                   "identifiability), shuffled-u (the same model with u permuted across rows: what is left "
                   "without u); repeat the option for several, the first is reported as reference_mcc; 'none' "
                   "for none [default: vae, then shuffled-u]")
@click.option("--holdout", type=float, default=0.0, show_default=True,
              help="fraction of rows left out of every fit; agreement is measured on them (0: on all rows)")
@click.option("--rotate/--no-rotate", default=None,
              help="show each fit X whitened and under a random rotation of its own [default: for the flow, "
                   "whose fits start near the identity; never for binary x]")
@click.option("--threshold", type=float, default=0.9, show_default=True,
              help="components whose agreement across seeds is below it are named as not replicating")
@click.option("--max-steps", type=int, help="training length of each of the model's fits in optimiser steps")
@click.option("--u-type", type=click.Choice(["auto", "categorical", "continuous"]), help="how the model reads u")
@click.option("--jobs", type=click.IntRange(min=1), help="fits at once, one process and torch thread each "
                                                         "[default: the usable CPU cores]")
@click.option("--random-state", type=int, default=0, show_default=True,
              help="seeds the held-out rows, the rotations and the permutations of u")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON (progress goes to stderr)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="folder for consistency.json, consistency.png (the figure) and latents.npz")
@overwrite_option("replace nica's files in --out if they exist")
@click.option("--quiet", is_flag=True, help="no progress lines")
@user_errors
def consistency_command(data: Path, n_components: int, u_file: Path | None, x_key: str, u_key: str,
                        x_cols: str | None, u_cols: str | None, seeds: int, model_name: str,
                        references: tuple[str, ...], holdout: float, rotate: bool | None, threshold: float,
                        max_steps: int | None, u_type: str | None, jobs: int | None, random_state: int, as_json: bool,
                        out: Path | None, overwrite: bool, quiet: bool) -> None:
    """Fit the model to DATA with several seeds and report how far their latents agree
    (strong and weak MCC between seeds, overall and per component) beside references
    without identifiability, measured the same way.

    DATA is read as by ``nica fit``. On real data, where no one knows the sources, this
    is how identifiability shows: an identifiable model gives the same latents from seed
    to seed, and more so than the references (docs/real-data.md).
    """
    from nica.replication import DEFAULT_REFERENCES, SAVED_FILES, consistency

    if "none" in references and len(references) > 1:
        raise click.UsageError("--reference none cannot be combined with other references")
    chosen = () if references == ("none",) else (references or DEFAULT_REFERENCES)
    if out is not None:
        check_outputs([out / name for name in SAVED_FILES], overwrite)  # before any fit
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    given = {"max_steps": max_steps, "u_type": u_type}
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    echo = None if quiet else (lambda line: click.echo(line, err=True))
    result = consistency(ds.x, ds.u, n_components, seeds=seeds, model=model_name, reference=chosen,
                         holdout=holdout, rotate="auto" if rotate is None else rotate, threshold=threshold,
                         n_jobs=jobs, random_state=random_state, echo=echo, **params)
    if out is not None:
        result.save(out, overwrite=overwrite)
    if as_json:
        click.echo(result.to_json())
    else:
        click.echo(result.summary())
    if out is not None:
        click.echo(f"wrote {', '.join(str(out / name) for name in SAVED_FILES)}", err=as_json)
