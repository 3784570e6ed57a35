"""The ``nica`` command line: simulate, fit, transform, evaluate, info, demo.

No command replaces an existing output unless given ``--overwrite``; outputs are checked
before any work and written atomically, so a failed command leaves no partial file.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from nica.datasets.io import (
    KEYED,
    TABULAR,
    DataFileError,
    atomic_write,
    load_dataset,
    refuse_existing,
    save_array,
    save_npz,
)
from nica.datasets.tabular import MissingDependencyError
from nica.presets import PRESETS

#: errors that are the user's to fix: printed as one line, exit code 1, no traceback
#: (OSError covers existing, missing, unreadable and unwritable paths)
USER_ERRORS = (DataFileError, ValueError, TypeError, OSError, FloatingPointError, MissingDependencyError)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's input errors into a one-line ``Error: ...`` message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            # one line whatever the message: some libraries' messages span several
            raise click.ClickException(" ".join(str(exc).split())) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nica")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch threads for the command (default: torch's own, one per core). A single "
                   "default fit gains nothing from a second thread, and on a busy machine extra "
                   "threads can make it several times slower (docs/performance.md, Threads)")
@click.pass_context
def main(ctx: click.Context, threads: int | None) -> None:
    """nica: identifiable VAEs and nonlinear ICA."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    # warnings print as one line while a command runs; the caller's handler comes back after
    ctx.with_resource(warnings.catch_warnings())
    warnings.showwarning = _one_line_warning


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    click.echo(f"Warning: {message}", err=True)


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="output .npz")
@click.option("--n-sources", default=5, show_default=True, help="latent dimension n")
@click.option("--n-obs", default=None, type=int, help="observed dimension d (default n)")
@click.option("--n-segments", default=40, show_default=True)
@click.option("--per-segment", default=1000, show_default=True, help="points per segment")
@click.option("--layers", default=3, show_default=True, help="mixing MLP layers")
@click.option("--prior", type=click.Choice(["gauss", "laplace", "hypsecant"]), default="gauss",
              show_default=True, help="base noise of the sources")
