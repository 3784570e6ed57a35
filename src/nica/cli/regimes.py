"""``nica predict-regime`` (the hidden regime of every step of a series under a saved
:class:`nica.SwitchingTemporalFlow`) and the reading of ``nica fit --regimes``."""

from __future__ import annotations

from pathlib import Path
import click

from nica.cli._common import check_outputs, data_options, overwrite_option, read_xu, user_errors


def parse_regimes(text: str) -> int | str:
    """``--regimes``: a positive integer K or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a positive integer nor 'auto'", param_hint="--regimes") from None
    if value < 1:
        raise click.BadParameter(f"the number of regimes must be >= 1, got {value}", param_hint="--regimes")
    return value


@click.command("predict-regime")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".npy or .csv")
@data_options
@click.option("--method", type=click.Choice(["posterior", "viterbi"]), default="posterior", show_default=True,
              help="posterior: the most probable regime of each step (forward-backward); viterbi: the most "
                   "probable path")
@click.option("--proba", is_flag=True, help="write p(regime | series) of every step (K columns) instead")
@overwrite_option()
@user_errors
def predict_regime(model_dir: Path, data: Path, out: Path, u_file: Path | None, x_key: str, u_key: str,
                   x_cols: str | None, u_cols: str | None, method: str, proba: bool, overwrite: bool) -> None:
    """Write the regime of every step of the series in DATA under the model in MODEL_DIR.

    DATA holds x as one series (T, d) or several (N, T, d), read as by ``nica fit``; the
    output has one row per step, series after series (as ``nica transform``).
    """
    import numpy as np

    from nica.datasets.io import DataFileError, save_array
    from nica.persistence import load

    if Path(out).suffix.lower() not in (".npy", ".csv"):
        raise DataFileError(f"unsupported output type {out.suffix!r} for {out}; use .npy or .csv")
    check_outputs([out], overwrite)
    model = load(model_dir)
    if not hasattr(model, "predict_regime"):
        raise ValueError(f"{model_dir} holds a {type(model).__name__}, which has no regimes; fit one with "
                         "nica fit --model temporal --regimes K")
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols, need_u=False)
    u = ds.u if model.aux_encoder_.kind != "categorical" or len(model.aux_encoder_.classes) > 1 else None
    result = model.predict_proba_regime(ds.x, u) if proba else model.predict_regime(ds.x, u, method=method)
    result = np.asarray(result)
    rows = result.reshape(-1, result.shape[-1]) if proba else result.reshape(-1)
    save_array(out, rows, overwrite=overwrite)
    what = f"probabilities of {model.n_regimes_} regimes" if proba else f"regimes (of {model.n_regimes_})"
    click.echo(f"wrote {out}: {what} of {len(rows)} steps")
