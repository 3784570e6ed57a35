"""``nica info``: what a saved model is and how it was trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from nica.cli._common import user_errors

#: epochs shown in ``nica info``'s compact training curve
CURVE_POINTS = 6
#: how ``nica info`` labels a training score
SHORT_NAMES = {"log-likelihood": "log-lik.", "label log-likelihood": "label log-lik."}


@click.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print the full record as JSON (every epoch's ELBO)")
@user_errors
def info(model_dir: Path, as_json: bool) -> None:
    """Settings, seed, versions and training summary of the model saved in MODEL_DIR."""
    from nica.persistence import model_info

    record = model_info(model_dir)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    lines = info_lines(record)
    label_width = max(11, *(len(label) for label, _ in lines))
    for label, value in lines:
        click.echo(f"{label:<{label_width}} {value}")
    click.echo("settings")
    width = max(map(len, record["params"]))
    for name, value in record["params"].items():
        click.echo(f"  {name:<{width}}  {value!r}")


def info_lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``nica info``'s summary as (label, value) rows; the settings follow them."""
    import numpy as np

    data, train = record["data"], record["training"]
    u = data["u"]
    u_text = {"none": "no u" + (" (plain VAE)" if record["estimator"] in ("VAE", "BetaVAE", "BetaTCVAE") else ""),
              "categorical": f"u categorical, {u.get('n_labels')} labels",
              "continuous": f"u continuous, {u.get('dim')} column(s)"}[u["kind"]]
    # every model records its training score: the iVAE family's ELBO, the flow's exact
    # log-likelihood (both per sample, units of X), TCL's label log-likelihood
    name = SHORT_NAMES.get(train["score_name"], train["score_name"])
    elbo = train["score"]
    epochs = sorted({int(round(i)) for i in np.linspace(0, len(elbo) - 1, min(len(elbo), CURVE_POINTS))})
    curve = ", ".join(f"{i + 1}: {elbo[i]:.4g}" for i in epochs)
    return [
        ("model", f"{record['path']} ({record['estimator']}, model format {record['format_version']})"),
        ("saved by", f"nica {record['nica_version']}, torch {record['torch_version']}"
                     + (f"; fitted on {record['fitted_device']}" if record.get("fitted_device") else "")),
        ("seed", str(record["seed"])),
        ("data", f"{data['n_features']} features -> {data['n_components']} components; {u_text}"),
        ("training", f"{train['n_steps']} steps in {train['n_epochs']} epochs, {train['fit_time']:.2f} s; "
                     f"stopped early: {'yes' if train['stopped_early'] else 'no'}"),
        (f"final {name}", f"{train['final_score']:.4f} per sample (units of X)"
                       + (f"; restart {record['restarts']['selected']} kept of {record['restarts']['n_restarts']}"
                          if record["restarts"]["n_restarts"] > 1 else "")),
        (f"{name} curve", f"epoch {curve}"),
    ]
