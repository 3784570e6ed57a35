"""``IFlow``: the identifiable flow with a scikit-learn interface, hooks of the estimator
skeleton (:class:`nica.base.Estimator`)."""

from __future__ import annotations

import numbers

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder, check_same_length, warn_identifiability
from nica.base.checkpointing import aux_identity
from nica.base.estimator import Estimator, FitData, FitInputs, FitPlan, aux_rows, fitted_alias
from nica.base.label_posterior import LabelPosteriorMixin
from nica.base.params import check_new_observations, check_positive_int, chunks, seeded_init
from nica.base.registry import register_estimator
from nica.base.restarts import RestartChoice, check_restarts
from nica.datasets.streaming import (
    check_array_shape,
    check_finite_block,
    column_stats,
    is_out_of_core,
    streamed_data_id,
)
from nica.datasets.tabular import split_aux
from nica.flows._fitting import hold_out, inference_rows, restart_log_likelihood, train_restarts
from nica.flows._format import IFLOW_FORMAT
from nica.flows.module import STACKABLE_FLOW, IFlowConfig, IFlowModule
from nica.flows.projection import InputProjection, ProjectedRows
from nica.flows.transforms import FLOW_STEPS
from nica.models.base import LatentModule
from nica.training.trainer import TrainConfig, TrainHistory


#: ``max_steps="auto"``: this many steps per latent, within [min, max] (docs/tuning.md: on
#: 10 -> 10 data 5,000 steps gave median MCC 0.90 and 10,000 gave 0.99; 5 -> 5 needs 5,000)
AUTO_STEPS_PER_LATENT, AUTO_STEPS_MIN, AUTO_STEPS_MAX = 1_000, 5_000, 10_000
#: ... and beyond :data:`AUTO_SMALL_N` latents, this many steps per latent up to a cap, from
#: :data:`AUTO_LARGE_RESTARTS` restarts pruned to the most likely one after
#: :data:`AUTO_PRUNE_AFTER` steps (``n_restarts="auto"``, ``prune_after="auto"``; docs/tuning.md,
#: round s: with 20 latents the restarts end in basins of very different likelihood, the
#: one that leads early leads at the end, and more restarts find a better one; round s3: 16
#: restarts against 8 lifted the issue's 40 x 2,500 shape from 0.86 to 0.98 on two tuning seeds)
AUTO_SMALL_N, AUTO_LARGE_STEPS_PER_LATENT, AUTO_LARGE_STEPS_MAX = 10, 2_000, 100_000
AUTO_RESTARTS, AUTO_LARGE_RESTARTS, AUTO_PRUNE_AFTER = 4, 16, 3_000
#: tail units of each element-wise function under ``n_tail_units="auto"``: none up to
#: :data:`AUTO_SMALL_N` latents (the paper's shapes, already at 0.96-0.999), this many beyond
#: (docs/tuning.md, round s9)
AUTO_TAIL_UNITS = 2
#: step size of the invertible MLP's square matrices under ``matrix_learning_rate="auto"``:
#: orthogonalised momentum steps (docs/tuning.md, round s7)
AUTO_MATRIX_LEARNING_RATE = 0.1

