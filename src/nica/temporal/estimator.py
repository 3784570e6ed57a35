"""``TemporalIVAE``: nonlinear ICA of time series with a learned transition prior, hooks of
the estimator skeleton (:class:`nica.base.Estimator`: restarts, checkpoints and resume,
divergence handling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._validation import AuxEncoder, check_observations
from nica.base.estimator import Estimator, FitData, FitInputs, FitPlan
from nica.base.params import check_n_components, check_positive_int, log_jacobian
from nica.base.registry import register_estimator
from nica.base.restarts import RestartChoice, check_restarts
from nica.base.scaling import standardization, stats_of
from nica.models.base import LatentModule, RestartStack
from nica.temporal._format import TEMPORAL_FORMAT
from nica.temporal.module import TemporalIVAEConfig, TemporalIVAEModule
from nica.temporal.series import Series, aux_encoder, check_series, encoded_aux, window_ends, windows
from nica.training.trainer import TrainConfig


@register_estimator("TemporalIVAE", TEMPORAL_FORMAT, model="temporal")
class TemporalIVAE(Estimator):
    """Temporal nonlinear ICA with a learned transition prior (TDRL, Yao et al. 2022).

    x_t = f(z_t) (+ noise) and z_t = g(z_{t-1..t-L}, eps_t) with independent innovations
    eps_t ~ p_eps(. | u_t), u_t the domain of step t (or any auxiliary label). The prior
    p(z_t | z_{t-1..t-L}, u_t) is written with a learned component-wise inverse transition
    eps_t = r(z_t, z_{t-1..t-L}, u_t) and its log-Jacobian (:mod:`nica.temporal.module`).

    Parameters
    ----------
    n_components : latent dimension n.
    lags : L, how many past latents the transition reads.
    inference : ``"flow"``: x_t = f(z_t) with f a normalising flow, fitted by exact
        maximum likelihood (needs ``n_components == n_features``); ``"vae"``: TDRL's
        factorised encoder q(z_t | x_t) and Gaussian decoder, fitted by the ELBO (for more
        features than latents).
    transition : ``"affine"``: eps_i = (z_{t,i} - m_i(past, u)) exp(-s_i(past, u)),
        invertible by construction; ``"mlp"``: TDRL's nonparametric eps_i = r_i(z_{t,i},
        past, u), one MLP per component, not guaranteed monotone in z_{t,i}.
    innovation : family of p_eps: ``"laplace"`` or ``"gaussian"``, with a scale per u.
    transition_hidden, transition_layers, transition_activation : the transition MLP(s)
        (``"lrelu"``, ``"xtanh"`` or ``"tanh"``).
    flow, n_flows, n_bins, tail_bound, flow_hidden : the bijection of ``"flow"``
        inference (:func:`nica.flows.make_flow_transform`).
    hidden_dim, n_layers, activation, decoder_var : encoder and decoder of ``"vae"``
        inference (the data are noise-free in the benchmark: a small fixed variance).
    batch_size, learning_rate, max_steps, lr_schedule, n_iter_no_change, tol : Adam on
        mini-batches of windows x_{t-L..t} by :func:`nica.training.train`.
    n_restarts : K initialisations trained side by side (one module each, the same
        batches); one is kept by ``selection``.
    selection : ``"score"`` (the highest last-epoch training log-likelihood or ELBO; also
        called ``"likelihood"`` and ``"elbo"``), ``"agreement"`` (the restart whose
        latents agree best with the others') or ``"first"`` (:mod:`nica.training.selection`).
    checkpoint_dir, checkpoint_every : write the training state to
        ``checkpoint_dir/checkpoint.pt`` every ``checkpoint_every`` steps, so that
        ``fit(X, u, resume=True)`` continues an interrupted fit to the same result.
    standardize : z-score each feature of X (over all steps) first.
    u_type : ``"auto"``, ``"categorical"`` or ``"continuous"``.
    device : ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    n_threads : torch CPU threads during ``fit`` (restored afterwards); ``None`` leaves
        torch's setting alone. One by default, as the other estimators (:mod:`nica._threads`).
    random_state : int, ``numpy.random.Generator`` or None; resolved once per fit.
    verbose : show a progress bar during fit.

    Attributes
    ----------
    module_ : the fitted :class:`nica.temporal.TemporalIVAEModule`; config_ : its config.
    history_ : :class:`nica.training.TrainHistory` (``score``: the mean objective per
        window, on standardised X).
    score_ : the kept restart's last-epoch mean log-likelihood (flow) or ELBO (VAE) per
        step, units of X (:attr:`score_name` says which).
    restart_score_ : ``(n_restarts,)`` the same for every restart.
    selected_restart_, restart_scores_, restart_agreement_, restarts_module_ : as
        :class:`nica.IVAE`.
    aux_encoder_, x_mean_, x_scale_, seed_, device_, n_features_in_, n_steps_,
    fit_time_ : as named.

    The defaults (flow inference, the affine transition, 3,000 steps of 256 windows) were
    chosen on tuning seeds: docs/results.md, section temporal, has the measurements.

    Notes
    -----
    The first L steps of each series have no full past: they enter the objective only as
    the past of later steps (it is conditional on them), and :meth:`transform` encodes
    them like any other step (the encoder reads x_t alone).

    Examples
    --------
    >>> from nica import TemporalIVAE
    >>> from nica.datasets.temporal import make_temporal
    >>> data = make_temporal(2, lags=1, n_domains=3, n_per_domain=100, random_state=0)
    >>> model = TemporalIVAE(2, lags=1, n_flows=1, max_steps=10, random_state=0).fit(data.x, data.u)
    >>> model.transform(data.x).shape
    (300, 2)
    """

    u_required = None
    input_kind = "series"

    def __init__(
        self,
        n_components: int,
        *,
        lags: int = 1,
        inference: str = "flow",
        transition: str = "affine",
        innovation: str = "laplace",
        transition_hidden: int = 64,
        transition_layers: int = 3,
        transition_activation: str = "lrelu",
        flow: str = "spline-autoregressive",
        n_flows: int = 3,
        n_bins: int = 8,
        tail_bound: float = 5.0,
        flow_hidden: int = 64,
        hidden_dim: int = 64,
        n_layers: int = 3,
        activation: str = "xtanh",
        decoder_var: float | str = 0.001,
        batch_size: int = 256,
        learning_rate: float = 2e-3,
        max_steps: int = 3_000,
        lr_schedule: str = "cosine",
        n_iter_no_change: int | None = None,
        tol: float = 1e-3,
        n_restarts: int = 1,
        selection: str = "score",
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
        self.lags = lags
        self.inference = inference
        self.transition = transition
        self.innovation = innovation
        self.transition_hidden = transition_hidden
        self.transition_layers = transition_layers
        self.transition_activation = transition_activation
        self.flow = flow
        self.n_flows = n_flows
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.flow_hidden = flow_hidden
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.decoder_var = decoder_var
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

    @property
    def score_name(self) -> str:  # type: ignore[override]
        """``"log-likelihood"`` (flow inference: exact) or ``"ELBO"`` (VAE inference)."""
        return "log-likelihood" if self.inference == "flow" else "ELBO"

    @property
    def progress_label(self) -> str:  # type: ignore[override]
        return "log-lik." if self.inference == "flow" else "ELBO"

    # ----------------------------------------------------------------- fitting: the skeleton's hooks
    def _config(self, x_dim: int, aux: AuxEncoder) -> TemporalIVAEConfig:
        n = int(self.n_components)
        if self.inference == "flow" and n != x_dim:
            raise ValueError(
                f"n_components={n} but X has {x_dim} features: inference='flow' is a bijection, so the latent "
                "dimension must equal the number of features (use inference='vae', or reduce X with PCA first)"
            )
        return TemporalIVAEConfig(
            x_dim=x_dim, n_latent=n, lags=check_positive_int(self.lags, "lags"), aux_dim=aux.dim,
            inference=self.inference, innovation=self.innovation,
            innovation_net="table" if aux.kind == "categorical" else "mlp", transition=self.transition,
            transition_hidden=check_positive_int(self.transition_hidden, "transition_hidden"),
            transition_layers=check_positive_int(self.transition_layers, "transition_layers"),
            transition_activation=self.transition_activation, flow=self.flow,
            n_flows=check_positive_int(self.n_flows, "n_flows"), n_bins=check_positive_int(self.n_bins, "n_bins"),
            tail_bound=float(self.tail_bound), flow_hidden=check_positive_int(self.flow_hidden, "flow_hidden"),
            hidden_dim=check_positive_int(self.hidden_dim, "hidden_dim"),
            n_layers=check_positive_int(self.n_layers, "n_layers"), activation=self.activation,
            decoder_var=self.decoder_var,
        )

    def _aux_encoder(self, series: Series) -> AuxEncoder:
        return aux_encoder(series, self.u_type)

    @staticmethod
    def _encoded_aux(series: Series, aux: AuxEncoder) -> np.ndarray:
        return encoded_aux(series, aux)

    def fit(self, X: Any, u: Any = None, *, resume: bool = False) -> TemporalIVAE:
        """Fit to one series or several.

        Parameters
        ----------
        X : one series ``(T, d)``, several ``(N, T, d)``, or a list of ``(T_i, d)`` arrays;
            each needs at least ``lags + 1`` steps.
        u : the domain (or auxiliary label) of each step, in X's layout: ``(T,)``,
            ``(N, T)`` or ``(N,)`` (one per series), or a list; None: one domain.
        resume : continue from the checkpoint in ``checkpoint_dir`` (if there is one), to
            the same model as an uninterrupted fit.

        Returns
        -------
        self
        """
        return super().fit(X, u, resume=resume)

    def _fit_inputs(self, X: Any, u: Any) -> FitInputs:
        """One series or several, each with at least ``lags + 1`` steps; u's encoding."""
        lags = check_positive_int(self.lags, "lags")
        series = check_series(X, u, min_length=lags + 1)
        check_n_components(self.n_components, series.n_features)
        return FitInputs(series, series.u, self._aux_encoder(series), series.n_features)

    def _fit_plan(self, inputs: FitInputs) -> FitPlan:
        config = self._config(inputs.n_features, inputs.aux)
        n_restarts = check_restarts(self.n_restarts, self.selection)
        train_config = TrainConfig(
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            max_steps=self.max_steps, lr_schedule=self.lr_schedule, n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
        )
        train_config.validate()
        if n_restarts == 1:
            return FitPlan(lambda: TemporalIVAEModule(config), train_config)
        return FitPlan(lambda: RestartStack([TemporalIVAEModule(config) for _ in range(n_restarts)]), train_config)

    def _fit_data(self, inputs: FitInputs, plan: FitPlan, device: torch.device) -> FitData:
        """Windows x_{t-L..t} of the standardised series ``(N, L + 1, d)`` and the encoded u
        of their last step."""
        series, lags = inputs.x, int(self.lags)
        x_all, _ = series.concatenated()
        x_mean, x_scale = standardization(stats_of(x_all), "feature" if self.standardize else "none")
        aux_rows = self._encoded_aux(series, inputs.aux)[window_ends(series.x, lags)]
        x_win = windows([(s - x_mean) / x_scale for s in series.x], lags)
        return FitData(torch.from_numpy(x_win).to(device), torch.from_numpy(aux_rows).to(device), (x_win, aux_rows),
                       log_jacobian(x_scale), {"x_mean": x_mean, "x_scale": x_scale})

    def _latents_of(self, module: LatentModule, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = module.latents(x[:, -1], u)  # the windows' last steps
        return z if z.dim() == 3 else z[None]

    def _set_outputs(self, inputs: FitInputs, data: FitData, choice: RestartChoice) -> None:
        self.x_mean_, self.x_scale_ = data.state["x_mean"], data.state["x_scale"]
        self.restart_score_ = choice.fit_scores - log_jacobian(self.x_scale_)
        self.score_ = float(self.restart_score_[choice.selected])

    def describe_score(self) -> str:
        self._check_fitted()
        return f"{self.score_name} {self.score_:.3f} per step"

    # ----------------------------------------------------------------- inference
    def _series(self, X: Any, u: Any = None, min_length: int = 1) -> Series:
        self._check_fitted()
        return check_series(X, u, min_length=min_length, n_features=self.n_features_in_)

    def transform(self, X: Any, u: Any = None) -> np.ndarray | list[np.ndarray]:
        """Latents of every step, in X's layout: ``(T, n)``, ``(N, T, n)`` or a list.

        z_t = f^{-1}(x_t) (flow) or the posterior mean of q(z_t | x_t) (VAE); u is not
        needed (the encoder reads x_t alone) and is ignored.
        """
        series = self._series(X)
        x, _ = series.concatenated()
        z = self._batched(self.module_.latents, ((x - self.x_mean_) / self.x_scale_).astype(np.float32)).numpy()
        return series.restore(z)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Observations x_t = f(z_t) (flow) or the decoder mean (VAE), units of X:
        ``(n_rows, n_components) -> (n_rows, n_features)``."""
        self._check_fitted()
        z = check_observations(Z, "Z", min_samples=1)
        if z.shape[1] != self.config_.n_latent:
            raise ValueError(f"Z has {z.shape[1]} columns but the model has {self.config_.n_latent} latents")
        return self._batched(self.module_.decode, z).numpy() * self.x_scale_ + self.x_mean_

    def score_samples(self, X: Any, u: Any = None, *, random_state: int = 0) -> np.ndarray | list[np.ndarray]:
        """log p(x_t | x_{t-1..t-L}, u_t) (flow, exact) or its ELBO (VAE, one sample drawn
        from ``random_state``) of every step t >= L, units of X: ``(T - L,)`` per series
        in X's layout."""
        self._check_fitted()
        lags = self.config_.lags
        series = self._series(X, u, min_length=lags + 1)
        x_win = windows([(s - self.x_mean_) / self.x_scale_ for s in series.x], lags).astype(np.float32)
        aux = self._encoded_aux(series, self.aux_encoder_)[window_ends(series.x, lags)]
        generator = torch.Generator(device=self.device_).manual_seed(int(random_state))

        def terms(xb: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
            observation, log_prior = self.module_.window_terms(xb, ub, generator)
            return observation + log_prior

        scores = self._batched(terms, x_win, aux).numpy() - self._log_jacobian()
        parts = np.split(scores, np.cumsum([len(s) - lags for s in series.x])[:-1])
        return parts[0] if series.layout == "single" else np.stack(parts) if series.layout == "stacked" else parts

    def score(self, X: Any, u: Any = None) -> float:
        """Mean log-likelihood (flow) or ELBO (VAE) per step t >= L; higher is better."""
        scores = self.score_samples(X, u)
        return float(np.mean(np.concatenate([np.ravel(s) for s in scores]) if isinstance(scores, list)
                             else scores))


__all__ = ["TemporalIVAE"]