@click.option("--activation", type=click.Choice(["xtanh", "lrelu", "none"]), default="xtanh", show_default=True)
@click.option("--uncentered", is_flag=True, help="per-segment source means ~ U(-5, 5)")
@click.option("--fresh-matrices", is_flag=True, help="a new mixing matrix per layer")
@click.option("--noise", default=0.0, show_default=True, help="std of Gaussian noise on x")
@click.option("--discrete", is_flag=True, help="Bernoulli observations")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@user_errors
def simulate(out: Path, n_sources: int, n_obs: int | None, n_segments: int, per_segment: int,
             layers: int, prior: str, activation: str, uncentered: bool, fresh_matrices: bool,
             noise: float, discrete: bool, seed: int, overwrite: bool) -> None:
    """Simulate the iVAE paper's nonstationary benchmark into an .npz (x, u, s, ...)."""
    from nica.datasets import make_nonstationary

    refuse_existing(out, overwrite)
    data = make_nonstationary(
        n_sources, n_obs, n_segments, per_segment, n_layers=layers, base_noise=prior,
        activation=activation, uncentered=uncentered, repeat_matrix=not fresh_matrices,
        noise_std=noise, discrete=discrete, random_state=seed,
    )
    save_npz(out, overwrite=overwrite, x=data.x, u=data.u, s=data.s, means=data.means,
             scales=data.scales)
    click.echo(f"wrote {out}: x {data.x.shape}, u {data.u.shape} ({n_segments} segments), s {data.s.shape}")


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options that say where x and u are in the data file (and their own files)."""
    options = [
        click.option("--u", "u_file", type=click.Path(path_type=Path),
                     help="u from its own file (.npy/.npz/.csv/.parquet/.h5)"),
        click.option("--x-key", default="x", show_default=True, help="name of x in .npz/HDF5 files"),
        click.option("--u-key", default="u", show_default=True, help="name of u in .npz/HDF5 files"),
        click.option("--x-cols", help="x columns of a .csv/.parquet table: names or 0-based indices, "
                                      "comma separated, a:b for a range [default: all but u]"),
        click.option("--u-col", "u_cols", help="u column(s) of a .csv/.parquet table (labels or numbers)"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _read_xu(data: Path, u_file: Path | None, x_key: str, u_key: str, x_cols: str | None,
             u_cols: str | None, need_u: bool = True):
    ds = load_dataset(data, u_path=u_file, x_key=x_key, u_key=u_key, x_cols=x_cols, u_cols=u_cols,
                      parts=("x", "u"))
    if ds.x.ndim == 1:  # a single observed feature stored as a flat column
        ds.x = ds.x[:, None]
    if need_u and ds.u is None:
        suffix = data.suffix.lower()
        where = (f"add an array {u_key!r} to it (or name it with --u-key)" if suffix in KEYED else
                 "choose its column with --u-col" if suffix in TABULAR else "a .npy file holds x alone")
        raise DataFileError(f"{data} has no auxiliary variable {u_key!r}: {where}, or pass --u FILE")
    return ds


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--n-components", type=int, required=True, help="latent dimension")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="model directory")
@data_options
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="default", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=float, help="training length in passes over the data (overrides --max-steps)")
@click.option("--max-steps", type=int, help="training length in optimiser steps")
@click.option("--batch-size", type=int)
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate")
@click.option("--objective", type=click.Choice(["elbo", "reweighted", "annealed"]))
@click.option("--prior", type=click.Choice(["gaussian", "laplace"]))
@click.option("--prior-mean/--no-prior-mean", default=None, help="learn a u-dependent prior mean")
@click.option("--encoder-sees-u/--encoder-ignores-u", "encoder_sees_u", default=None,
              help="feed u to the encoder, q(z|x,u) (default for --preset authors)")
@click.option("--decoder", type=click.Choice(["gaussian", "bernoulli"]))
@click.option("--decoder-var", help="fixed decoder variance or 'learned'")
@click.option("--hidden-dim", type=int)
@click.option("--layers", "n_layers", type=int, help="layers of every MLP")
@click.option("--u-type", type=click.Choice(["auto", "categorical", "continuous"]))
@click.option("--restarts", "n_restarts", type=int, help="initialisations trained side by side; one is kept")
@click.option("--selection", type=click.Choice(["agreement", "elbo", "first"]),
              help="how the kept restart is chosen (never from true sources)")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="write resumable checkpoints here")
@click.option("--checkpoint-every", type=int, help="steps between checkpoints [default: 1000]")
@click.option("--resume", is_flag=True, help="continue the fit checkpointed in --checkpoint-dir")
@click.option("--stream", is_flag=True,
              help="read x from disk batch by batch (.npy memory-mapped, HDF5 or zarr): for data larger than memory")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@click.option("--quiet", is_flag=True, help="no progress bar")
@user_errors
def fit(data: Path, n_components: int, out: Path, u_file: Path | None, x_key: str, u_key: str,
        x_cols: str | None, u_cols: str | None, preset: str, seed: int, epochs: float | None,
        max_steps: int | None, resume: bool, stream: bool, quiet: bool, overwrite: bool,
        **options: Any) -> None:
    """Fit an iVAE to DATA and save it to --out.

    DATA is an .npz or HDF5 file with arrays x and u, a .csv or .parquet table (u from
    --u-col, x from the other columns or --x-cols), or an .npy of x with --u FILE.
    Under ``torchrun --nproc_per_node K`` the fit is data-parallel and rank 0 saves it.
    """
    from nica.estimator import IVAE
    from nica.training.distributed import rank_and_size

    refuse_existing(out, overwrite)
    if stream:
        from nica.datasets.streaming import open_array

        ds = load_dataset(data, u_path=u_file, u_key=u_key, u_cols=u_cols, parts=("u",))
        if ds.u is None:
            raise DataFileError(f"{data} has no auxiliary variable {u_key!r}; pass --u FILE")
        ds.x = open_array(data, key=x_key)
    else:
        ds = _read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    overrides = {k: v for k, v in options.items() if v is not None}
    if "decoder_var" in overrides and overrides["decoder_var"] != "learned":
        try:
            overrides["decoder_var"] = float(overrides["decoder_var"])
        except ValueError:
            raise ValueError(f"--decoder-var must be a number or 'learned', got {overrides['decoder_var']!r}") from None
    model = IVAE.from_preset(preset, n_components, random_state=seed, verbose=not quiet, **overrides)
    if epochs is not None:
        if epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {epochs}")
        max_steps = max(1, round(epochs * max(1, len(ds.x) // model.batch_size)))
    if max_steps is not None:
        model.set_params(max_steps=max_steps)
    model.fit(ds.x, ds.u, resume=resume)
    if rank_and_size()[0] != 0:  # data-parallel replicas are identical: rank 0 saves
        return
    model.save(out, overwrite=overwrite)
    restarts = (f", restart {model.selected_restart_} of {model.n_restarts} kept by {model.selection}"
                if model.n_restarts > 1 else "")
    click.echo(f"fitted in {model.fit_time_:.1f} s ({model.n_steps_} steps{restarts}), "
               f"ELBO {model.elbo_:.3f} per sample; saved to {out}")


def parse_candidates(text: str) -> list[int]:
    """``"2,3,5"`` or ``"2-8"`` (inclusive) or a mix (``"1,3-5"``) -> the integers named."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-"))
                if high < low:
                    raise ValueError
                values.extend(range(low, high + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not an integer or a range a-b (a <= b)",
                                     param_hint="--candidates") from None
    return values


@main.command("select-n")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--candidates", required=True, help="latent dimensions to try: 2-8, or 2,3,5 (inclusive ranges)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="directory for elbo.csv, elbo.png and model/ (the chosen fit)")
@data_options
@click.option("--rule", type=click.Choice(["knee", "argmax"]), default="knee", show_default=True,
              help="knee: smallest n reaching 95% of the ELBO gain; argmax: highest ELBO")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-steps", type=int, help="training length of each fit in optimiser steps")
