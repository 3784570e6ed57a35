"""``nica info``: what a saved model is and how it was trained."""

from __future__ import annotations

import json
import math
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
    if as_json:  # strict JSON: a non-finite value (an ELBO of -inf) is null, never -Infinity
        click.echo(json.dumps(finite_json(record), indent=2, allow_nan=False))
        return
    lines = info_lines(record)
    label_width = max(11, *(len(label) for label, _ in lines))
    for label, value in lines:
        click.echo(f"{label:<{label_width}} {value}")
    unused = set(record.get("model", {}).get("unused_params", []))
    shown = {name: value for name, value in record["params"].items() if name not in unused}
    click.echo("settings")
    width = max(map(len, shown))
    rule = record.get("model", {}).get("selection_rule")
    for name, value in shown.items():
        note = f"  (kept by {rule})" if name == "selection" and rule is not None and rule != value else ""
        click.echo(f"  {name:<{width}}  {value!r}{note}")
    if unused:
        click.echo(f"  (not used by this model: {', '.join(sorted(unused))})")


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no infinities)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def info_lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``nica info``'s summary as (label, value) rows; the settings follow them."""
    import numpy as np

    data, train, restarts = record["data"], record["training"], record["restarts"]
    u = data["u"]
    temporal = record["estimator"] in ("TemporalIVAE", "SwitchingTemporalFlow")
    u_text = {"none": "no u" + (" (plain VAE)" if record["estimator"] in ("VAE", "BetaVAE", "BetaTCVAE") else ""),
              "categorical": f"u categorical, {u.get('n_labels')} labels",
              "continuous": f"u continuous, {u.get('dim')} column(s)"}[u["kind"]]
    # every model records its training score: the iVAE family's ELBO, the flows' exact
    # log-likelihood (per sample, or per step of a series; units of X), TCL's label log-likelihood
    name = SHORT_NAMES.get(train["score_name"], train["score_name"])
    curve_values, final = train["score"], train["final_score"]
    epochs = sorted({int(round(i)) for i in np.linspace(0, len(curve_values) - 1,
                                                        min(len(curve_values), CURVE_POINTS))})
    curve = ", ".join(f"{i + 1}: {curve_values[i]:.4g}" for i in epochs)
    unit = "step" if temporal else "sample"
    k = restarts["n_restarts"]
    model = record.get("model", {})
    if "log_likelihood" in restarts:  # the identifiable flow: exact, after training, on every row
        final_how = "exact, the kept restart on all training rows"
        curve_how = ("mean over mini-batches" + (" and restarts" if k > 1 else "") + " while training"
                     + (", of the principal components alone" if "principal" in data.get("input", "") else ""))
    else:
        final_how = "the last epoch's mean" + (", kept restart" if k > 1 else "")
        curve_how = "each epoch's mean over mini-batches" + (" and restarts" if k > 1 else "")
    kept = (f"; restart {restarts['selected']} of {k} kept by {model.get('selection_rule', 'its rule')}"
            if k > 1 else "")
    rows = [
        ("model", f"{record['path']} ({record['estimator']}, model format {record['format_version']})"),
        ("saved by", f"nica {record['nica_version']}, torch {record['torch_version']}"
                     + (f"; fitted on {record['fitted_device']}" if record.get("fitted_device") else "")),
        ("seed", str(record["seed"])),
        ("data", f"{data['n_features']} features -> {data['n_components']} components"
                 + (f" (the flow models the {data['input']})" if "principal" in data.get("input", "") else "")
                 + f"; {u_text}"),
    ]
    names = data.get("feature_names")
    if names:
        rows.append(("features", ", ".join(names[:12]) + (f" ... ({len(names)} in all)" if len(names) > 12 else "")))
    if model.get("prior"):
        priors = restarts.get("priors")
        spread = ""
        if priors and len(set(priors)) > 1:
            spread = " (restarts: " + ", ".join(f"{p} x{priors.count(p)}" for p in sorted(set(priors))) + ")"
        rows.append(("prior", f"{model['prior']}{' of the kept restart' if spread else ''}{spread}"))
    rows += [
        ("training", f"{train['n_steps']} steps in {train['n_epochs']} epochs, {train['fit_time']:.2f} s; "
                     f"stopped early: {'yes' if train['stopped_early'] else 'no'}"),
        (f"final {name}", f"{final:.4f} per {unit} (units of X; {final_how}){kept}"),
        (f"{name} curve", f"epoch {curve} ({curve_how})"),
    ]
    return rows
