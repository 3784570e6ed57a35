"""``nica predict-u``: which fitted label of u each row of new data most likely has."""

from __future__ import annotations

from pathlib import Path

import click

from nica.cli._common import check_outputs, data_options, overwrite_option, read_xu, user_errors


@click.command("predict-u")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=".csv (a header row) or .npy")
@data_options
@click.option("--proba", is_flag=True, help="write p(u = label | x) for every fitted label instead of the labels")
@click.option("--label-prior", type=click.Choice(["fitted", "uniform"]), default="fitted", show_default=True,
              help="p(u): the label frequencies of the fit data, or uniform")
@overwrite_option()
@user_errors
def predict_u(model_dir: Path, data: Path, out: Path, u_file: Path | None, x_key: str, u_key: str,
              x_cols: str | None, u_cols: str | None, proba: bool, label_prior: str, overwrite: bool) -> None:
    """Predict the label u of each row of DATA under the model in MODEL_DIR (fitted with
    categorical u), from the model's own likelihood: p(u | x) ∝ p(x | u) p(u).

    DATA is read as by ``nica transform``; u is not needed. When DATA does hold u (e.g.
    --u-col), the accuracy against it is printed beside chance.
    """
    import numpy as np

    from nica.datasets.features import align_columns
    from nica.datasets.io import DataFileError, atomic_write
    from nica.persistence import load

    suffix = out.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise DataFileError(f"unsupported output type {out.suffix!r} for {out}; use .npy or .csv")
    check_outputs([out], overwrite, inputs=[data, u_file])
    model = load(model_dir)
    if not hasattr(model, "predict_proba_u"):
        raise ValueError(f"{model_dir} holds a {type(model).__name__}, which cannot predict u; predict-u takes a "
                         "model fitted with categorical u by nica fit (--model auto, flow or ivae)")
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols, need_u=False)
    x = align_columns(ds.x, ds.x_names, getattr(model, "feature_names_in_", None), str(data))
    probabilities = model.predict_proba_u(x, label_prior=label_prior)
    labels = np.asarray(model.u_classes_)
    predicted = labels[probabilities.argmax(axis=1)]
    values = probabilities if proba else predicted
    if suffix == ".npy":
        atomic_write(out, lambda fh: np.save(fh, values), overwrite=overwrite)
    else:
        header = ",".join(f"p(u={label})" for label in labels) if proba else "u"
        rows = ([",".join(f"{p:.6g}" for p in row) for row in probabilities] if proba
                else [str(label) for label in predicted])
        text = "\n".join([header, *rows]) + "\n"
        atomic_write(out, lambda fh: fh.write(text.encode()), overwrite=overwrite)
    what = f"p(u | x) for {len(labels)} labels" if proba else "predicted labels"
    click.echo(f"wrote {out}: {what}, {len(predicted)} rows")
    if ds.u is not None:  # labels unseen at fit time are an error here, as at fit time
        truth = model.aux_encoder_.label_index(ds.u)
        accuracy = float(np.mean(probabilities.argmax(axis=1) == truth))
        source = (u_file if u_file is not None else data).name
        click.echo(f"accuracy against the u in {source}: {accuracy:.3f} (chance {1 / len(labels):.3f})")
