"""``nica causal``: the causal order of the observed variables (NonSENS, :mod:`nica.causal`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nica.cli._common import data_options, read_xu, user_errors


@click.command("causal")
@click.argument("data", type=click.Path(path_type=Path))
@data_options
@click.option("--method", "unmixing", default="flow", show_default=True,
              help="nonlinear ICA that unmixes the disturbances, a model NonSENS may unmix with "
                   "(nica.causal.nonsens.UNMIXINGS): flow (nica.IFlow), ivae or tcl")
@click.option("--prior-mean/--no-prior-mean", default=None,
              help="flow, iVAE: learn a u-dependent prior mean (for disturbances whose mean changes with u; "
                   "on by default for the flow, off for the iVAE)")
@click.option("--max-steps", type=click.IntRange(min=1), help="training length of the unmixing, in optimiser steps")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="family-wise significance level of the independence tests")
@click.option("--correction", type=click.Choice(["bonferroni", "holm", "none"]), default="bonferroni",
              show_default=True, help="multiple-testing correction over the d x d tests")
@click.option("--test", type=click.Choice(["gamma", "permutation"]), default="gamma", show_default=True,
              help="null distribution of the HSIC test")
@click.option("--pooled", is_flag=True, help="test independence over all rows pooled, not within segments of u")
@click.option("--test-samples", type=click.IntRange(min=20), default=1000, show_default=True,
              help="HSIC is O(n^2): test on a random subsample of this cost (pooled rows; per segment, "
                   "this / sqrt(number of segments) rows)")
@click.option("--names", help="variable names, comma-separated (default x0, x1, ...)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="print one JSON object: order (column indices, causes first), pvalues, ...")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.pass_context
@user_errors
def causal(ctx: click.Context, data: Path, u_file: Path | None, x_key: str, u_key: str, x_cols: str | None, u_cols: str | None,
           unmixing: str, prior_mean: bool | None, max_steps: int | None, alpha: float, correction: str,
           test: str, pooled: bool, test_samples: int, names: str | None, seed: int, device: str,
           as_json: bool, quiet: bool) -> None:
    """Causal order of the variables of DATA (x and u as for ``nica fit``), by NonSENS.

    The disturbances are unmixed by nonlinear ICA (the identifiable flow, nica.IFlow, by
    default), then every variable is tested (HSIC) against every recovered disturbance: a
    cause is independent of its effects' disturbances. Prints the order (causes first), whether the tests
    support it at --alpha, and the p-values; --json prints them as one object.
    """
    from nica.causal import NonSENS
    from nica.causal.nonsens import UNMIXINGS

    if unmixing not in UNMIXINGS:
        raise click.BadParameter(f"{unmixing!r} is not one of {sorted(UNMIXINGS)}", param_hint="'--method'")
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    params: dict[str, Any] = {}
    if prior_mean is not None:
        takers = [name for name, cls in UNMIXINGS.items() if "prior_mean" in cls._param_names()]
        if unmixing not in takers:
            raise ValueError(f"--prior-mean applies to --method {' or '.join(sorted(takers))} only")
        params["prior_mean"] = prior_mean
    if max_steps is not None:
        params["max_steps"] = max_steps
    threads = (ctx.obj or {}).get("threads")
    if threads is not None:  # nica --threads N: the unmixing fit's torch threads (one by default)
        params["n_threads"] = threads
    labels = None if names is None else [n.strip() for n in names.split(",")]
    if labels is not None and len(labels) != ds.x.shape[1]:
        raise ValueError(f"--names gives {len(labels)} names but x has {ds.x.shape[1]} variables")
    model = NonSENS(unmixing, unmixing_params=params, alpha=alpha, correction=correction, test=test,
                    test_given_u=not pooled, max_test_samples=test_samples, device=device, random_state=seed,
                    verbose=not (quiet or as_json))
    model.fit(ds.x, ds.u)
    if as_json:
        click.echo(json.dumps(model.to_dict(labels)))
    else:
        click.echo(model.summary(labels))
