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
from nica._random import draw_seed
from nica._validation import AuxEncoder, check_observations, check_same_length, warn_identifiability
from nica.datasets.features import feature_names
from nica.flows.module import IFlowConfig, IFlowModule
from nica.training.trainer import TrainConfig, train


class IFlow(LabelPosteriorMixin, ParamsMixin):
    """Identifiable normalising flow (Khemakhem et al. 2020, §special case; Li et al. 2020).

    x = f(z) with f a normalising flow and z ~ p(z | u), the same u-conditioned
    factorised prior as :class:`nica.IVAE` (here with learned u-dependent mean and scale
    by default, as iFlow); fitted by exact maximum likelihood with Adam on mini-batches.
    There is no observation noise, so the latent dimension equals the number of features.

    Parameters
    ----------
    n_components : latent dimension; must equal the number of features of X.
    prior : ``"gaussian"``, ``"laplace"`` or another name in :data:`nica.models.PRIORS`.
    prior_mean, prior_scale : learn a u-dependent prior location / scale.
    prior_net : ``"table"``, ``"mlp"`` or ``"auto"`` (table for categorical u, MLP for
        continuous u).
    flow : each step's element-wise transform: ``"spline-autoregressive"`` (iFlow's
        rational-quadratic spline autoregressive flow), ``"spline-coupling"`` or
        ``"affine-coupling"`` (RealNVP); every step also has a permutation and an LU map.
    n_flows, n_bins, tail_bound : number of steps, spline bins, spline interval [-B, B]
        (on standardised X).
    hidden_dim, n_layers, activation : conditioner MLPs of the flow (and the prior MLP).
    batch_size, learning_rate, max_steps, lr_schedule, n_iter_no_change, tol : Adam
        optimisation by :func:`nica.training.train` (early stopping on the training
        log-likelihood). ``max_steps=12_500`` is the iVAE protocol's budget (20 epochs of
        40,000 points at batch 64); on the uncentered benchmark (``nica reproduce iflow``
        data, tuning seeds 4001-4003) 5,000 steps gave MCC 0.687 and 12,500 gave 0.737,
        higher on every seed (``benchmarks/iflow_budget.py``). Smaller data need fewer.
    standardize : z-score each feature of X first (splines act on [-B, B]).
    checkpoint_dir, checkpoint_every : write the training state to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps, so that
        ``fit(X, u, resume=True)`` continues an interrupted fit to the same result.
    u_type : ``"auto"``, ``"categorical"`` or ``"continuous"``.
    device : ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    random_state : int, ``numpy.random.Generator`` or None; resolved once per fit.
    verbose : show a progress bar during fit.

    Attributes
    ----------
    module_ : the fitted :class:`nica.flows.IFlowModule`; config_ : its config.
    history_ : :class:`nica.training.TrainHistory` (``elbo`` is the exact log-likelihood
        per sample, on standardised X).
    log_likelihood_ : mean training log p(x | u) per sample of the last epoch, units of X.
    u_classes_ : the fitted labels of a categorical u (the columns of :meth:`predict_proba_u`,
        the exact posterior p(u | x) ∝ p(x | u) p(u) with p(u) the fit-time frequencies).
    feature_names_in_ : X's column names when fitted on a DataFrame / AnnData, else None;
        new data are realigned by them (refused when they differ).
    aux_encoder_, x_mean_, x_scale_, seed_, device_, n_features_in_, n_steps_,
    fit_time_ : as named.

    Examples
    --------
    >>> from nica import IFlow, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=100, random_state=0)
    >>> model = IFlow(2, n_flows=2, max_steps=20, random_state=0).fit(data.x, data.u)
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
        prior: str = "gaussian",
        prior_mean: bool = True,
        prior_scale: bool = True,
        prior_net: str = "auto",
        flow: str = "spline-autoregressive",
        n_flows: int = 5,
        n_bins: int = 8,
        tail_bound: float = 5.0,
        hidden_dim: int = 64,
        n_layers: int = 2,
        activation: str = "relu",
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        max_steps: int = 12_500,
        lr_schedule: str = "cosine",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        standardize: bool = True,
        u_type: str = "auto",
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 1_000,
        device: str = "auto",
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
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.u_type = u_type
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting
    def _config(self, x_dim: int, aux: AuxEncoder) -> IFlowConfig:
        n = check_positive_int(self.n_components, "n_components")
        if n != x_dim:
            raise ValueError(
                f"n_components={n} but X has {x_dim} features: a flow is a bijection, so the "
                "latent dimension must equal the number of features (reduce X with PCA first, "
                "or use nica.IVAE, which allows n_components < n_features)"
            )
        prior_net = self.prior_net
        if prior_net == "auto":
            prior_net = "table" if aux.kind == "categorical" else "mlp"
        return IFlowConfig(
            x_dim=x_dim, aux_dim=aux.dim, prior=self.prior,
            prior_mean=bool(self.prior_mean), prior_scale=bool(self.prior_scale),
            prior_net=prior_net, flow=self.flow,
            n_flows=check_positive_int(self.n_flows, "n_flows"),
            n_bins=check_positive_int(self.n_bins, "n_bins"), tail_bound=float(self.tail_bound),
            hidden_dim=check_positive_int(self.hidden_dim, "hidden_dim"),
            n_layers=check_positive_int(self.n_layers, "n_layers"), activation=self.activation,
        )

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
        names = feature_names(X)
        x = check_observations(X, "X")
        if u is None:
            raise ValueError("u is required: the flow's prior p(z | u) is conditioned on it")
        aux = AuxEncoder(self.u_type).fit(u, len(x))
        config = self._config(x.shape[1], aux)
        train_config = TrainConfig(
            objective="elbo", batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self.max_steps, lr_schedule=self.lr_schedule,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
        )
        train_config.validate()
        warn_identifiability(aux.n_values, config.x_dim, prior=config.prior,
                             prior_mean=config.prior_mean, prior_scale=config.prior_scale)
        device = resolve_device(self.device)
        if self.standardize:
            x_mean = x.mean(0)
            x_scale = np.where(x.std(0) > 0, x.std(0), 1.0).astype(np.float32)
        else:
            x_mean, x_scale = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
        x_std = ((x - x_mean) / x_scale).astype(np.float32)
        u_enc = aux.transform(u)
        checkpoint, seed = fit_checkpointing(self, (x_std, u_enc), resume)
        module = seeded_init(lambda: IFlowModule(config), seed).to(device)
        x_t, u_t = torch.from_numpy(x_std).to(device), torch.from_numpy(u_enc).to(device)
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        history = train(module, x_t, u_t, train_config, generator=generator, progress=self.verbose,
                        checkpoint=checkpoint, resume=resume, elbo_offset=float(np.log(x_scale).sum()))

        # fitted state only after training succeeded (a failed refit keeps the old fit)
        self.module_, self.config_, self.history_ = module, config, history
        self.aux_encoder_, self.x_mean_, self.x_scale_ = aux, x_mean, x_scale
        self.seed_, self.device_ = seed, device
        self.n_features_in_, self.feature_names_in_ = x.shape[1], names
        self.n_steps_, self.fit_time_ = history.n_steps, history.fit_time
        self.log_likelihood_ = history.elbo[-1] - self._log_jacobian()
        return self

    def fit_transform(self, X: Any, u: Any) -> np.ndarray:
        """``fit(X, u)`` then ``transform(X)``."""
        return self.fit(X, u).transform(X)

    # ----------------------------------------------------------------- inference
    def _log_jacobian(self) -> float:
        """log |d x_std / d x| per sample: converts log-likelihoods back to the units of X."""
        return float(np.log(self.x_scale_).sum())

    def _standardized(self, X: Any, name: str = "X") -> torch.Tensor:
        check_fitted(self, "module_")
        x = check_new_observations(X, self.n_features_in_, name, getattr(self, "feature_names_in_", None))
        return torch.from_numpy((x - self.x_mean_) / self.x_scale_)

    @torch.no_grad()
    def _batched(self, fn: Any, *tensors: torch.Tensor) -> torch.Tensor:
        out = [fn(*(t[rows].to(self.device_) for t in tensors)).cpu()
               for rows in chunks(len(tensors[0]), INFERENCE_CHUNK)]
        return torch.cat(out)

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Latents z = f^{-1}(x): ``(n_rows, n_components)``; ``u`` is not needed."""
        x = self._standardized(X)
        return self._batched(lambda xb: self.module_.encode(xb)[0], x).numpy()

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Observations x = f(z) in the units of X: ``(n_rows, n_features)``."""
        check_fitted(self, "module_")
        z = torch.from_numpy(check_new_observations(Z, self.n_features_in_, "Z"))
        x_std = self._batched(self.module_.decode, z).numpy()
        return x_std * self.x_scale_ + self.x_mean_

    def score_samples(self, X: Any, u: Any) -> np.ndarray:
        """Exact log p(x | u) per row in the units of X: ``(n_rows,)``."""
        x = self._standardized(X)
        if u is None:
            raise ValueError("u is required: the likelihood depends on the prior p(z | u)")
        check_same_length(x, np.asarray(u), "X", "u")
        u_t = torch.from_numpy(self.aux_encoder_.transform(u))
        return self._batched(self.module_.log_prob, x, u_t).numpy() - self._log_jacobian()

    def score(self, X: Any, u: Any) -> float:
        """Mean log-likelihood per sample; higher is better."""
        return float(self.score_samples(X, u).mean())

    def _label_log_likelihood(self, X: Any) -> np.ndarray:
        """log p(x | u = k) for every fitted label k, less log |det J| (the same for every k):
        ``(n_rows, n_labels)``; ``predict_proba_u`` is then the exact posterior p(u | x)."""
        x = self._standardized(X)
        self._check_categorical_u()
        eye = torch.eye(self.aux_encoder_.dim)

        def per_label(xb: torch.Tensor) -> torch.Tensor:
            z = self.module_.encode(xb)[0]
            return torch.stack([self.module_.prior.log_prob(z, self.module_.prior_params(
                eye[k].expand(len(xb), -1).to(xb.device))).sum(-1) for k in range(len(eye))], dim=-1)

        return self._batched(per_label, x).double().numpy()


__all__ = ["IFlow"]
