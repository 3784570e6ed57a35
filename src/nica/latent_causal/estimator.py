"""``LatentCausalVAE``: an iVAE whose prior is a linear-Gaussian SCM with u-dependent
weights (the weight-variant latent causal model of Liu et al. 2022)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from nica.ivae._format import IVAE_FORMAT
from nica._validation import AuxEncoder
from nica.ivae.estimator import IVAE
from nica.models.ivae import IVAEConfig
from nica.models.latent_causal import LatentCausalPrior
from nica.base.registry import register_estimator

#: IVAE parameters that LatentCausalVAE fixes
FIXED_PARAMS = ("prior",)
#: default (reconstruction, MI, TC, dimension-wise KL) weights of the reweighted objective:
#: the authors' (100, 1, 0, 10) with the total correlation weighted like the dimension-wise KL
LATENT_CAUSAL_WEIGHTS = (100.0, 1.0, 10.0, 10.0)


@register_estimator("LatentCausalVAE", IVAE_FORMAT, model="latent-causal")
class LatentCausalVAE(IVAE):
    """iVAE with a latent causal prior: latents that depend on each other given u.

    The prior is the weight-variant linear-Gaussian latent causal model of Liu et al.
    (2022), in a fixed causal order (parents have lower indices):

        z_i = sum_{j < i} lambda_ij(u) z_j + n_i,    n_i ~ N(beta_i1(u), beta_i2(u)),

    i.e. p(z | u) = N((I - L)^-1 beta_1, (I - L)^-1 diag(beta_2) (I - L)^-T) with
    L = lambda(u) strictly lower triangular, all of lambda, beta_1 and beta_2 learned
    functions of u (a table per label, or an MLP for continuous u). Encoder, decoder,
    objective and training are those of :class:`nica.IVAE` (the posterior stays a
    diagonal Gaussian on z; the KL to the prior is analytic, see
    :mod:`nica.models.latent_causal`), so a comparison with ``IVAE(prior_mean=True)``
    isolates the prior.

    The model's latent order is fixed, which costs nothing (any DAG is lower triangular in
    some order and the decoder is free). With categorical u and weights free in every
    segment the latents are identified up to an invertible linear map at best (any linear
    map of such latents is again such an SCM), which :func:`nica.weak_mean_corr_coef`
    measures; evaluate as Liu et al. with :func:`nica.mean_corr_coef` against the true
    latents, and weak MCC. docs/results.md (section dependent-latents) has the argument,
    the conditions of Liu et al.'s result and the measurements behind the defaults.

    Parameters
    ----------
    n_components : latent dimension n.
    prior_mean : learn the u-dependent noise mean beta_1(u) (default ``True``; the
        theory uses both mean and variance of the noise).
    objective_weights : weights (reconstruction, MI, TC, dimension-wise KL) of the
        reweighted objective; default ``(100, 1, 10, 10)``: the total correlation weighted
        like the dimension-wise KL. The authors' weights (:class:`nica.IVAE`'s default,
        ``(100, 1, 0, 10)``) reward dependence between the latents, which the SCM prior
        absorbs into mixed latents (docs/results.md, section dependent-latents).
    weight_penalty : strength of an L1 penalty on the standardised weights
        lambda_ij(u) sd_j(u) / sd_i(u) (noise standard deviations; invariant to a rescaling
        of the latents), per sample, added to the loss: the assumption of a sparse graph,
        whose support is shared by all u, which breaks the linear ambiguity above. Default
        0 (none), as measured in docs/results.md.
    **params : any other :class:`nica.IVAE` hyperparameter (networks, objective,
        optimisation, ``n_restarts``, ``random_state``, ...) except ``prior``, which is
        ``"latent_causal"``.

    Attributes
    ----------
    As :class:`nica.IVAE`; :meth:`causal_weights` gives the learned lambda(u) and
    :meth:`transform_noise` the estimated exogenous noise.

    Examples
    --------
    >>> from nica import LatentCausalVAE, make_latent_scm
    >>> data = make_latent_scm(3, n_segments=8, n_per_segment=50, graph="dense", random_state=0)
    >>> model = LatentCausalVAE(3, max_steps=20, random_state=0).fit(data.x, data.u)
    >>> model.transform(data.x, data.u).shape
    (400, 3)
    >>> model.causal_weights([0, 1]).shape
    (2, 3, 3)
    """

    def __init__(
        self,
        n_components: int,
        *,
        prior_mean: bool = True,
        objective_weights: tuple[float, float, float, float] = LATENT_CAUSAL_WEIGHTS,
        weight_penalty: float = 0.0,
        **params: Any,
    ) -> None:
        fixed = sorted(set(params) & set(FIXED_PARAMS))
        if fixed:
            raise TypeError(f"LatentCausalVAE() got unexpected keyword argument(s) {fixed}: "
                            "its prior is the latent causal prior ('latent_causal')")
        super().__init__(n_components, prior="latent_causal", prior_mean=prior_mean,
                         objective_weights=objective_weights, **params)
        self.weight_penalty = weight_penalty

    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name in IVAE._param_names() if name not in FIXED_PARAMS] + ["weight_penalty"]

    def _model_config(self, x_dim: int, aux: AuxEncoder, n_models: int = 1) -> IVAEConfig:
        penalty = self.weight_penalty
        if not isinstance(penalty, (int, float, np.integer, np.floating)) or isinstance(penalty, bool) \
                or not np.isfinite(penalty) or penalty < 0:
            raise ValueError(f"weight_penalty must be a finite number >= 0, got {penalty!r}")
        return replace(super()._model_config(x_dim, aux, n_models), prior_penalty=float(penalty))

    def causal_weights(self, u: Any) -> np.ndarray:
        """The learned weights lambda(u): ``(n_rows, n_components, n_components)``.

        ``[k, i, j]`` is the weight of z_j in z_i for the k-th row of u (the same forms
        of u as in ``fit``); zero on and above the diagonal.
        """
        self._check_fitted()
        if not isinstance(self.module_.prior, LatentCausalPrior):  # pragma: no cover - format guard
            raise TypeError("the fitted module has no latent causal prior")
        u_t = self._aux_rows(u, len(np.asarray(u)) if u is not None else 0)
        return self._batched(lambda ub: self.module_.prior_params(ub).weights[0], u_t).numpy()

    @torch.no_grad()
    def transform_noise(self, X: Any, u: Any = None) -> np.ndarray:
        """The exogenous noise of the posterior means, n = (I - lambda(u)) E[z | x, u]:
        ``(n_samples, n_components)``."""
        z = torch.from_numpy(self.transform(X, u))
        weights = torch.from_numpy(self.causal_weights(u))
        return (z - torch.einsum("nij,nj->ni", weights, z)).numpy()


__all__ = ["FIXED_PARAMS", "LATENT_CAUSAL_WEIGHTS", "LatentCausalVAE"]