@register_estimator("IFlow", IFLOW_FORMAT, model="flow", unmixing=True)
class IFlow(LabelPosteriorMixin, Estimator):
    """Identifiable normalising flow (Khemakhem et al. 2020, §special case; Li et al. 2020).

    x = f(z) with f a bijection and z ~ p(z | u), the same u-conditioned factorised prior
    as :class:`nica.IVAE` (here with learned u-dependent mean and scale by default, as
    iFlow); fitted by exact maximum likelihood with Adam on mini-batches. A flow is a
    bijection: with as many latents as features it models X itself (standardised per
    feature); with fewer, it models the top ``n_components`` principal components of X
    and the rest of x as isotropic Gaussian noise, which keeps ``score`` a density on
    R^d (:mod:`nica.flows.projection`).

    The default bijection is an invertible MLP (:mod:`nica.flows.invertible_mlp`: square
    linear maps and learned increasing element-wise functions, the family of the
    benchmark's mixing networks), with ``n_restarts`` restarts trained side by side, half
    with a Gaussian and half with a Laplace prior, and the one with the highest training
    likelihood kept. Its square matrices take orthogonalised momentum steps (every
    singular value of a step the same, ``matrix_learning_rate``) and the other parameters
    Adam's, which lifts 10-30 latents (docs/tuning.md, round s7). Beyond 10 latents the
    fit grows with n: 16 restarts explore for 3,000 steps, then only the most likely
    trains on, 2,000 steps per latent in all (``n_restarts``, ``prune_after`` and
    ``max_steps`` "auto"). X may also be an array on disk (memory-mapped ``.npy``, HDF5,
    zarr), read a mini-batch at a time; under
    ``torchrun`` the fit is data-parallel (DDP). iFlow's rational-quadratic spline
    autoregressive flow is ``flow="spline-autoregressive"`` (with ``batch_size=64``,
    ``learning_rate=1e-3``, ``max_steps=12_500``, ``n_restarts=1``, ``n_bins=8`` as in the
    iFlow paper; about 15x slower per fit). docs/tuning.md has the measurements behind the
    defaults.

    Parameters
    ----------
    n_components : latent dimension, at most the number of features of X (fewer: the
        flow sees the top principal components).
    prior : ``"gaussian"``, ``"laplace"``, another name in :data:`nica.models.PRIORS`, or
        ``"auto"``: the restarts are shared out between a Gaussian and a Laplace prior and
        the likelihood picks among them (:func:`nica.flows.module.prior_families`).
    prior_mean, prior_scale : learn a u-dependent prior location / scale.
    prior_net : ``"table"``, ``"mlp"`` or ``"auto"`` (table for categorical u, MLP for
        continuous u).
    flow : ``"invertible-mlp"`` (default) or a zuko flow step: ``"spline-autoregressive"``
        (iFlow's), ``"spline-coupling"`` or ``"affine-coupling"`` (RealNVP); every zuko
        step also has a permutation and an LU map.
    n_flows : element-wise layers of the invertible MLP (``n_flows + 1`` linear maps), or
        the number of zuko flow steps.
    n_bins : tanh units of each element-wise function of the invertible MLP, or spline bins.
    n_tail_units : tail units of each element-wise function of the invertible MLP: they
        add slope away from their knot rather than at it, the shape of the inverse of a
        saturating mixing activation such as xtanh
        (:class:`nica.flows.invertible_mlp.MonotoneTanhSum`); 0: none. ``"auto"``: none up
        to 10 latents, :data:`AUTO_TAIL_UNITS` beyond.
    tail_bound : spline interval [-B, B] (on standardised X) of the zuko spline flows.
    hidden_dim, n_layers, activation : conditioner MLPs of a zuko flow, and the prior MLP
        for continuous u.
    init_noise : the invertible MLP's weights start at the identity plus this times
        standard normal noise (what makes restarts differ).
    batch_size, learning_rate, max_steps, lr_schedule, n_iter_no_change, tol : Adam
        optimisation by :func:`nica.training.train` (early stopping on the training
        log-likelihood, or with ``early_stopping`` on the held-out one). ``max_steps="auto"``:
        1,000 steps per latent dimension, between 5,000 and 10,000, up to 10 latents
        (:data:`AUTO_STEPS_PER_LATENT`); beyond, 2,000 per latent up to 100,000
        (:data:`AUTO_LARGE_STEPS_PER_LATENT`).
    matrix_learning_rate : the invertible MLP's square weight matrices take orthogonalised
        momentum steps of this size (every singular value of a step equal to it, on the
        schedule of ``learning_rate``; :class:`nica.training.optim.FlatAdam`) instead of
        Adam's per-entry steps; ``None``: Adam's, like every other parameter (the paper's
        optimiser). ``"auto"``: :data:`AUTO_MATRIX_LEARNING_RATE`. Ignored by zuko flows.
    early_stopping, validation_fraction : hold out this fraction of the rows (at most
        :data:`MAX_VALIDATION_ROWS`), score the restarts' best mean log-likelihood on them
        every :data:`VALIDATION_EVERY` steps, and stop once ``n_iter_no_change`` (default 10)
        evaluations have not raised it by more than ``tol``; the held-out rows are not
        trained on.
    n_restarts : K flows trained side by side as one batched model (invertible MLP only);
        ``"auto"``: 4 up to 10 latents, 16 beyond (:data:`AUTO_LARGE_RESTARTS`).
    prune_after : steps after which only the restart the ``selection`` rule prefers
        trains on (alone, for the rest of ``max_steps``, on ``lr_schedule``; before it all
        restarts train at a constant learning rate); None trains every restart for the
        whole budget. ``"auto"``: None up to 10 latents, 3,000 steps beyond
        (:data:`AUTO_PRUNE_AFTER`; :mod:`nica.flows._fitting`).
    selection : which restart is kept: ``"likelihood"`` (the highest exact
        log-likelihood on the training data; ``"score"`` is the same, and ``"elbo"``, its
        former name here, is still read), ``"agreement"`` or ``"first"``
        (:mod:`nica.training.selection`).
    standardize : z-score each feature of X first (n = d), or scale each principal
        component to unit variance (n < d).
    u_type : ``"auto"``, ``"categorical"`` or ``"continuous"``.
    checkpoint_dir, checkpoint_every : write the training state to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps, so that
        ``fit(X, u, resume=True)`` continues an interrupted fit to the same result.
    device : ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    n_threads : torch CPU threads during ``fit`` (restored afterwards); ``None`` leaves
        torch's setting alone. One thread is as fast for these small networks and stays
        near a fair share on a busy machine (:mod:`nica._threads`).
    random_state : int, ``numpy.random.Generator`` or None; resolved once per fit.
    verbose : show a progress bar during fit.

    Attributes
    ----------
    module_ : the kept :class:`nica.flows.IFlowModule` (one model); config_ : its config.
    restarts_module_ : every restart as one stacked module.
    history_ : :class:`nica.training.TrainHistory` (``score`` is the exact log-likelihood
        per sample, on the flow's standardised input).
    score_ : mean training log p(x | u) per sample of the kept restart, units of X
        (:attr:`score_name` says so); ``log_likelihood_`` is the same, its former name.
    restart_log_likelihood_ : ``(n_restarts,)`` the same for every restart.
    restart_priors_ : the prior family of every restart (``config_.prior`` is the kept one's).
    u_classes_ : the fitted labels of a categorical u (the columns of :meth:`predict_proba_u`,
        the exact posterior p(u | x) ∝ p(x | u) p(u) with p(u) the fit-time frequencies).
    feature_names_in_ : X's column names when fitted on a DataFrame / AnnData, else None;
        new data are realigned by them (refused when they differ).
    selected_restart_, restart_scores_, restart_agreement_ : as :class:`nica.IVAE`.
    projection_ : the :class:`nica.flows.projection.InputProjection` from X to the flow's
        input; x_mean_ ``(d,)``, x_scale_ ``(n,)``, components_ ``(d, n)`` (None when
        n = d) and noise_variance_ (the residual variance off the principal subspace; 0 when
        n = d) are its parts.
    aux_encoder_, seed_, device_, n_features_in_, n_steps_, fit_time_ : as named.

    Examples
    --------
    >>> from nica import IFlow, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=100, random_state=0)
    >>> model = IFlow(2, max_steps=20, random_state=0).fit(data.x, data.u)
    >>> z = model.transform(data.x)
    >>> z.shape
    (500, 2)
    >>> bool(abs(model.inverse_transform(z) - data.x).max() < 1e-3)
    True
    """

    score_name = "log-likelihood"
    streams = True
    data_parallel = True
    progress_label = "log-lik."
    components_reason = ": a flow is a bijection, so it has at most as many latents as features"
    u_required = "u is required: the flow's prior p(z | u) is conditioned on it"
    log_likelihood_ = fitted_alias("score_")

    def __init__(
        self,
        n_components: int,
        *,
        prior: str = "auto",
        prior_mean: bool = True,
        prior_scale: bool = True,
        prior_net: str = "auto",
        flow: str = STACKABLE_FLOW,
        n_flows: int = 3,
        n_bins: int = 4,
        n_tail_units: int | str = "auto",
        tail_bound: float = 5.0,
        hidden_dim: int = 64,
        n_layers: int = 2,
        activation: str = "relu",
        init_noise: float = 0.1,
        batch_size: int = 256,
        learning_rate: float = 3e-2,
        max_steps: int | str = "auto",
        lr_schedule: str = "cosine",
        matrix_learning_rate: float | str | None = "auto",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_restarts: int | str = "auto",
        prune_after: int | str | None = "auto",
        selection: str = "likelihood",
        standardize: bool = True,
        u_type: str = "auto",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1_000,
        device: str = "auto",
        n_threads: int | None = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.prior = prior
        self.prior_mean = prior_mean
        self.prior_scale = prior_scale
        self.prior_net = prior_net
        self.flow = flow
        self.n_flows = n_flows
        self.n_bins = n_bins
        self.n_tail_units = n_tail_units
        self.tail_bound = tail_bound
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.init_noise = init_noise
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.matrix_learning_rate = matrix_learning_rate
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_restarts = n_restarts
        self.prune_after = prune_after
        self.selection = selection
        self.standardize = standardize
        self.u_type = u_type
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting: the skeleton's hooks
    def _config(self, aux: AuxEncoder) -> IFlowConfig:
        n = int(self.n_components)
        if self.flow != STACKABLE_FLOW and self.flow not in FLOW_STEPS:
            raise ValueError(f"unknown flow {self.flow!r}; choose one of {(STACKABLE_FLOW, *FLOW_STEPS)}")
        n_restarts = self._n_restarts()
        if not float(self.init_noise) >= 0:
            raise ValueError(f"init_noise must be >= 0, got {self.init_noise!r}")
        prior_net = self.prior_net
        if prior_net == "auto":
            prior_net = "table" if aux.kind == "categorical" else "mlp"
        return IFlowConfig(
            n_latent=n, aux_dim=aux.dim, prior=self.prior,
            prior_mean=bool(self.prior_mean), prior_scale=bool(self.prior_scale),
            prior_net=prior_net, flow=self.flow,
            n_flows=check_positive_int(self.n_flows, "n_flows"),
            n_bins=check_positive_int(self.n_bins, "n_bins"), n_tail_units=self._n_tail_units(),
            tail_bound=float(self.tail_bound),
            hidden_dim=check_positive_int(self.hidden_dim, "hidden_dim"),
            n_layers=check_positive_int(self.n_layers, "n_layers"), activation=self.activation,
            init_noise=float(self.init_noise), n_models=n_restarts,
        )

    def _n_tail_units(self) -> int:
        """``n_tail_units`` with ``"auto"`` resolved for the latent dimension, checked."""
        units = self.n_tail_units
        if isinstance(units, str) and units == "auto":
            n = check_positive_int(self.n_components, "n_components")
            return AUTO_TAIL_UNITS if n > AUTO_SMALL_N else 0
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units < 0:
            raise ValueError(f"n_tail_units must be an integer >= 0 or 'auto', got {units!r}")
        return int(units)

    def _matrix_learning_rate(self) -> float | None:
        """``matrix_learning_rate`` with ``"auto"`` resolved; None for a zuko flow."""
        rate = self.matrix_learning_rate
        if self.flow != STACKABLE_FLOW or rate is None:
            return None
        if isinstance(rate, str):
            if rate != "auto":
                raise ValueError(f"matrix_learning_rate must be a number > 0, None or 'auto', got {rate!r}")
            return AUTO_MATRIX_LEARNING_RATE
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not rate > 0:
            raise ValueError(f"matrix_learning_rate must be a number > 0, None or 'auto', got {rate!r}")
        return float(rate)

    def _n_restarts(self) -> int:
        """``n_restarts`` with ``"auto"`` resolved for the latent dimension, checked."""
        n_restarts = self.n_restarts
        if isinstance(n_restarts, str) and n_restarts == "auto":
            n = check_positive_int(self.n_components, "n_components")
            n_restarts = AUTO_LARGE_RESTARTS if n > AUTO_SMALL_N else AUTO_RESTARTS
        return check_restarts(n_restarts, self.selection)

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        aux = inputs.aux
        config = self._config(aux)
        train_config = TrainConfig(
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self._max_steps(config.n_latent), lr_schedule=self.lr_schedule,
            n_iter_no_change=None if self.early_stopping else self.n_iter_no_change, tol=self.tol,
            matrix_learning_rate=self._matrix_learning_rate(),
        )
        train_config.validate()
        warn_identifiability(aux.n_values, config.n_latent, prior=config.prior,
                             prior_mean=config.prior_mean, prior_scale=config.prior_scale)
        return FitPlan(lambda: IFlowModule(config), train_config)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        """The flow's input y (X standardised, or its top principal components) and u on
        ``device``. An out-of-core X is never loaded whole: one streamed pass gives its mean
        and scale (and covariance when n < d, for the principal components), and training
        reads each mini-batch from disk (:class:`~nica.flows.projection.ProjectedRows`)."""
        x, n, standardize = inputs.x, int(self.n_components), bool(self.standardize)
        u_t = aux_rows(inputs.aux, inputs.u).to(device)
        if is_out_of_core(x):
            stats = column_stats(x, "X", covariance=n < x.shape[1])
            projection = InputProjection.from_stats(stats, n, standardize)
            y: Any = ProjectedRows(x, projection, device)
            identity = streamed_data_id(stats)  # a digest of every row: resume refuses a shuffled copy
        else:
            projection = InputProjection.fit(x, n, standardize)
            y_np = projection.apply(x)
            y, identity = torch.from_numpy(y_np).to(device), (y_np,)
        return FitData(y, u_t, (*identity, *aux_identity(u_t)), projection.log_jacobian(),
                       {"projection": projection, "x": x})

    def _train_module(self, plan: FitPlan, data: FitData, seed: int, device: torch.device, *,
                      checkpoint: Any = None, resume: bool = False,
                      on_epoch: Callable[..., None] | None = None) -> tuple[LatentModule, TrainHistory]:
        """The skeleton's training step with the flow's two options
        (:func:`nica.flows._fitting.train_restarts`): ``early_stopping`` holds out rows and
        stops on their likelihood, and ``prune_after`` trains the restarts side by side,
        then only the most likely one; what pruning chose is kept in ``data.state``."""
        module = seeded_init(plan.build_module, seed).to(device)
        x_fit, u_fit, validation = data.x, data.u, None
        if self.early_stopping:  # held-out rows, never trained on
            x_fit, u_fit, validation = hold_out(data.x, data.u, fraction=self.validation_fraction, seed=seed,
                                                patience=self.n_iter_no_change, tol=self.tol)
        if on_epoch is not None:
            on_epoch(module, data, None, None)

        def train_phase(trained: IFlowModule, config: TrainConfig, generator_seed: int, folder: Any,
                        validation: Any) -> TrainHistory:
            observer = None if on_epoch is None else (
                lambda epoch, history: on_epoch(trained, data, epoch, history))
            return self._train_phase(trained, x_fit, u_fit, config, generator_seed=generator_seed, device=device,
                                     checkpoint=folder, resume=resume, score_offset=data.score_offset,
                                     validation=validation, on_epoch=observer)

        config = plan.train_config
        module, history, data.state["pruning"] = train_restarts(
            module, config, prune_after=self._prune_after(module.config.n_latent, config.max_steps),
            selection=self.selection, latents=lambda m: self._restart_latents(m, data, seed), generator_seed=seed + 1,
            train_phase=train_phase, checkpoint=checkpoint, validation=validation)
        return module, history

    def _fit_scores(self, module: LatentModule, history: TrainHistory, data: FitData) -> np.ndarray:
        """Each restart's exact mean log-likelihood on all training rows ``(K,)``, units of X
        (an out-of-core X read a block at a time)."""
        return restart_log_likelihood(module, data.state["x"], data.u, data.state["projection"], data.u.device)

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:
        self._set_projection(data.state["projection"])
        self.score_ = float(choice.fit_scores[choice.selected])
        pruning = data.state.get("pruning")
        if pruning is None:
            self.restart_log_likelihood_ = choice.fit_scores
        else:  # the restarts were compared when pruned; only the kept one trained on
            k = pruning.restarts.n_models
            self.restarts_module_ = pruning.restarts
            self.selected_restart_, self.restart_scores_ = pruning.selected, pruning.scores
            self.restart_agreement_ = pruning.agreement
            self.restart_log_likelihood_ = np.where(np.arange(k) == pruning.selected, self.score_, np.nan)
        self.restart_priors_ = self.restarts_module_.restart_priors()

    def describe_score(self) -> str:
        """The exact log-likelihood in words, beside the progress bar's last value."""
        self._check_fitted()
        k = len(self.restart_log_likelihood_)
        shown = float(np.mean(self.history_.model_score) - self.projection_.log_jacobian())
        return (f"log-likelihood {self.score_:.3f} per sample in the units of X (exact, the kept restart on all "
                f"training rows; the progress bar's {shown:.3f} was the last epoch's mean over mini-batches"
                f"{' and restarts' if k > 1 else ''})")

    def _log_jacobian(self) -> float:
        """The projection's log-Jacobian (the flow's input is X standardised or projected)."""
        return self.projection_.log_jacobian()

    def _set_projection(self, projection: InputProjection) -> None:
        """The fitted input map and the attributes that name its parts."""
        self.projection_ = projection
        self.n_features_in_ = projection.n_features
        self.x_mean_ = projection.mean.astype(np.float32)
        self.x_scale_ = projection.scale.astype(np.float32)
        self.components_, self.noise_variance_ = projection.components, projection.noise_variance

    def _max_steps(self, n: int) -> Any:
        """``max_steps`` with ``"auto"`` resolved for n latents (see the class docstring)."""
        if isinstance(self.max_steps, str) and self.max_steps == "auto":
            if n > AUTO_SMALL_N:
                return int(min(AUTO_LARGE_STEPS_MAX, AUTO_LARGE_STEPS_PER_LATENT * n))
            return int(min(AUTO_STEPS_MAX, max(AUTO_STEPS_MIN, AUTO_STEPS_PER_LATENT * n)))
        return self.max_steps

    def _prune_after(self, n: int, max_steps: int) -> int | None:
        """``prune_after`` with ``"auto"`` resolved for n latents, checked."""
        value = self.prune_after
        if isinstance(value, str) and value == "auto":
            return AUTO_PRUNE_AFTER if n > AUTO_SMALL_N else None
        if value is None:
            return None
        value = check_positive_int(value, "prune_after")
        return value if value < max_steps else None


    # ----------------------------------------------------------------- inference
    def _blocks(self, X: Any, name: str = "X") -> tuple[int, Iterator[np.ndarray]]:
        """The number of rows of X and its consecutive blocks of raw rows, checked against
        the fit; an out-of-core X is read one block at a time."""
        self._check_fitted()
        if is_out_of_core(X):
            check_array_shape(X, name, min_rows=1)
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"{name} has {X.shape[1]} features but the model was fitted with {self.n_features_in_}")
            n_rows = int(X.shape[0])
            size = inference_rows(self.module_)
            return n_rows, (check_finite_block(X[rows], name, rows.start) for rows in chunks(n_rows, size))
        x = check_new_observations(X, self.n_features_in_, name, getattr(self, "feature_names_in_", None))
        return len(x), (x[rows] for rows in chunks(len(x), inference_rows(self.module_)))

    @torch.no_grad()
    def _map_blocks(self, X: Any, fn: Any, u: Any = None) -> np.ndarray:
        """``fn(y, u_rows, block)`` over blocks of X, concatenated: ``y`` the flow's input
        of the block's raw rows ``block``, ``u_rows`` the encoded u of those rows (or None)."""
        n_rows, blocks = self._blocks(X)
        u_t = None
        if u is not None:
            check_same_length(np.empty(n_rows), np.asarray(u), "X", "u")
            u_t = aux_rows(self.aux_encoder_, u)
        out, start = [], 0
        for block in blocks:
            rows = slice(start, start + len(block))
            start += len(block)
            y = torch.from_numpy(self.projection_.apply(block)).to(self.device_)
            out.append(fn(y, None if u_t is None else u_t[rows].to(self.device_), block))
        return np.concatenate(out) if out else np.empty((0,))

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Latents z = f^{-1}(x): ``(n_rows, n_components)``; ``u`` is not needed (given as
        a column name of a DataFrame or AnnData X, as to ``fit``, that column is left out).
        An out-of-core X is read in chunks."""
        X = split_aux(X, u)[0]
        return self._map_blocks(X, lambda y, _, __: self.module_.encode(y)[0][0].cpu().numpy())

    @torch.no_grad()
    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Observations x = f(z) in the units of X: ``(n_rows, n_features)`` (on the
        principal subspace when ``n_components < n_features``)."""
        self._check_fitted()
        z = torch.from_numpy(check_new_observations(Z, self.config_.n_latent, "Z"))
        y = torch.cat([self.module_.decode(z[rows].to(self.device_))[0].cpu()
                       for rows in chunks(len(z), inference_rows(self.module_))]).numpy()
        return self.projection_.reconstruct(y).astype(np.float32)

    def score_samples(self, X: Any, u: Any) -> np.ndarray:
        """Exact log p(x | u) per row in the units of X: ``(n_rows,)`` (with n < d, the
        flow's density on the principal subspace times the Gaussian density off it)."""
        self._check_fitted()
        X, u = split_aux(X, u)
        if u is None:
            raise ValueError("u is required: the likelihood depends on the prior p(z | u)")
        projection = self.projection_

        def log_density(y: torch.Tensor, u_rows: torch.Tensor, block: np.ndarray) -> np.ndarray:
            log_py = self.module_.log_prob(y, u_rows)[0].cpu().numpy()
            return log_py - projection.log_jacobian() + projection.residual_log_density(block)

        return self._map_blocks(X, log_density, u)

    def score(self, X: Any, u: Any) -> float:
        """Mean log-likelihood per sample; higher is better."""
        return float(self.score_samples(X, u).mean())

    def _label_log_likelihood(self, X: Any) -> np.ndarray:
        """log p(x | u = k) for every fitted label k, less the terms that are the same for
        every k (the Jacobians and, for n < d, the density off the principal subspace):
        ``(n_rows, n_labels)``; ``predict_proba_u`` is then the exact posterior p(u | x)."""
        self._check_fitted()
        self._check_categorical_u()
        eye = torch.eye(self.aux_encoder_.dim)

        def per_label(y: torch.Tensor, _: Any, __: Any) -> np.ndarray:
            z = self.module_.encode(y)[0]  # (1, batch, n)
            return torch.stack([self.module_.prior_log_prob(z, eye[k].expand(len(y), -1).to(y.device))[0]
                                for k in range(len(eye))], dim=-1).double().cpu().numpy()

        return self._map_blocks(X, per_label)


__all__ = ["IFlow"]
