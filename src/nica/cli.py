"""The ``nica`` command line: simulate, fit, transform, evaluate, demo."""

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

from nica.datasets.io import DataFileError, load_dataset, save_array, save_npz
from nica.presets import PRESETS

#: errors that are the user's to fix: printed as one line, exit code 1, no traceback
USER_ERRORS = (DataFileError, ValueError, TypeError, FileExistsError, FileNotFoundError,
               FloatingPointError)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's input errors into a one-line ``Error: ...`` message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nica")
@click.pass_context
def main(ctx: click.Context) -> None:
    """nica: identifiable VAEs and nonlinear ICA."""
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

    data = make_nonstationary(
        n_sources, n_obs, n_segments, per_segment, n_layers=layers, base_noise=prior,
        activation=activation, uncentered=uncentered, repeat_matrix=not fresh_matrices,
        noise_std=noise, discrete=discrete, random_state=seed,
    )
    save_npz(out, overwrite=overwrite, x=data.x, u=data.u, s=data.s, means=data.means,
             scales=data.scales)
    click.echo(f"wrote {out}: x {data.x.shape}, u {data.u.shape} ({n_segments} segments), s {data.s.shape}")


def _read_xu(data: Path, u_file: Path | None, need_u: bool = True):
    ds = load_dataset(data, u_path=u_file)
    if ds.x.ndim == 1:  # a single observed feature stored as a flat column
        ds.x = ds.x[:, None]
    if need_u and ds.u is None:
        raise DataFileError(f"{data} has no auxiliary variable 'u'; add it to the .npz or pass --u FILE")
    return ds


@main.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--n-components", type=int, required=True, help="latent dimension")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="model directory")
@click.option("--u", "u_file", type=click.Path(path_type=Path), help="u from its own .npy/.csv")
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
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@click.option("--quiet", is_flag=True, help="no progress bar")
@user_errors
def fit(data: Path, n_components: int, out: Path, u_file: Path | None, preset: str, seed: int,
        epochs: float | None, max_steps: int | None, quiet: bool, overwrite: bool, **options: Any) -> None:
    """Fit an iVAE to DATA (.npz with x and u, or .npy/.csv with --u) and save it to --out."""
    from nica.estimator import IVAE

    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    ds = _read_xu(data, u_file)
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
    model.fit(ds.x, ds.u)
    model.save(out, overwrite=overwrite)
    click.echo(f"fitted in {model.fit_time_:.1f} s ({model.n_steps_} steps), "
               f"ELBO {model.elbo_:.3f} per sample; saved to {out}")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help=".npy or .csv")
@click.option("--u", "u_file", type=click.Path(path_type=Path), help="u from its own .npy/.csv")
@click.option("--sample", is_flag=True, help="one posterior sample instead of the posterior mean")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for --sample")
@click.option("--overwrite", is_flag=True, help="replace --out if it exists")
@user_errors
def transform(model_dir: Path, data: Path, out: Path, u_file: Path | None, sample: bool, seed: int,
              overwrite: bool) -> None:
    """Write the latents of DATA under the model in MODEL_DIR to --out."""
    from nica.persistence import load

    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    model = load(model_dir)
    ds = _read_xu(data, u_file, need_u=model.config_.conditional)
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
@click.option("--method", type=click.Choice(["pearson", "spearman"]), default="pearson", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
@user_errors
def evaluate(latents: Path, data: Path, s_file: Path | None, method: str, as_json: bool) -> None:
    """MCC between LATENTS (.npy/.csv) and the true sources s in DATA."""
    from nica.datasets.io import read_array
    from nica.metrics import mean_corr_coef, weak_mean_corr_coef

    z = read_array(latents, "z")
    ds = load_dataset(data, s_path=s_file)
    if ds.s is None:
        raise DataFileError(f"{data} holds no true sources 's'; pass them with --s FILE")
    s, z = np.asarray(ds.s, dtype=float), np.asarray(z, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    if z.ndim == 1:
        z = z[:, None]
    if len(s) != len(z):
        raise ValueError(f"latents have {len(z)} rows but s has {len(s)}; they must match row for row")
    res = mean_corr_coef(s, z, method, return_details=True)
    weak = weak_mean_corr_coef(s, z)
    if as_json:
        click.echo(json.dumps({"mcc": res.score, "weak_mcc": weak, "method": method,
                               "permutation": res.permutation.tolist(),
                               "correlations": res.correlations.tolist()}))
        return
    click.echo(f"MCC ({method}): {res.score:.4f}")
    click.echo(f"weak MCC (CCA): {weak:.4f}")
    click.echo("per source: " + ", ".join(f"s{i}->z{p} {c:+.3f}" for i, (p, c)
                                          in enumerate(zip(res.permutation, res.correlations))))


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("nica-output"),
              show_default=True, help="where the figure goes")
@click.option("--seed", default=2020, show_default=True, help="data seed")
@click.option("--quick", is_flag=True, help="a small problem that runs in seconds (for smoke tests)")
@user_errors
def demo(out_dir: Path, seed: int, quick: bool) -> None:
    """Simulate the paper's benchmark, fit iVAE and a plain VAE, compare, and plot."""
    from nica.demo import run_demo

    run_demo(out_dir, seed=seed, quick=quick, echo=click.echo)


from nica.sweep import sweep_command  # noqa: E402  (nica sweep lives in its own module)

main.add_command(sweep_command)

from nica.experiments import reproduce_command  # noqa: E402  (nica reproduce: the paper's experiments)
main.add_command(reproduce_command)

if __name__ == "__main__":
    sys.exit(main())