@click.option("--batch-size", type=int)
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate")
@click.option("--hidden-dim", type=int)
@click.option("--layers", "n_layers", type=int, help="layers of every MLP")
@click.option("--u-type", type=click.Choice(["auto", "categorical", "continuous"]))
@click.option("--restarts", "n_restarts", type=int, help="restarts per n; the one with the best ELBO is kept")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="each fit checkpoints to DIR/n<k>, resumable")
@click.option("--resume", is_flag=True, help="continue the selection checkpointed in --checkpoint-dir")
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="replace files in --out if they exist")
@click.option("--quiet", is_flag=True, help="no progress bars")
@user_errors
def select_n(data: Path, candidates: str, out: Path, u_file: Path | None, x_key: str, u_key: str,
             x_cols: str | None, u_cols: str | None, rule: str, seed: int, checkpoint_dir: Path | None,
             resume: bool, overwrite: bool, quiet: bool, **options: Any) -> None:
    """Choose the latent dimension of DATA by the ELBO: one iVAE per candidate n.

    Each fit uses the plain ELBO and a learned decoder variance (the settings under which
    ELBOs of different n compare; see nica.model_selection). DATA is read as by ``nica fit``.
    """
    from nica.model_selection import SAVED_FILES, select_n_components

    dims = parse_candidates(candidates)
    for name in SAVED_FILES:  # before any fit
        refuse_existing(out / name, overwrite)
    ds = _read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    overrides = {k: v for k, v in options.items() if v is not None}
    result = select_n_components(ds.x, ds.u, dims, rule=rule, checkpoint_dir=checkpoint_dir, resume=resume,
                                 random_state=seed, progress=not quiet, **overrides)
    result.save(out, overwrite=overwrite)
    click.echo(result.table())
    click.echo(f"chosen n_components = {result.n_components} ({rule}); wrote {out}/elbo.csv, "
               f"{out}/elbo.png and the chosen model to {out}/model")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".npy or .csv")
