"""The identifiable VAE and the plain VAE: scikit-learn style estimators over the iVAE
module (:class:`nica.models.IVAEModule`), hooks of the estimator skeleton
(:class:`nica.base.Estimator`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._random import draw_seed
from nica._validation import AuxEncoder, check_observations, check_same_length, warn_identifiability
from nica.base.checkpointing import aux_identity
from nica.base.estimator import Estimator, FitData, FitInputs, FitPlan, fitted_alias
from nica.base.label_posterior import LabelPosteriorMixin
from nica.base.params import NotFittedError, log_jacobian, resolve_device
from nica.base.registry import register_estimator
from nica.base.restarts import RestartChoice, check_restarts
from nica.base.scaling import stats_of
from nica.datasets.features import align_columns, feature_names
from nica.datasets.streaming import ColumnStats, OneHotRows, RowSource, column_stats, is_out_of_core, \
    streamed_data_id
from nica.datasets.tabular import split_aux
from nica.ivae._format import IVAE_FORMAT
from nica.ivae.label_likelihood import encoder_input_without_u, ivae_label_log_likelihood
from nica.ivae.settings import SHAPE_DEFAULTS, model_config, objective, standardization, train_config
from nica.models.ivae import IVAEConfig, IVAEModule
from nica.models.objectives import AUTHORS_WEIGHTS, Objective
from nica.presets import PRESETS
from nica.training.trainer import TrainConfig


def _standardize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` as float32; x ``(N, d)``, mean and scale ``(d,)``."""
    return ((x - mean) / scale).astype(np.float32)


