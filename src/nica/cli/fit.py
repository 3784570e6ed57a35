"""``nica fit`` (one iVAE, saved) and ``nica select-n`` (the latent dimension by the ELBO)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nica.cli._common import check_model_outputs, data_options, overwrite_option, read_xu, user_errors
from nica.cli.regimes import parse_regimes
from nica.presets import PRESETS


#: ``nica fit`` options that are not a parameter of the estimator: how the data are read
#: (``stream``: the estimator must stream) and the iVAE family's named configurations
#: (``preset``: the estimator must have ``from_preset``); every other option is the
#: parameter of its name, and is refused for a model that has no such parameter
NOT_PARAMETERS = ("stream", "preset")


@click.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--n-components", type=int, required=True, help="latent dimension")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="model directory")
@data_options
@click.option("--model", "model_name", default="auto", show_default=True,
              help="auto (the identifiable flow for real-valued x, on its top principal components when "
                   "--n-components is smaller than its number of features, also with --stream; the iVAE for binary x), "
                   "or a model name (nica.MODELS): ivae, vae, beta-vae, beta-tcvae, flow, latent-causal, tcl; "
                   "or temporal: nica.TemporalIVAE on a series, x (T, d) and u the domain of each step "
                   "(optional), which with --regimes (or fewer latents than features) is switching: "
                   "nica.SwitchingTemporalFlow. Each model takes the options below that name its parameters")
@click.option("--lags", type=int, help="--model temporal: past steps the transition reads [default: 1]")
@click.option("--regimes", "n_regimes", callback=lambda ctx, param, value: None if value is None
              else parse_regimes(value),
              help="--model temporal: K hidden regimes whose transitions differ, or 'auto' (K "
                   "by held-out likelihood): nica.SwitchingTemporalFlow")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="iVAE configuration [default: default]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=float, help="training length in passes over the data (overrides --max-steps)")
@click.option("--max-steps", type=int, help="training length in optimiser steps")
@click.option("--batch-size", type=int)
@click.option("--lr", "learning_rate", type=float, help="Adam learning rate")
@click.option("--matrix-lr", "matrix_learning_rate", callback=lambda ctx, param, value: None if value is None
              else parse_matrix_lr(value),
              help="the flow's square matrices: size of their orthogonalised momentum steps, 'auto' "
                   "(0.1), or 'adam' for Adam's steps like every other parameter [default: auto]")
@click.option("--tail-units", "n_tail_units", callback=lambda ctx, param, value: None if value is None
              else parse_tail_units(value),
              help="the flow's tail units per element-wise function (slope away from the middle, the "
                   "shape of an inverse saturating activation), or 'auto' (none up to 10 latents, 2 "
                   "beyond) [default: auto]")
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
@click.option("--selection", type=click.Choice(["agreement", "score", "elbo", "likelihood", "first"]),
              help="how the kept restart is chosen (never from true sources): agreement, or score: the "
                   "model's own training score (the iVAE's ELBO, the flow's exact log-likelihood; elbo and "
                   "likelihood name it too), or first")
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
        u_key: str, x_cols: str | None, u_cols: str | None, model_name: str, seed: int,
        epochs: float | None, max_steps: int | None, quiet: bool, overwrite: bool, **options: Any) -> None:
    """Fit a model to DATA and save it to --out.

    DATA is an .npz or HDF5 file with arrays x and u, a .csv or .parquet table (u from
    --u-col, x from the other columns or --x-cols), or an .npy of x with --u FILE.
    With --model auto (the default) the model is the identifiable flow for real-valued x
    (on its top principal components when the latent dimension is smaller than the
    number of features; with --stream too) and the iVAE for binary x (nica.model_choice).
    Under ``torchrun --nproc_per_node K`` a fit (flow or iVAE) is data-parallel and rank 0
    saves it. With --model temporal, x is one series (T, d) (or
    several, (N, T, d)) and u, when present, the domain of each step; with --regimes K
    (or auto) the transition switches with a hidden Markov regime (nica.SwitchingTemporalFlow;
    also used when --n-components is below the number of features: a flow on n components
    of x, chosen by nonlinear deflation), and ``nica predict-regime`` reads the regimes of
    new series.
    """

    import numpy as np

    from nica.base.checkpointing import checkpoints_beside
    from nica.model_choice import MODELS, choose_model, make_model
    from nica.training.distributed import rank_and_size

    checkpoint_dir = options.pop("checkpoint_dir")
    given = {k: v for k, v in options.items() if v is not None}
    stream, resume = bool(given.pop("stream", False)), bool(given.pop("resume", False))
    flags = {**given, "stream": stream or None}
    if given.get("matrix_learning_rate") == "adam":
        given["matrix_learning_rate"] = None  # IFlow's name for Adam on every parameter
    if model_name != "auto":
        if model_name not in MODELS:
            raise ValueError(f"unknown --model {model_name!r}; choose auto or one of {sorted(MODELS)}")
        refuse_misplaced(flags, _series_choice(model_name, given, n_components, None), model_name)  # before any work
    check_model_outputs(out, overwrite)
    named = MODELS[model_name] if model_name != "auto" else None
    ds = _read_data(data, (u_file, x_key, u_key, x_cols, u_cols), named, stream)
    choice = (choose_model(ds.x, n_components) if model_name == "auto"
              else _series_choice(model_name, given, n_components, ds.x))
    cls = MODELS[choice.name]
    refuse_misplaced(flags, choice, model_name)
    if epochs is not None and choice.name == "switching":
        raise click.UsageError("--epochs: give --max-steps for --model temporal with regimes")
    if "decoder_var" in given and given["decoder_var"] != "learned":
        try:
            given["decoder_var"] = float(given["decoder_var"])
        except ValueError:
            raise ValueError(f"--decoder-var must be a number or 'learned', got {given['decoder_var']!r}") from None
    threads = (ctx.obj or {}).get("threads")
    params = {**choice.params, "random_state": seed, "verbose": not quiet, **given}
    if threads is not None:
        params["n_threads"] = threads
    preset = params.pop("preset", None)
    model = (cls.from_preset(preset, n_components, **params) if preset is not None
             else make_model(choice.name, n_components, **params))
    if epochs is not None:
        if epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {epochs}")
        max_steps = max(1, round(epochs * max(1, _n_examples(ds.x, model) // model.batch_size)))
    if max_steps is not None:
        model.set_params(max_steps=max_steps)
    rank = rank_and_size()[0]
    if rank == 0:
        click.echo(f"model {choice.name}{_why(choice, model_name)}: fitting")
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


def _series_choice(name: str, given: dict[str, Any], n_components: int, x: Any) -> Any:
    """``--model temporal`` is the temporal family: the switching flow
    (:class:`nica.SwitchingTemporalFlow`, model ``switching``) with ``--regimes``, or with
    fewer latents than features (a flow on n components chosen by nonlinear deflation); otherwise
    :class:`nica.TemporalIVAE`. Any other name stands for itself."""
    from nica.model_choice import ModelChoice

    if name != "temporal":
        return ModelChoice(name)
    if given.get("n_regimes") is not None:
        return ModelChoice("switching", {}, "--regimes: transitions that switch with a hidden regime")
    if x is not None and x.ndim >= 2 and 0 < n_components < x.shape[-1]:
        return ModelChoice("switching", {}, "fewer latents than features: a flow on n components of x chosen by "
                                           "nonlinear deflation")
    return ModelChoice(name)


def _read_data(data: Path, where: tuple, cls: type | None, stream: bool) -> Any:
    """x and u as the model reads them: a series for a model of series (u optional),
    x from disk with --stream, else a table (u required when the model needs it)."""
    u_file, x_key, u_key, x_cols, u_cols = where
    if stream:
        from nica.datasets.io import DataFileError, Dataset, load_dataset
        from nica.datasets.streaming import open_array, read_store_array

        if data.suffix.lower() == ".zarr" and u_file is None:  # a zarr store is a folder of arrays
            ds = Dataset(x=None, u=read_store_array(data, u_key))
        else:
            ds = load_dataset(data, u_path=u_file, u_key=u_key, u_cols=u_cols, parts=("u",))
        if ds.u is None:
            raise DataFileError(f"{data} has no auxiliary variable {u_key!r}; pass --u FILE")
        ds.x = open_array(data, key=x_key)
        return ds
    need_u = cls is None or (cls.input_kind == "table" and cls.uses_u and cls.u_required is not None)
    return read_xu(data, *where, need_u=need_u)


def _n_examples(x: Any, model: Any) -> int:
    """Training examples in x: its rows, or the windows of a series model."""
    if getattr(model, "input_kind", "table") == "series":
        return max(1, x.shape[-2] - model.lags) * (x.shape[0] if x.ndim == 3 else 1)
    return len(x)


def _takes(cls: type, option: str) -> bool:
    """Whether estimator class ``cls`` takes the ``nica fit`` option of this parameter name."""
    if option == "stream":
        return bool(getattr(cls, "streams", False))
    if option == "preset":
        return hasattr(cls, "from_preset")
    return option in cls._param_names()


def parse_matrix_lr(value: str) -> float | str:
    """``--matrix-lr``: 'auto', 'adam' or a step size > 0."""
    if value in ("auto", "adam"):
        return value
    try:
        rate = float(value)
    except ValueError:
        rate = float("nan")
    if not rate > 0 or rate == float("inf"):
        raise click.BadParameter(f"must be a number > 0, 'auto' or 'adam', got {value!r}")
    return rate


def parse_tail_units(value: str) -> int | str:
    """``--tail-units``: 'auto' or an integer >= 0."""
    if value == "auto":
        return value
    if not value.isdigit():
        raise click.BadParameter(f"must be an integer >= 0 or 'auto', got {value!r}")
    return int(value)


def refuse_misplaced(flags: dict[str, Any], choice: Any, requested: str) -> None:
    """Refuse, naming the models that take them, the options the chosen model does not take
    (each option is the estimator parameter of its name; the registry says which model has it)."""
    from nica.model_choice import MODELS

    cls = MODELS[choice.name]
    misplaced = [k for k, v in flags.items() if v is not None and k in _option_flags() and not _takes(cls, k)]
    if not misplaced:
        return
    names = ", ".join(_option_flags()[k] for k in misplaced)
    takers = [name for name, other in MODELS.items() if all(_takes(other, k) for k in misplaced)]
    takers.sort(key=lambda name: name != "ivae")  # the iVAE first: most options are its
    reason = f" (chosen by --model auto: {choice.reason})" if requested == "auto" else ""
    verb = "applies" if len(misplaced) == 1 else "apply"
    if not takers:
        raise ValueError(f"{names}: no model takes all of these, and {choice.name!r}{reason} takes none of them")
    raise ValueError(f"{names} {verb} to --model {', '.join(takers)}, but the model is {choice.name!r}{reason}; "
                     f"pass --model {takers[0]}" + (" (or another of those)" if len(takers) > 1 else ""))


def _option_flags() -> dict[str, str]:
    """Parameter name -> the ``nica fit`` option that sets it (e.g. n_restarts -> --restarts)."""
    command = click.get_current_context().command
    return {p.name: p.opts[0] for p in command.params if p.name not in (
        "data", "n_components", "out", "u_file", "x_key", "u_key", "x_cols", "u_cols", "model_name", "seed",
        "epochs", "max_steps", "checkpoint_dir", "resume", "device", "overwrite", "quiet")}


def fit_summary(model: Any, choice: Any, requested: str) -> str:
    """One line on a finished fit (why the model was chosen is said before it starts): the
    model, time, steps, the kept restart and how far the restarts agree, and its training
    score in words (the estimator's ``describe_score``: the flow's exact log-likelihood on
    all the training data, the iVAE's last-epoch ELBO, ...)."""
    import numpy as np

    from nica.training.selection import canonical_rule

    k = len(np.atleast_1d(model.restart_scores_)) if hasattr(model, "restart_scores_") else 1
    restarts = ""
    if k > 1:
        agreement = model.restart_agreement_[~np.eye(k, dtype=bool)]
        rule = model.selection
        if canonical_rule(rule) == "score":  # the model's own training score, by its name
            rule = model.score_name
        pruned = any("pruned" in e.get("event", "") for e in model.history_.events)
        rule += " (the others were dropped part-way, prune_after)" if pruned else ""
        restarts = (f", restart {model.selected_restart_} of {k} kept by {rule}; "
                    f"the restarts' latents agree with MCC {agreement.mean():.3f}"
                    + (f" on average (pairs {agreement.min():.3f} to {agreement.max():.3f})" if k > 2 else ""))
    return (f"model {choice.name}: fitted in {model.fit_time_:.1f} s ({model.n_steps_} steps{restarts}); "
            f"{model.describe_score()}")


def _why(choice: Any, requested: str) -> str:
    """Why the model was chosen, when the user did not name it: ``--model auto``'s reason,
    or what ``--model temporal`` stood for."""
    if requested == "auto":
        return f" (auto: {choice.reason})"
    if requested != choice.name:  # --model temporal stood for the switching flow
        return f" (--model {requested}: {choice.reason})"
    return ""


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
