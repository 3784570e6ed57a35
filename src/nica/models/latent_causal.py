"""The weight-variant latent causal prior (Liu et al. 2022): a linear-Gaussian SCM over the
latents whose weights and noise depend on u.

In a fixed causal order (parents have lower indices),

    z_i = sum_{j < i} lambda_ij(u) z_j + n_i,    n_i ~ N(beta_i1(u), beta_i2(u)),

so p(z | u) = N((I - L)^-1 beta_1, (I - L)^-1 diag(beta_2) (I - L)^-T) with L = lambda(u)
strictly lower triangular. Its density is the noise density at n = (I - L) z: the map
z -> n is triangular with a unit diagonal, so its log-Jacobian is 0 and

    log p(z | u) = sum_i log N(z_i - sum_j lambda_ij(u) z_j ; beta_i1(u), beta_i2(u)),

a sum over dimensions of per-dimension terms (which is what :meth:`log_prob` returns,
so the reweighted objective's log p(z | u) is exact). The KL from a diagonal Gaussian
posterior N(m, diag s^2) is analytic: under it the residual r_i = z_i - sum_j lambda_ij z_j
has mean m_i - sum_j lambda_ij m_j and variance s_i^2 + sum_j lambda_ij^2 s_j^2.

The aux net maps u to (beta_1, log beta_2, the n (n - 1) / 2 weights below the diagonal):
a table of one row per label (categorical u) or an MLP, like the factorised priors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nica.models.priors import (
    LOG_2PI,
    ConditionalPrior,
    PriorParams,
    make_aux_net,
    register_prior,
)
from nica.models.networks import bounded_logvar


@dataclass
class CausalPriorParams(PriorParams):
    """:class:`PriorParams` of the noise (``loc`` its mean beta_1, ``log_scale`` its
    log-variance log beta_2, both ``(K, batch, n)``) and the causal ``weights``
    ``(K, batch, n, n)``: ``weights[..., i, j]`` = lambda_ij(u), zero on and above the diagonal."""

    weights: torch.Tensor


def _apply(weights: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``weights @ z`` over the last dimension: ``(..., n, n), (..., n) -> (..., n)``."""
    return torch.einsum("...ij,...j->...i", weights, z)


@register_prior("latent_causal")
class LatentCausalPrior(ConditionalPrior):
    """p(z | u): a linear-Gaussian SCM with u-dependent weights and noise (see the module).

    Parameters
    ----------
    n_latent, aux_dim : latent dimension n and width of the encoded u.
    learn_mean, learn_scale : whether the noise mean / variance depend on u (fixed at
        0 / 1 otherwise).
    conditional : ``False`` gives the unconditional N(0, I) prior (no weights).
    aux_net, hidden_dim, n_layers, activation, n_models : the map u -> parameters, as
        for :class:`nica.models.priors.ConditionalPrior`.

    The weights always depend on u when ``conditional``: constant weights cannot be told
    apart from a linear map folded into the mixing (the latents would then be identified
    only up to that map, as the noise n is by a factorised prior).
    """

    def __init__(
        self,
        n_latent: int,
        aux_dim: int,
        *,
        learn_mean: bool = True,
        learn_scale: bool = True,
        conditional: bool = True,
        aux_net: str = "mlp",
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
        n_models: int = 1,
    ) -> None:
        # the base class builds no network for a prior without u-dependent parameters;
        # this one builds its own, with a head for the weights
        super().__init__(n_latent, aux_dim, learn_mean=False, learn_scale=False, conditional=False,
                         aux_net=aux_net, n_models=n_models)
        self.learn_mean = learn_mean and conditional
        self.learn_scale = learn_scale and conditional
        self.learn_weights = conditional and n_latent > 1
        self.n_weights = n_latent * (n_latent - 1) // 2 if self.learn_weights else 0
        width = (int(self.learn_mean) + int(self.learn_scale)) * n_latent + self.n_weights
        self.net = (
            make_aux_net(aux_dim, width, aux_net, hidden_dim, n_layers, activation, n_models)
            if width else None
        )

    def forward(self, u: torch.Tensor) -> CausalPriorParams:
        """u: ``(batch, aux_dim)`` -> noise parameters ``(K, batch, n)`` and weights ``(K, batch, n, n)``."""
        n = self.n_latent
        zeros = u.new_zeros(self.n_models, u.shape[-2], n)
        weights = u.new_zeros(self.n_models, u.shape[-2], n, n)
        if self.net is None:
            return CausalPriorParams(zeros, zeros, weights)
        out = self.net(u)
        loc, log_scale = zeros, zeros
        start = 0
        if self.learn_mean:
            loc, start = out[..., :n], n
        if self.learn_scale:
            log_scale, start = bounded_logvar(out[..., start:start + n]), start + n
        if self.learn_weights:
            rows, cols = torch.tril_indices(n, n, -1, device=u.device)
            weights[..., rows, cols] = out[..., start:]
        return CausalPriorParams(loc, log_scale, weights)

    @staticmethod
    def _check(p: PriorParams) -> CausalPriorParams:
        if not isinstance(p, CausalPriorParams):
            raise TypeError("the latent causal prior needs the CausalPriorParams of its own forward "
                            f"(with the causal weights), got {type(p).__name__}")
        return p

    def noise(self, z: torch.Tensor, p: PriorParams) -> torch.Tensor:
        """The exogenous noise n = (I - lambda(u)) z: ``(..., batch, n)``."""
        return z - _apply(self._check(p).weights, z)

    def log_prob(self, z: torch.Tensor, p: PriorParams) -> torch.Tensor:
        """Per-dimension terms of log p(z | u) ``(..., batch, n)``: log N(n_i; beta_i1, beta_i2)
        at n = (I - L) z; their sum is the joint log-density (the log-Jacobian is 0)."""
        r = self.noise(z, p)
        return -0.5 * (LOG_2PI + p.log_scale + (r - p.loc) ** 2 * torch.exp(-p.log_scale))

    def kl_from_gaussian(
        self, mean: torch.Tensor, logvar: torch.Tensor, p: PriorParams
    ) -> torch.Tensor:
        """KL(N(mean, diag exp(logvar)) || p(z | u)) ``(..., batch)``, in closed form."""
        weights = self._check(p).weights
        var = torch.exp(logvar)
        residual_mean = mean - _apply(weights, mean)
        residual_var = var + _apply(weights.square(), var)
        cross = ((residual_mean - p.loc) ** 2 + residual_var) * torch.exp(-p.log_scale)
        return 0.5 * (cross - 1.0 - logvar + p.log_scale).sum(-1)

    def penalty(self, p: PriorParams) -> torch.Tensor | None:
        """``penalty_strength`` times the L1 norm of the standardised weights
        lambda_ij(u) sd_j(u) / sd_i(u) (sd: the noise standard deviations) per sample
        ``(K, batch)``: a sparse graph, in units that a rescaling of the latents leaves as
        they are; None when the strength is 0."""
        if not self.penalty_strength or not self.learn_weights:
            return None
        sd = torch.exp(0.5 * p.log_scale)
        standardised = self._check(p).weights * sd.unsqueeze(-2) / sd.unsqueeze(-1)
        return self.penalty_strength * standardised.abs().sum((-1, -2))

    def n_statistics(self) -> int:
        """u-dependent sufficient statistics of each noise component (k in the theory)."""
        return int(self.learn_mean) + int(self.learn_scale)


__all__ = ["CausalPriorParams", "LatentCausalPrior"]