@register_estimator("IVAE", IVAE_FORMAT, model="ivae", unmixing=True)
class IVAE(LabelPosteriorMixin, Estimator):
    """Identifiable VAE (Khemakhem et al., AISTATS 2020) with an sklearn interface.

    Parameters
    ----------
    n_components : latent dimension n (at most the number of features d).
    prior : ``"gaussian"``, ``"laplace"`` or any name in :data:`nica.models.PRIORS`:
        the factorised conditional prior p(z|u).
    prior_mean : learn a u-dependent prior mean (``False``: zero mean, as the authors).
    prior_scale : learn a u-dependent prior variance / scale.
    Six parameters default to ``"auto"``, resolved at ``fit`` from the shape of X
    (:data:`SHAPE_DEFAULTS`): with as many latents as features the library's setting
    (per-feature z-scores, q(z | x), one encoder network, a table prior, 10,000 steps,
    cosine decay), with fewer the authors' recipe (raw X, q(z | x, u), two encoder
    networks, an MLP prior, 12,500 steps, plateau decay), which measured best on
    undercomplete data (docs/tuning.md, round h3). Any of them set explicitly wins.

    prior_net : map from u to the prior parameters: ``"table"`` (one row of parameters per
        label), ``"mlp"`` (the authors' choice), or ``"auto"`` (by shape; always an MLP for
        continuous u).
    shared_encoder : one encoder MLP with mean and log-variance heads (faster) instead of
        the authors' two separate networks; ``"auto"``: by shape.
    encoder_sees_u : feed u to the encoder, q(z | x, u) as in the paper; ``False`` gives
        q(z | x), which is exact for noise-free data; ``"auto"``: by shape.
    decoder : ``"gaussian"`` or ``"bernoulli"`` (binary X).
    decoder_var : fixed Gaussian decoder variance or ``"learned"`` (per feature).
    hidden_dim, n_layers, activation : MLP shape shared by encoder, decoder and prior;
        ``hidden_dim="auto"`` uses 10 units per feature of X, clipped to [50, 100].
    objective : ``"elbo"``, ``"reweighted"`` (the authors' weighted decomposition) or
        ``"annealed"`` (reweighted → ELBO); see :mod:`nica.models.objectives`.
    objective_weights : (reconstruction, MI, TC, dimension-wise KL) weights of the
        reweighted objective; default the authors' (100, 1, 0, 10).
    batch_size, learning_rate, max_steps, lr_schedule : optimisation (Adam); ``max_steps``
        and ``lr_schedule`` ``"auto"``: by shape.
    n_iter_no_change, tol : early stopping on the mean training ELBO per epoch.
    compile : compile the training loss with ``torch.compile``: a one-off compilation
        (about a minute on 2 CPU cores) for a cheaper step; worth it for long fits only
        (measured in docs/performance.md).
    analytic_gradients : compute the gradients of the default model with the hand-derived
        backward of :mod:`nica.models.analytic` instead of autograd: same values and
        gradients, about 2x faster a fit (docs/performance.md). Models it does not
        cover (e.g. the authors' preset) train through autograd whatever this says.
    n_restarts : K independent initialisations trained side by side as one batched model
        (far cheaper than K fits); one is kept by ``selection``.
    checkpoint_dir, checkpoint_every : write the full training state to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps (atomically), so
        that ``fit(X, u, resume=True)`` can continue an interrupted fit.
    selection : rule that picks the kept restart without the true sources: ``"agreement"``
        (closest to the other restarts up to permutation), ``"elbo"`` (final training
        ELBO; also called ``"score"``) or ``"first"``; see :mod:`nica.training.selection`.
    standardize : how X is scaled before fitting (Gaussian decoder only): ``True`` z-scores
        each feature, ``"global"`` centres each feature and divides all by one scale (the
        root mean feature variance, which keeps the features' relative scales), ``False``
        leaves X as it is; ``"auto"``: by shape (docs/tuning.md, round h3).
    u_type : ``"auto"``, ``"categorical"`` or ``"continuous"``.
    device : ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    n_threads : torch CPU threads during ``fit`` (restored afterwards); ``None`` leaves
        torch's setting alone. One thread is as fast for these small networks and stays
        near a fair share on a busy machine (:mod:`nica._threads`).
    random_state : int, ``numpy.random.Generator`` or None; resolved once per fit.
    verbose : show a progress bar during fit.

    Attributes
    ----------
    module_ : the fitted :class:`nica.models.IVAEModule`.
    config_ : its :class:`nica.models.IVAEConfig`.
    history_ : :class:`nica.training.TrainHistory` (ELBO per epoch, steps, time).
    score_ : mean training ELBO per sample of the last epoch (of the kept restart), in the
        units of X (:attr:`score_name` says so); ``elbo_`` is the same, its former name.
    selected_restart_ : index of the kept restart.
    restart_scores_ : ``(n_restarts,)`` each restart's score under ``selection``.
    restart_elbo_ : ``(n_restarts,)`` each restart's final training ELBO per sample.
    restart_agreement_ : ``(n_restarts, n_restarts)`` MCC between restarts' latents on up
        to 5,000 rows (None for a single restart).
    restarts_module_ : every restart as one stacked module (saved by :meth:`save` from
        model format 3 on); see :meth:`transform_restarts`.
    feature_names_in_ : ``(n_features,)`` X's column names when fitted on a table (a
        DataFrame, an AnnData, or a CSV/parquet file with a header through the CLI), else
        None; new data are realigned by these names and refused when they differ.
    u_classes_ : the fitted labels of a categorical u, the columns of
        :meth:`predict_proba_u` (p(u | x) from the ELBO under each label, new x without u).
    n_features_in_, n_steps_, fit_time_, seed_ : as named.

    Examples
    --------
    >>> from nica import IVAE, make_nonstationary, mean_corr_coef
    >>> data = make_nonstationary(2, n_segments=10, n_per_segment=100, random_state=0)
    >>> model = IVAE(2, max_steps=50, random_state=0).fit(data.x, data.u)
    >>> model.transform(data.x, data.u).shape
    (1000, 2)
    """

    _conditional = True
    score_name = "ELBO"
    components_reason = "; iVAE needs n_components <= n_features"
    u_required = "u is required: iVAE conditions its prior on the auxiliary variable"
    streams = True
    data_parallel = True
    elbo_ = fitted_alias("score_")

    def __init__(
        self,
        n_components: int,
        *,
        prior: str = "gaussian",
        prior_mean: bool = False,
        prior_scale: bool = True,
        prior_net: str = "auto",
        shared_encoder: bool | str = "auto",
        encoder_sees_u: bool | str = "auto",
        decoder: str = "gaussian",
        decoder_var: float | str = 0.1,
        hidden_dim: int | str = "auto",
        n_layers: int = 3,
        activation: str = "xtanh",
        objective: str = "reweighted",
        objective_weights: tuple[float, float, float, float] = tuple(asdict(AUTHORS_WEIGHTS).values()),
        anneal_fraction: float = 0.625,
        batch_size: int = 64,
        learning_rate: float = 1e-2,
        max_steps: int | str = "auto",
        lr_schedule: str = "auto",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        compile: bool = False,
        analytic_gradients: bool = True,
        n_restarts: int = 1,
        selection: str = "agreement",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1_000,
        standardize: bool | str = "auto",
        u_type: str = "auto",
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
        self.shared_encoder = shared_encoder
        self.encoder_sees_u = encoder_sees_u
        self.decoder = decoder
        self.decoder_var = decoder_var
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.objective = objective
        self.objective_weights = objective_weights
        self.anneal_fraction = anneal_fraction
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.compile = compile
        self.analytic_gradients = analytic_gradients
        self.n_restarts = n_restarts
        self.selection = selection
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.standardize = standardize
        self.u_type = u_type
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        """IVAE's own arguments (subclasses without their own ``__init__`` share them)."""
        import inspect

        sig = inspect.signature(IVAE.__init__)
        return [p for p in sig.parameters if p != "self"]

    @classmethod
    def from_preset(cls, name: str, n_components: int, **overrides: Any) -> IVAE:
        """An estimator with a named configuration from :data:`nica.presets.PRESETS`.

        ``"authors"`` is the authors' setting (reweighted objective, zero-mean
        variance-only prior, decoder variance 0.1, batch 64, Adam 1e-2, 12,500 steps).
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(n_components, **{**PRESETS[name], **overrides})

    def __repr__(self) -> str:
        defaults = type(self)(self.n_components).get_params()
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if k != "n_components" and v != defaults[k]]
        return f"{type(self).__name__}({', '.join([repr(self.n_components)] + changed)})"

    # ----------------------------------------------------------------- settings
    def _model_config(self, x_dim: int, aux: AuxEncoder, n_models: int = 1) -> IVAEConfig:
        return model_config(self, x_dim, aux, n_models)

    def _train_config(self, x_dim: int | None = None) -> TrainConfig:
        """Optimisation settings; ``x_dim`` resolves the ``"auto"`` ones (without it they
        take the square-shape values, for checks made before the data are seen)."""
        return train_config(self, x_dim)

    def _objective(self) -> Objective:
        """The training objective (name, weights, annealing), checked."""
        return objective(self)

    def _check_restarts(self) -> int:
        return check_restarts(self.n_restarts, self.selection)

    def _standardization(self, stats: ColumnStats) -> tuple[np.ndarray, np.ndarray]:
        return standardization(self, stats)

    # ----------------------------------------------------------------- fitting: the skeleton's hooks
    def _check_observations(self, x: Any) -> None:
        if self.decoder == "bernoulli" and not is_out_of_core(x) and not np.isin(x, (0.0, 1.0)).all():
            raise ValueError("decoder='bernoulli' needs binary X (0/1 values only)")

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        d, aux = inputs.n_features, inputs.aux
        training = self._train_config(d)
        training_objective = self._objective()
        training.validate()
        config = self._model_config(d, aux, self._check_restarts())
        if self._conditional:
            warn_identifiability(aux.n_values, self.n_components, prior=self.prior,
                                 prior_mean=self.prior_mean, prior_scale=self.prior_scale)
        analytic = bool(self.analytic_gradients)

        def configure(module: IVAEModule) -> None:
            module.objective, module.analytic_gradients = training_objective, analytic

        return FitPlan(lambda: IVAEModule(config), training, configure)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        """Standardised X and encoded u on ``device``, and the arrays that identify them in a
        checkpoint's fingerprint; an out-of-core X is read from disk batch by batch."""
        x = inputs.x
        if is_out_of_core(x):  # one chunked pass; X itself is never loaded whole
            stats = column_stats(x, "X")
        else:
            stats = stats_of(x)
        x_mean, x_scale = self._standardization(stats)
        u_t = self._aux_rows(inputs.u, stats.n_rows, inputs.aux).to(device)
        state = {"x_mean": x_mean, "x_scale": x_scale}
        if is_out_of_core(x):  # mini-batches are read from disk as training needs them
            return FitData(RowSource(x, x_mean, x_scale, device), u_t,
                           (*streamed_data_id(stats), *aux_identity(u_t)),
                           log_jacobian(x_scale), state)
        x_std = _standardize(x, x_mean, x_scale)
        return FitData(torch.from_numpy(x_std).to(device), u_t, (x_std, *aux_identity(u_t)), log_jacobian(x_scale),
                       state)

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:
        self.x_mean_, self.x_scale_ = data.state["x_mean"], data.state["x_scale"]
        self.restart_elbo_ = choice.fit_scores - log_jacobian(self.x_scale_)
        self.score_ = float(self.restart_elbo_[choice.selected])

    def describe_score(self) -> str:
        """The training ELBO in words: the last epoch's mean, as the progress bar showed."""
        self._check_fitted()
        k = len(self.restart_elbo_)
        shown = "the progress bar showed the restarts' mean and range" if k > 1 else "as the progress bar showed"
        return f"training ELBO {self.score_:.3f} per sample in the units of X (the last epoch's mean; {shown})"

    # ----------------------------------------------------------------- helpers
    def _aux_rows(self, u: Any, n_samples: int, aux: AuxEncoder | None = None) -> torch.Tensor | OneHotRows:
        """The network's auxiliary input ``(n_samples, aux_dim)`` under ``aux`` (default: the
        fitted one): a float32 tensor, or for categorical u the label indices that give its
        one-hot rows on indexing (:class:`OneHotRows`, memory linear in N, not in N x labels)."""
        aux = self.aux_encoder_ if aux is None else aux
        if aux.kind == "none":
            return torch.zeros((n_samples, 0))
        if u is None:
            raise ValueError("u is required for a model fitted with an auxiliary variable")
        check_same_length(np.empty(n_samples), np.asarray(u), "X", "u")
        if aux.kind == "categorical":
            return OneHotRows(aux.label_index(u), aux.dim)
        return torch.from_numpy(aux.transform(u))

    def _inputs(self, X: Any, u: Any, *, encoder_only: bool = False
                ) -> tuple[torch.Tensor | RowSource, torch.Tensor | OneHotRows]:
        """Standardised X (a tensor, or a chunked reader for out-of-core X) and encoded u.

        ``encoder_only``: u feeds the encoder q(z | x[, u]) alone, so for an encoder that
        does not see u, u may be None (it is then not read at all).
        """
        self._check_fitted()
        X, u = split_aux(X, u)
        x = self._observations(X)
        if encoder_only and u is None:
            return x, encoder_input_without_u(self.config_, x.shape[0])
        return x, self._aux_rows(u, x.shape[0])

    def _observations(self, X: Any) -> torch.Tensor | RowSource:
        """X checked against the fit and standardised: a tensor, or a chunked reader."""
        raw = X
        if is_out_of_core(X):
            if len(X.shape) != 2 or X.shape[0] < 1:
                raise ValueError(f"X must be 2-D (n_samples, n_features) with at least one row, got {X.shape}")
        else:
            raw = align_columns(check_observations(X, "X", min_samples=1), feature_names(X),
                                getattr(self, "feature_names_in_", None))
        if raw.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {raw.shape[1]} features but the model was fitted with {self.n_features_in_}")
        return (RowSource(raw, self.x_mean_, self.x_scale_, self.device_) if is_out_of_core(raw)
                else torch.from_numpy(_standardize(raw, self.x_mean_, self.x_scale_)))

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Posterior means E[z | x, u]: ``(n_samples, n_components)``.

        u may be left out (also for new data whose u is unknown) when the encoder does not
        see u (``encoder_sees_u=False``, the default): the latents are then the same as
        with u. An encoder q(z | x, u) needs u.
        """
        x, u_t = self._inputs(X, u, encoder_only=True)
        z = self._batched(lambda xb, ub: self.module_.inference(xb, ub)[0][0], x, u_t).numpy()
        if not np.isfinite(z).all():
            raise FloatingPointError(
                "the encoder produced non-finite latents; X may hold values far outside the "
                "range seen at fit time"
            )
        return z

    @torch.no_grad()
    def transform_restarts(self, X: Any, u: Any = None) -> np.ndarray:
        """Posterior means of every restart: ``(n_restarts, n_samples, n_components)``.

        Available after ``fit`` and after :func:`nica.load` (models saved in format 3 on);
        row ``selected_restart_`` equals :meth:`transform`.
        """
        self._check_fitted()
        if not hasattr(self, "restarts_module_"):
            raise NotFittedError("this model was saved without its restarts (model format < 3, before nica "
                                 "kept them): only the kept restart is available; refit to get them all")
        x, u_t = self._inputs(X, u, encoder_only=True)
        return self._batched(lambda xb, ub: self.restarts_module_.inference(xb, ub)[0], x, u_t, dim=1).numpy()

    @torch.no_grad()
    def sample_posterior(
        self,
        X: Any,
        u: Any = None,
        n_samples: int = 1,
        random_state: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draws from q(z | x, u): ``(n_samples, n_rows, n_components)``."""
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        x, u_t = self._inputs(X, u, encoder_only=True)
        gen = torch.Generator(device=self.device_).manual_seed(draw_seed(random_state))

        def draw(xb: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
            mean, logvar = (t[0] for t in self.module_.inference(xb, ub))
            return torch.stack([self.module_.reparameterize(mean, logvar, gen) for _ in range(n_samples)])

        return self._batched(draw, x, u_t, dim=1).numpy()

    @torch.no_grad()
    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Decoder mean E[x | z] in the units of X: ``(n_rows, n_features)``."""
        self._check_fitted()
        z = check_observations(Z, "Z", min_samples=1)
        if z.shape[1] != self.n_components:
            raise ValueError(f"Z has {z.shape[1]} columns but the model has {self.n_components} components")
        x_std = self._batched(lambda zb: self.module_.generative(zb)[0], torch.from_numpy(z)).numpy()
        return x_std * self.x_scale_ + self.x_mean_

    @torch.no_grad()
    def score_samples(
        self, X: Any, u: Any = None, n_samples: int = 10, random_state: int | None = 0
    ) -> np.ndarray:
        """Per-sample ELBO (a lower bound on log p(x | u), in the units of X): ``(n_rows,)``.

        The reconstruction term averages ``n_samples`` posterior draws seeded by ``random_state``.
        """
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        x, u_t = self._inputs(X, u)
        gen = torch.Generator(device=self.device_).manual_seed(draw_seed(random_state))
        elbo = self._batched(lambda xb, ub: self.module_.elbo(xb, ub, n_samples=n_samples, generator=gen)[0], x, u_t)
        return elbo.numpy() - self._log_jacobian()

    def _label_log_likelihood(self, X: Any) -> np.ndarray:
        """The ELBO under every fitted label, up to a term constant in the label (``predict_u``):
        ``(n_rows, n_labels)`` float64, the same seeded noise for every label."""
        self._check_fitted()
        self._check_categorical_u()
        x = self._observations(split_aux(X, None)[0])
        generator = torch.Generator(device=self.device_).manual_seed(0)
        n_labels = self.aux_encoder_.dim
        return self._batched(lambda xb: ivae_label_log_likelihood(self.module_, xb, n_labels, generator=generator),
                             x).double().numpy()


@register_estimator("VAE", IVAE_FORMAT, model="vae")
class VAE(IVAE):
    """Plain VAE baseline: prior N(0, I) independent of u, encoder q(z | x).

    Same parameters and defaults as :class:`IVAE` (so the default objective is the same
    reweighted one; pass ``objective="elbo"`` for the textbook VAE); ``u`` is accepted
    and ignored. With an unconditional prior the latents are not identifiable (any
    rotation fits equally well), so MCC is expected to be lower: the contrast shows
    what conditioning the prior on u buys.
    """

    _conditional = False
    uses_u = False
    u_required = None


__all__ = ["IVAE", "SHAPE_DEFAULTS", "VAE", "NotFittedError", "log_jacobian", "resolve_device"]