@data_options
@click.option("--sample", is_flag=True, help="one posterior sample instead of the posterior mean")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --sample")
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@user_errors
def transform(model_dir: Path, data: Path, out: Path, u_file: Path | None, x_key: str, u_key: str,
              x_cols: str | None, u_cols: str | None, sample: bool, seed: int, overwrite: bool) -> None:
    """Write the latents of DATA under the model in MODEL_DIR to --out (.npy or .csv).

    DATA is read as by ``nica fit``, with the same --x-cols/--u-col or --x-key/--u-key.
    """
    from nica.persistence import load

    if Path(out).suffix.lower() not in (".npy", ".csv"):
        raise DataFileError(f"unsupported output type {out.suffix!r} for {out}; use .npy or .csv")
    refuse_existing(out, overwrite)
    model = load(model_dir)
    ds = _read_xu(data, u_file, x_key, u_key, x_cols, u_cols, need_u=model.config_.conditional)
    if sample:
        z = model.sample_posterior(ds.x, ds.u, n_samples=1, random_state=seed)[0]
    else:
        z = model.transform(ds.x, ds.u)
    save_array(out, z, overwrite=overwrite)
    click.echo(f"wrote {out}: latents {z.shape}")


@main.command()
@click.argument("latents", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--s", "s_file", type=click.Path(path_type=Path), help="true sources from their own file")
@click.option("--s-key", default="s", show_default=True, help="name of s in .npz/HDF5 files")
@click.option("--s-cols", help="s columns of a .csv/.parquet table: names or 0-based indices")
@click.option("--z-key", default="z", show_default=True, help="name of the latents in an .npz/HDF5 LATENTS")
@click.option("--method", type=click.Choice(["pearson", "spearman"]), default="pearson", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="also write the JSON report here")
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@user_errors
def evaluate(latents: Path, data: Path, s_file: Path | None, s_key: str, s_cols: str | None, z_key: str,
             method: str, as_json: bool, out: Path | None, overwrite: bool) -> None:
    """MCC between LATENTS and the true sources s in DATA (or --s FILE)."""
    from nica.datasets.io import read_array
    from nica.metrics import mean_corr_coef, weak_mean_corr_coef

    if out is not None:
        refuse_existing(out, overwrite)
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


@main.command()
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
    for label, value in _info_lines(record):
        click.echo(f"{label:<11} {value}")
    click.echo("settings")
    width = max(map(len, record["params"]))
    for name, value in record["params"].items():
        click.echo(f"  {name:<{width}}  {value!r}")


#: epochs shown in ``nica info``'s compact ELBO curve
CURVE_POINTS = 6


def _info_lines(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``nica info``'s summary as (label, value) rows; the settings follow them."""
    data, train = record["data"], record["training"]
    u = data["u"]
    u_text = {"none": "no u (plain VAE)",
              "categorical": f"u categorical, {u.get('n_labels')} labels",
              "continuous": f"u continuous, {u.get('dim')} column(s)"}[u["kind"]]
    elbo = train["elbo"]
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
        ("final ELBO", f"{train['final_elbo']:.4f} per sample (units of X)"
                       + (f"; restart {record['restarts']['selected']} kept of {record['restarts']['n_restarts']}"
                          if record["restarts"]["n_restarts"] > 1 else "")),
        ("ELBO curve", f"epoch {curve}"),
    ]


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("nica-output"),
              show_default=True, help="where the figure goes")
@click.option("--seed", default=2020, show_default=True, help="data seed")
@click.option("--quick", is_flag=True, help="a small problem that runs in seconds (for smoke tests)")
@click.option("--overwrite", is_flag=True, help="replace the figure in --out-dir if it exists")
@user_errors
def demo(out_dir: Path, seed: int, quick: bool, overwrite: bool) -> None:
    """Simulate the paper's benchmark, fit iVAE and a plain VAE, compare, and plot."""
    from nica.demo import run_demo

    run_demo(out_dir, seed=seed, quick=quick, echo=click.echo, overwrite=overwrite)


from nica.sweep.command import sweep_command  # noqa: E402  (nica sweep lives in its own module)

main.add_command(sweep_command)

from nica.experiments.command import reproduce_command  # noqa: E402  (nica reproduce: the paper's experiments)
main.add_command(reproduce_command)

if __name__ == "__main__":
    sys.exit(main())
