"""``IFlow``: the identifiable flow with a scikit-learn interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._base import (
    INFERENCE_CHUNK,
    ParamsMixin,
    check_fitted,
    check_new_observations,
    check_positive_int,
    chunks,
    resolve_device,
    seeded_init,
)
from nica._checkpointing import fit_checkpointing
from nica._label_posterior import LabelPosteriorMixin
from nica._threads import fits_on_threads
from nica._validation import AuxEncoder, check_observations, check_same_length, warn_identifiability
from nica._restarts import SELECTION_SAMPLES, check_restarts
from nica.datasets.features import feature_names
from nica.datasets.tabular import split_aux
from nica.flows._format import IFLOW_FORMAT
from nica.flows.module import STACKABLE_FLOW, IFlowConfig, IFlowModule
from nica.flows.projection import InputProjection
from nica.flows.transforms import FLOW_STEPS
from nica.persistence import register_estimator, save_model
from nica.training.selection import restart_scores
from nica.training.trainer import TrainConfig, train


#: ``max_steps="auto"``: this many steps per latent, within [min, max] (docs/tuning.md: on
#: 10 -> 10 data 5,000 steps gave median MCC 0.90 and 10,000 gave 0.99; 5 -> 5 needs 5,000)
AUTO_STEPS_PER_LATENT, AUTO_STEPS_MIN, AUTO_STEPS_MAX = 1_000, 5_000, 10_000


@register_estimator("IFlow", IFLOW_FORMAT)
class IFlow(LabelPosteriorMixin, ParamsMixin):
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
    likelihood kept. iFlow's rational-quadratic spline
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
    tail_bound : spline interval [-B, B] (on standardised X) of the zuko spline flows.
    hidden_dim, n_layers, activation : conditioner MLPs of a zuko flow, and the prior MLP
        for continuous u.
    init_noise : the invertible MLP's weights start at the identity plus this times
        standard normal noise (what makes restarts differ).
    batch_size, learning_rate, max_steps, lr_schedule, n_iter_no_change, tol : Adam
        optimisation by :func:`nica.training.train` (early stopping on the training
        log-likelihood). ``max_steps="auto"``: 1,000 steps per latent dimension, between
        5,000 and 10,000 (:data:`AUTO_STEPS_PER_LATENT`).
    n_restarts : K flows trained side by side as one batched model (invertible MLP only).
    selection : which restart is kept: ``"elbo"`` (the highest exact log-likelihood on
        the training data: for a flow the bound is tight), ``"agreement"`` or ``"first"``
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
    history_ : :class:`nica.training.TrainHistory` (``elbo`` is the exact log-likelihood
        per sample, on standardised X).
    log_likelihood_ : mean training log p(x | u) per sample of the kept restart, units of X.
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
        tail_bound: float = 5.0,
        hidden_dim: int = 64,
        n_layers: int = 2,
        activation: str = "relu",
        init_noise: float = 0.1,
        batch_size: int = 256,
        learning_rate: float = 3e-2,
        max_steps: int | str = "auto",
        lr_schedule: str = "cosine",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        n_restarts: int = 4,
        selection: str = "elbo",
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
        self.tail_bound = tail_bound
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.init_noise = init_noise
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.n_restarts = n_restarts
        self.selection = selection
        self.standardize = standardize
        self.u_type = u_type
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting
    def _config(self, x_dim: int, aux: AuxEncoder) -> IFlowConfig:
        n = check_positive_int(self.n_components, "n_components")
        if n > x_dim:
            raise ValueError(
                f"n_components={n} exceeds the {x_dim} features of X: a flow is a bijection, so it "
                "has at most as many latents as features"
            )
        if self.flow != STACKABLE_FLOW and self.flow not in FLOW_STEPS:
            raise ValueError(f"unknown flow {self.flow!r}; choose one of {(STACKABLE_FLOW, *FLOW_STEPS)}")
        n_restarts = check_restarts(self.n_restarts, self.selection)
        if not float(self.init_noise) >= 0:
            raise ValueError(f"init_noise must be >= 0, got {self.init_noise!r}")
        prior_net = self.prior_net
        if prior_net == "auto":
            prior_net = "table" if aux.kind == "categorical" else "mlp"
        return IFlowConfig(
            x_dim=n, aux_dim=aux.dim, prior=self.prior,
            prior_mean=bool(self.prior_mean), prior_scale=bool(self.prior_scale),
            prior_net=prior_net, flow=self.flow,
            n_flows=check_positive_int(self.n_flows, "n_flows"),
            n_bins=check_positive_int(self.n_bins, "n_bins"), tail_bound=float(self.tail_bound),
            hidden_dim=check_positive_int(self.hidden_dim, "hidden_dim"),
            n_layers=check_positive_int(self.n_layers, "n_layers"), activation=self.activation,
            init_noise=float(self.init_noise), n_models=n_restarts,
        )

    @fits_on_threads
    def fit(self, X: Any, u: Any, *, resume: bool = False) -> IFlow:
        """Fit by maximum likelihood.

        Parameters
        ----------
        X : ``(n_samples, n_features)`` observations, ``n_features == n_components``.
        u : ``(n_samples,)`` labels, ``(n_samples, n_labels)`` one-hot, or
            ``(n_samples, m)`` continuous auxiliary variables.
        resume : continue from the checkpoint in ``checkpoint_dir`` (if there is one), to
            the same model as an uninterrupted fit.

        Returns
        -------
        self
        """
        X, u = split_aux(X, u)  # u given as a column name of a DataFrame or AnnData
        names = feature_names(X)
        x = check_observations(X, "X")
        if u is None:
            raise ValueError("u is required: the flow's prior p(z | u) is conditioned on it")
        aux = AuxEncoder(self.u_type).fit(u, len(x))
        config = self._config(x.shape[1], aux)
        train_config = TrainConfig(
            objective="elbo", batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self._max_steps(config.x_dim), lr_schedule=self.lr_schedule,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
        )
        train_config.validate()
        warn_identifiability(aux.n_values, config.x_dim, prior=config.prior,
                             prior_mean=config.prior_mean, prior_scale=config.prior_scale)
        device = resolve_device(self.device)
        projection = InputProjection.fit(x, config.x_dim, bool(self.standardize))
        y, u_enc = projection.apply(x), aux.transform(u)
        checkpoint, seed = fit_checkpointing(self, (y, u_enc), resume)
        module = seeded_init(lambda: IFlowModule(config), seed).to(device)
        x_t, u_t = torch.from_numpy(y).to(device), torch.from_numpy(u_enc).to(device)
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        history = train(module, x_t, u_t, train_config, generator=generator, progress=self.verbose,
                        checkpoint=checkpoint, resume=resume, elbo_offset=projection.log_jacobian(),
                        score_name="log-lik.")

        # fitted state only after training succeeded (a failed refit keeps the old fit)
        module.eval()
        restart_ll = (self._mean_log_prob(module, x_t, u_t) - projection.log_jacobian()
                      + projection.mean_residual_log_density(x))
        scores, agreement = restart_scores(
            self.selection, model_elbo=np.nan_to_num(restart_ll, nan=-np.inf),
            latents=lambda: self._restart_latents(module, x_t, seed))
        chosen = int(np.argmax(scores))
        self.restarts_module_, self.module_ = module, module.select(chosen).eval()
        self.config_, self.history_ = self.module_.config, history
        self.selected_restart_, self.restart_scores_, self.restart_agreement_ = chosen, scores, agreement
        self.restart_log_likelihood_ = restart_ll
        self.restart_priors_ = module.restart_priors()
        self.aux_encoder_, self.feature_names_in_ = aux, names
        self._set_projection(projection)
        self.seed_, self.device_ = seed, device
        self.n_steps_, self.fit_time_ = history.n_steps, history.fit_time
        self.log_likelihood_ = float(restart_ll[chosen])
        return self

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
            return int(min(AUTO_STEPS_MAX, max(AUTO_STEPS_MIN, AUTO_STEPS_PER_LATENT * n)))
        return self.max_steps

    @staticmethod
    @torch.no_grad()
    def _mean_log_prob(module: IFlowModule, x: torch.Tensor, u: torch.Tensor) -> np.ndarray:
        """Mean log p(x | u) of every stacked model on all rows ``(K,)`` (standardised X)."""
        total = torch.zeros(module.config.n_models, dtype=torch.float64)
        for rows in chunks(len(x), INFERENCE_CHUNK):
            total += module.log_prob(x[rows], u[rows]).double().sum(-1).cpu()
        return (total / len(x)).numpy()

    @staticmethod
    @torch.no_grad()
    def _restart_latents(module: IFlowModule, x: torch.Tensor, seed: int) -> np.ndarray:
        """Latents of every restart on a seeded subsample ``(K, rows, n)``."""
        rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:SELECTION_SAMPLES])
        return module.encode(x[torch.from_numpy(rows).to(x.device)])[0].cpu().numpy()

    def fit_transform(self, X: Any, u: Any) -> np.ndarray:
        """``fit(X, u)`` then ``transform(X)``."""
        return self.fit(X, u).transform(X)

    # ----------------------------------------------------------------- inference
    def _checked(self, X: Any, name: str = "X") -> np.ndarray:
        check_fitted(self, "module_")
        return check_new_observations(X, self.n_features_in_, name, getattr(self, "feature_names_in_", None))

    @torch.no_grad()
    def _batched(self, fn: Any, *tensors: torch.Tensor) -> torch.Tensor:
        out = [fn(*(t[rows].to(self.device_) for t in tensors)).cpu()
               for rows in chunks(len(tensors[0]), INFERENCE_CHUNK)]
        return torch.cat(out)

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Latents z = f^{-1}(x): ``(n_rows, n_components)``; ``u`` is not needed (given as
        a column name of a DataFrame or AnnData X, as to ``fit``, that column is left out)."""
        x = self._checked(split_aux(X, u)[0])
        y = torch.from_numpy(self.projection_.apply(x))
        return self._batched(lambda yb: self.module_.encode(yb)[0][0], y).numpy()

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Observations x = f(z) in the units of X: ``(n_rows, n_features)`` (on the
        principal subspace when ``n_components < n_features``)."""
        check_fitted(self, "module_")
        z = torch.from_numpy(check_new_observations(Z, self.config_.x_dim, "Z"))
        y = self._batched(lambda zb: self.module_.decode(zb)[0], z).numpy()
        return self.projection_.reconstruct(y).astype(np.float32)

    def score_samples(self, X: Any, u: Any) -> np.ndarray:
        """Exact log p(x | u) per row in the units of X: ``(n_rows,)`` (with n < d, the
        flow's density on the principal subspace times the Gaussian density off it)."""
        X, u = split_aux(X, u)
        x = self._checked(X)
        if u is None:
            raise ValueError("u is required: the likelihood depends on the prior p(z | u)")
        check_same_length(x, np.asarray(u), "X", "u")
        y = torch.from_numpy(self.projection_.apply(x))
        u_t = torch.from_numpy(self.aux_encoder_.transform(u))
        log_py = self._batched(lambda yb, ub: self.module_.log_prob(yb, ub)[0], y, u_t).numpy()
        return log_py - self.projection_.log_jacobian() + self.projection_.residual_log_density(x)

    def score(self, X: Any, u: Any) -> float:
        """Mean log-likelihood per sample; higher is better."""
        return float(self.score_samples(X, u).mean())

    def _label_log_likelihood(self, X: Any) -> np.ndarray:
        """log p(x | u = k) for every fitted label k, less the terms that are the same for
        every k (the Jacobians and, for n < d, the density off the principal subspace):
        ``(n_rows, n_labels)``; ``predict_proba_u`` is then the exact posterior p(u | x)."""
        y = torch.from_numpy(self.projection_.apply(self._checked(X)))
        self._check_categorical_u()
        eye = torch.eye(self.aux_encoder_.dim)

        def per_label(yb: torch.Tensor) -> torch.Tensor:
            z = self.module_.encode(yb)[0]  # (1, batch, n)
            return torch.stack([self.module_.prior_log_prob(z, eye[k].expand(len(yb), -1).to(yb.device))[0]
                                for k in range(len(eye))], dim=-1)

        return self._batched(per_label, y).double().numpy()

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model (the kept restart) to directory ``path`` (JSON config +
        safetensors weights); :func:`nica.load` reads it back."""
        check_fitted(self, "module_")
        return save_model(self, path, overwrite=overwrite)


__all__ = ["IFlow"]
