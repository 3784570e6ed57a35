"""``nica fit`` (one iVAE, saved) and ``nica select-n`` (the latent dimension by the ELBO)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nica.cli._common import check_model_outputs, check_outputs, data_options, overwrite_option, read_xu, \
    user_errors
from nica.presets import PRESETS


#: options that only the iVAE takes (``nica fit --model ivae``, or auto on binary or streamed X)
IVAE_ONLY = ("preset", "objective", "encoder_sees_u", "decoder", "decoder_var", "stream")


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--n-components", type=int, required=True, help="latent dimension")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="model directory")
@data_options
@click.option("--model", "model_name", default="auto", show_default=True,
              help="auto (the identifiable flow for real-valued x, on its top principal components when "
                   "--n-components is smaller than its number of features; the iVAE for binary x or --stream), "
                   "or a model name: ivae, flow; or temporal: nica.TemporalIVAE on a series, x (T, d) and u "
                   "the domain of each step (optional)")
@click.option("--lags", type=int, help="--model temporal: past steps the transition reads [default: 1]")
@click.option("--regimes", help="--model temporal: K hidden regimes whose transitions differ, or 'auto' (K "
                                "by held-out likelihood): nica.SwitchingTemporalFlow")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="iVAE configuration [default: default]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=float, help="training length in passes over the data (overrides --max-steps)")
@click.option("--max-steps", type=int, help="training length in optimiser steps")
@click.option("--batch-size", type=int)
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate")
@click.option("--objective", type=click.Choice(["elbo", "reweighted", "annealed"]), help="iVAE objective")
@click.option("--prior", type=click.Choice(["gaussian", "laplace"]))
@click.option("--prior-mean/--no-prior-mean", default=None, help="learn a u-dependent prior mean")
@click.option("--encoder-sees-u/--encoder-ignores-u", "encoder_sees_u", default=None,
              help="feed u to the iVAE's encoder, q(z|x,u) (default for --preset authors)")
@click.option("--decoder", type=click.Choice(["gaussian", "bernoulli"]), help="iVAE decoder")
@click.option("--decoder-var", help="iVAE: fixed decoder variance or 'learned'")
@click.option("--hidden-dim", type=int)
@click.option("--layers", "n_layers", type=int, help="layers of every MLP")
@click.option("--u-type", type=click.Choice(["auto", "categorical", "continuous"]))
@click.option("--restarts", "n_restarts", type=int, help="initialisations trained side by side; one is kept")
@click.option("--selection", type=click.Choice(["agreement", "elbo", "first"]),
              help="how the kept restart is chosen (never from true sources; for the flow 'elbo' is "
                   "its exact log-likelihood)")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              help="keep the fit's checkpoints here [default: a working folder .NAME.checkpoints "
                   "beside --out, removed when the fit succeeds]")
@click.option("--checkpoint-every", type=int, help="steps between checkpoints [default: 1000]")
@click.option("--resume", is_flag=True, default=None,
              help="continue an interrupted fit: run the same command again with --resume")
@click.option("--stream", is_flag=True, default=None,
              help="read x from disk batch by batch (.npy memory-mapped, HDF5 or zarr): for data larger than memory")
@click.option("--device", default="auto", show_default=True)
@overwrite_option()
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.pass_context
@user_errors
def fit(ctx: click.Context, data: Path, n_components: int, out: Path, u_file: Path | None, x_key: str,
        u_key: str, x_cols: str | None, u_cols: str | None, model_name: str, lags: int | None,
        regimes: str | None, seed: int, epochs: float | None, max_steps: int | None, quiet: bool, overwrite: bool,
        **options: Any) -> None:
    """Fit a model to DATA and save it to --out.

    DATA is an .npz or HDF5 file with arrays x and u, a .csv or .parquet table (u from
    --u-col, x from the other columns or --x-cols), or an .npy of x with --u FILE.
    With --model auto (the default) the model is the identifiable flow for real-valued x
    (on its top principal components when the latent dimension is smaller than the
    number of features) and the iVAE for binary x or --stream (nica.model_choice). Under ``torchrun --nproc_per_node K`` an iVAE fit is
    data-parallel and rank 0 saves it. With --model temporal, x is one series (T, d) (or
    several, (N, T, d)) and u, when present, the domain of each step; with --regimes K
    (or auto) the transition switches with a hidden Markov regime (nica.SwitchingTemporalFlow;
    also used when --n-components is below the number of features: a flow on the top
    principal components), and ``nica predict-regime`` reads the regimes of new series.
    """
    if model_name == "temporal":
        _fit_temporal(data, n_components, out, (u_file, x_key, u_key, x_cols, u_cols), lags, seed, epochs,
                      max_steps, quiet, overwrite, options, (ctx.obj or {}).get("threads"), regimes)
        return
    if regimes is not None:
        raise click.UsageError("--regimes applies to --model temporal only")
    if lags is not None:
        raise click.UsageError("--lags applies to --model temporal only")
    import numpy as np

    from nica._checkpointing import checkpoints_beside
    from nica.datasets.io import DataFileError, Dataset, load_dataset
    from nica.model_choice import MODELS, ModelChoice, choose_model, make_model
    from nica.training.distributed import rank_and_size

    check_model_outputs(out, overwrite)
    checkpoint_dir = options.pop("checkpoint_dir")
    given = {k: v for k, v in options.items() if v is not None}
    stream, resume = bool(given.pop("stream", False)), bool(given.pop("resume", False))
    if model_name != "auto" and model_name not in MODELS:
        raise ValueError(f"unknown --model {model_name!r}; choose auto or one of {sorted(MODELS)}")
    if stream:
        from nica.datasets.streaming import open_array, read_store_array

        if data.suffix.lower() == ".zarr" and u_file is None:  # a zarr store is a folder of arrays
            ds = Dataset(x=None, u=read_store_array(data, u_key))
        else:
            ds = load_dataset(data, u_path=u_file, u_key=u_key, u_cols=u_cols, parts=("u",))
        if ds.u is None:
            raise DataFileError(f"{data} has no auxiliary variable {u_key!r}; pass --u FILE")
        ds.x = open_array(data, key=x_key)
    else:
        ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    choice = choose_model(ds.x, n_components) if model_name == "auto" else ModelChoice(model_name)
    chosen = choice.name
    if chosen != "ivae":
        flags = {**given, "stream": stream or None}
        misplaced = [f"--{k.replace('_', '-')}" for k in IVAE_ONLY if flags.get(k) is not None]
        if misplaced:
            reason = f" (chosen by --model auto: {choice.reason})" if model_name == "auto" else ""
            raise ValueError(f"{', '.join(misplaced)} appl{'ies' if len(misplaced) == 1 else 'y'} to the iVAE, "
                             f"but the model is {chosen!r}{reason}; pass --model ivae to fit an iVAE")
    if "decoder_var" in given and given["decoder_var"] != "learned":
        try:
            given["decoder_var"] = float(given["decoder_var"])
        except ValueError:
            raise ValueError(f"--decoder-var must be a number or 'learned', got {given['decoder_var']!r}") from None
    threads = (ctx.obj or {}).get("threads")
    params = {**choice.params, "random_state": seed, "verbose": not quiet, **given}
    if threads is not None:
        params["n_threads"] = threads
    if chosen == "ivae":
        from nica.estimator import IVAE

        model = IVAE.from_preset(params.pop("preset", "default"), n_components, **params)
    else:
        model = make_model(chosen, n_components, **params)
    if epochs is not None:
        if epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {epochs}")
        max_steps = max(1, round(epochs * max(1, len(ds.x) // model.batch_size)))
    if max_steps is not None:
        model.set_params(max_steps=max_steps)
    rank = rank_and_size()[0]
    if rank == 0:
        click.echo(f"model {chosen}" + (f" (auto: {choice.reason})" if model_name == "auto" else "")
                   + ": fitting")
    # checkpoints without being asked: a killed fit continues with --resume
    with checkpoints_beside(model, out, checkpoint_dir=checkpoint_dir, resume=resume, remove=rank == 0,
                            lock=rank == 0):
        model.fit(ds.x, ds.u, resume=resume)
        if ds.x_names is not None:  # a table's header: new data are checked against it
            model.feature_names_in_ = np.asarray(ds.x_names, dtype=object)
        if rank != 0:  # data-parallel replicas are identical: rank 0 saves
            return
        model.set_params(checkpoint_dir=checkpoint_dir)  # saved as given: no record of the working folder
        model.save(out, overwrite=overwrite)
    click.echo(fit_summary(model, choice, model_name) + f"; saved to {out}")


def fit_summary(model: Any, choice: Any, requested: str) -> str:
    """One line on a finished fit (why the model was chosen is said before it starts): the
    model, time, steps, the kept restart and
    how far the restarts agree, and its log-likelihood (flow: exact, on all the training
    data) or training ELBO (iVAE: the last epoch's mean, what the progress bar showed), per
    sample in the units of X."""
    import numpy as np

    k = getattr(model, "n_restarts", 1)
    restarts = ""
    if k > 1:
        agreement = model.restart_agreement_[~np.eye(k, dtype=bool)]
        rule = "log-likelihood" if hasattr(model, "log_likelihood_") and model.selection == "elbo" else model.selection
        restarts = (f", restart {model.selected_restart_} of {k} kept by {rule}; "
                    f"the restarts' latents agree with MCC {agreement.mean():.3f}"
                    + (f" on average (pairs {agreement.min():.3f} to {agreement.max():.3f})" if k > 2 else ""))
    if hasattr(model, "log_likelihood_"):
        shown = float(np.mean(model.history_.model_elbo) - model.projection_.log_jacobian())
        score = (f"log-likelihood {model.log_likelihood_:.3f} per sample in the units of X (exact, the kept "
                 f"restart on all training rows; the progress bar's {shown:.3f} was the last epoch's mean "
                 f"over mini-batches{' and restarts' if k > 1 else ''})")
    else:
        shown = "the progress bar showed the restarts' mean and range" if k > 1 else "as the progress bar showed"
        score = (f"training ELBO {model.elbo_:.3f} per sample in the units of X (the last epoch's mean; "
                 f"{shown})")
    return (f"model {choice.name}: fitted in {model.fit_time_:.1f} s ({model.n_steps_} steps{restarts}); "
            f"{score}")


#: the options of ``nica fit`` that --model temporal takes (the others are the iVAE's / the flow's)
TEMPORAL_OPTIONS = ("batch_size", "learning_rate", "u_type", "device")


def _fit_temporal(data: Path, n_components: int, out: Path, where: tuple, lags: int | None, seed: int,
                  epochs: float | None, max_steps: int | None, quiet: bool, overwrite: bool,
                  options: dict[str, Any], threads: int | None, regimes: str | None = None) -> None:
    """``nica fit --model temporal``: a :class:`nica.TemporalIVAE` on a series, or a
    :class:`nica.SwitchingTemporalFlow` with --regimes or fewer latents than features."""
    from nica.cli.regimes import describe_switching, fit_switching, parse_regimes
    from nica.temporal import TemporalIVAE

    given = [k for k, v in options.items() if v is not None and k not in TEMPORAL_OPTIONS]
    if given:
        flags = {p.name: p.opts[0] for p in click.get_current_context().command.params}
        names = ", ".join(flags.get(k, "--" + k.replace("_", "-")) for k in given)
        raise click.UsageError(f"{names}: iVAE option(s), not taken by --model temporal")
    check_model_outputs(out, overwrite)
    ds = read_xu(data, *where, need_u=False)
    overrides = {k: v for k, v in options.items() if v is not None and k in TEMPORAL_OPTIONS}
    if threads is not None:
        overrides["n_threads"] = threads
    if regimes is not None or (ds.x.ndim >= 2 and 0 < n_components < ds.x.shape[-1]):
        if epochs is not None:
            raise click.UsageError("--epochs: give --max-steps for --model temporal with regimes")
        k = 1 if regimes is None else parse_regimes(regimes)
        model = fit_switching(ds, n_components, k, 1 if lags is None else lags, seed, max_steps, quiet, overrides)
        model.save(out, overwrite=overwrite)
        click.echo(describe_switching(model, out))
        return
    model = TemporalIVAE(n_components, lags=1 if lags is None else lags, random_state=seed,
                         verbose=not quiet, **overrides)
    if epochs is not None:
        if epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {epochs}")
        n_windows = max(1, ds.x.shape[-2] - model.lags) * (ds.x.shape[0] if ds.x.ndim == 3 else 1)
        max_steps = max(1, round(epochs * max(1, n_windows // model.batch_size)))
    if max_steps is not None:
        model.set_params(max_steps=max_steps)
    model.fit(ds.x, ds.u)
    model.save(out, overwrite=overwrite)
    kind = "log-likelihood" if model.inference == "flow" else "ELBO"
    click.echo(f"model temporal: fitted in {model.fit_time_:.1f} s ({model.n_steps_} steps), {kind} "
               f"{model.score_:.3f} per step; saved to {out}")


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


@click.command("select-n")
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
@overwrite_option("replace files in --out if they exist")
@click.option("--quiet", is_flag=True, help="no progress bars")
@user_errors
def select_n(data: Path, candidates: str, out: Path, u_file: Path | None, x_key: str, u_key: str,
             x_cols: str | None, u_cols: str | None, rule: str, seed: int, checkpoint_dir: Path | None,
             resume: bool, overwrite: bool, quiet: bool, **options: Any) -> None:
    """Choose the latent dimension of DATA by the ELBO: one iVAE per candidate n.

    Each fit uses the plain ELBO and a learned decoder variance (the settings under which
    ELBOs of different n compare; see nica.model_selection). DATA is read as by ``nica fit``.
    """
    from nica.model_selection import check_saved_files, select_n_components

    dims = parse_candidates(candidates)
    check_saved_files(out, overwrite)  # before any fit
    ds = read_xu(data, u_file, x_key, u_key, x_cols, u_cols)
    overrides = {k: v for k, v in options.items() if v is not None}
    result = select_n_components(ds.x, ds.u, dims, rule=rule, checkpoint_dir=checkpoint_dir, resume=resume,
                                 random_state=seed, progress=not quiet, **overrides)
    result.save(out, overwrite=overwrite)
    click.echo(result.table())
    click.echo(f"chosen n_components = {result.n_components} ({rule}); wrote {out}/elbo.csv, "
               f"{out}/elbo.png and the chosen model to {out}/model")
