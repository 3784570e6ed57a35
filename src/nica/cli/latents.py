"""``nica transform`` (the latents of data under a saved model) and ``nica evaluate`` (their
MCC against the true sources)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nica.cli._common import check_outputs, data_options, overwrite_option, read_xu, user_errors


@click.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".npy or .csv")
@data_options
@click.option("--sample", is_flag=True, help="one posterior sample instead of the posterior mean")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --sample")
@overwrite_option()
@user_errors
def transform(model_dir: Path, data: Path, out: Path, u_file: Path | None, x_key: str, u_key: str,
              x_cols: str | None, u_cols: str | None, sample: bool, seed: int, overwrite: bool) -> None:
    """Write the latents of DATA under the model in MODEL_DIR to --out (.npy or .csv).

    DATA is read as by ``nica fit``, with the same --x-cols/--u-col or --x-key/--u-key.
    u may be left out (new data whose u is unknown) unless the model's encoder sees u
    (fitted with --encoder-sees-u or --preset authors); the latents are the same.
    """
    from nica.datasets.features import align_columns
    from nica.datasets.io import DataFileError, save_array
    from nica.persistence import load

    if Path(out).suffix.lower() not in (".npy", ".csv"):
        raise DataFileError(f"unsupported output type {out.suffix!r} for {out}; use .npy or .csv")
    check_outputs([out], overwrite, inputs=[data, u_file])
    model = load(model_dir)
    config = getattr(model, "config_", None)  # only an encoder q(z | x, u) needs u
    need_u = bool(getattr(config, "conditional", False) and getattr(config, "encoder_sees_u", False))
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols, need_u=need_u)
    x = align_columns(ds.x, ds.x_names, getattr(model, "feature_names_in_", None), str(data))
    if sample and not hasattr(model, "sample_posterior"):
        raise ValueError(f"--sample draws from an iVAE's posterior; the latents of a {type(model).__name__} "
                         "are a deterministic function of x")
    if sample:
        z = model.sample_posterior(x, ds.u, n_samples=1, random_state=seed)[0]
    else:
        z = model.transform(x, ds.u)
    if getattr(z, "ndim", 2) == 3:  # several series (N, T, n): one row per step, series after series
        z = z.reshape(-1, z.shape[-1])
    save_array(out, z, overwrite=overwrite)
    click.echo(f"wrote {out}: latents {z.shape}")


@click.command()
@click.argument("latents", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--s", "s_file", type=click.Path(path_type=Path), help="true sources from their own file")
@click.option("--s-key", default="s", show_default=True, help="name of s in .npz/HDF5 files")
@click.option("--s-cols", help="s columns of a .csv/.parquet table: names or 0-based indices")
@click.option("--z-key", default="z", show_default=True, help="name of the latents in an .npz/HDF5 LATENTS")
@click.option("--method", type=click.Choice(["pearson", "spearman"]), default="pearson", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="also write the JSON report here")
@overwrite_option()
@user_errors
def evaluate(latents: Path, data: Path, s_file: Path | None, s_key: str, s_cols: str | None, z_key: str,
             method: str, as_json: bool, out: Path | None, overwrite: bool) -> None:
    """MCC between LATENTS and the true sources s in DATA (or --s FILE)."""
    import numpy as np

    from nica.datasets.io import KEYED, TABULAR, DataFileError, atomic_write, load_dataset, read_array
    from nica.metrics import mean_corr_coef, weak_mean_corr_coef

    check_outputs([out] if out is not None else [], overwrite, inputs=[latents, data, s_file])
    z = read_array(latents, z_key if latents.suffix.lower() in KEYED else None)
    ds = load_dataset(data, s_path=s_file, s_key=s_key, s_cols=s_cols, parts=("s",))
    if ds.s is None:
        hint = "--s-cols" if data.suffix.lower() in TABULAR else "--s-key"
        raise DataFileError(f"{data} holds no true sources {s_key!r}; choose them with {hint} "
                            "or pass them with --s FILE")
    s, z = np.asarray(ds.s, dtype=float), np.asarray(z, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    if z.ndim == 1:
        z = z[:, None]
    if len(s) != len(z):
        raise ValueError(f"latents have {len(z)} rows but s has {len(s)}; they must match row for row")
    res = mean_corr_coef(s, z, method, return_details=True)
    weak = weak_mean_corr_coef(s, z)
    report = {"mcc": res.score, "weak_mcc": weak, "method": method,
              "permutation": res.permutation.tolist(), "correlations": res.correlations.tolist()}
    if out is not None:
        text = json.dumps(report, indent=2) + "\n"
        atomic_write(out, lambda fh: fh.write(text.encode()), overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"MCC ({method}): {res.score:.4f}")
    click.echo(f"weak MCC (CCA): {weak:.4f}")
    click.echo("per source: " + ", ".join(f"s{i}->z{p} {c:+.3f}" for i, (p, c)
                                          in enumerate(zip(res.permutation, res.correlations))))
    if out is not None:
        click.echo(f"wrote {out}")
