"""Training objectives: the plain ELBO and the authors' reweighted decomposition.

The reweighted objective splits the ELBO as in beta-TCVAE (Chen et al. 2018):

    E[log p(x|z)] - I(x;z) - TC(z) - sum_i KL(q(z_i) || p(z_i|u))

and weights the four terms by ``ObjectiveWeights``.  With all weights 1 it is an
estimate of the ELBO itself.  q(z) and q(z_i) are estimated on the mini-batch by
minibatch-weighted sampling with the data-set size N, as in the authors' code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weights of (reconstruction, index-code MI, total correlation, dimension-wise KL)."""

    reconstruction: float = 1.0
    mutual_info: float = 1.0
    total_correlation: float = 1.0
    dimension_kl: float = 1.0

    def interpolate(self, other: ObjectiveWeights, t: float) -> ObjectiveWeights:
        """Linear interpolation ``(1 - t) * self + t * other`` with ``t`` clipped to [0, 1]."""
        t = min(max(t, 0.0), 1.0)
        a, b = asdict(self), asdict(other)
        return ObjectiveWeights(**{k: (1 - t) * a[k] + t * b[k] for k in a})


#: all four terms weighted equally: the plain ELBO
ELBO_WEIGHTS = ObjectiveWeights()
#: the authors' current configuration: reconstruction 100, MI 1, TC 0, dimension-wise KL 10
AUTHORS_WEIGHTS = ObjectiveWeights(100.0, 1.0, 0.0, 10.0)

OBJECTIVES = ("elbo", "reweighted", "annealed")


def beta_vae_weights(beta: float) -> ObjectiveWeights:
    """beta-VAE (Higgins et al. 2017): E[log p(x|z)] - beta KL(q(z|x) || p(z)).

    MI + TC + dimension-wise KL add up to the KL term sample by sample, so weighting all
    three by ``beta`` is exactly the beta-VAE objective (a one-sample KL estimate).
    """
    return ObjectiveWeights(1.0, float(beta), float(beta), float(beta))


def beta_tcvae_weights(beta: float) -> ObjectiveWeights:
    """beta-TCVAE (Chen et al. 2018): only the total-correlation term is weighted by ``beta``."""
    return ObjectiveWeights(1.0, 1.0, float(beta), 1.0)


def objective_weights(
    objective: str, step: int, total_steps: int, weights: ObjectiveWeights, anneal_fraction: float
) -> ObjectiveWeights:
    """The weights in force at ``step`` for the named objective.

    ``"elbo"`` always returns ``ELBO_WEIGHTS``; ``"reweighted"`` returns ``weights``;
    ``"annealed"`` moves linearly from ``weights`` to ``ELBO_WEIGHTS`` over the first
    ``anneal_fraction`` of training and stays at the ELBO afterwards.
    """
    if objective == "elbo":
        return ELBO_WEIGHTS
    if objective == "reweighted":
        return weights
    if objective == "annealed":
        horizon = max(1.0, anneal_fraction * total_steps)
        return weights.interpolate(ELBO_WEIGHTS, step / horizon)
    raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")


class _LogSumExp(torch.autograd.Function):
    """``logsumexp`` that keeps its softmax for the backward pass.

    torch's own recomputes ``exp`` in backward; on the (K, M, M, n) pairwise tensor of
    the objective that exp is the single most expensive operation of a training step.
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, dim: int) -> torch.Tensor:  # type: ignore[override]
        peak = values.detach().amax(dim, keepdim=True)
        peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
        weights = (values - peak).exp_()
        total = weights.sum(dim, keepdim=True)
        ctx.save_for_backward(weights.div_(total))
        ctx.dim = dim
        return (total.log_() + peak).squeeze(dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (weights,) = ctx.saved_tensors
        return weights * grad.unsqueeze(ctx.dim), None


def logsumexp(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.logsumexp(values, dim)`` with a cheaper backward (same values and gradients)."""
    return _LogSumExp.apply(values, dim)


def gaussian_log_density_matrix(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(z_i | mean_j, exp(logvar_j)) + log(2 pi) / 2 for every pair.

    Shapes: z ``(..., M, n)``, mean and logvar ``(..., M', n)`` -> ``(..., M, M', n)``.
    The constant is left out (callers add it once to the reduced result), and the
    expression is fused with ``addcmul`` to keep the number of (M, M', n) temporaries low.
    """
    diff = z.unsqueeze(-2) - mean.unsqueeze(-3)
    return torch.addcmul(
        -0.5 * logvar.unsqueeze(-3), diff.square(), torch.exp(-logvar).unsqueeze(-3), value=-0.5
    )


def decomposed_objective(
    log_px: torch.Tensor,
    log_qz_x: torch.Tensor,
    log_pz: torch.Tensor,
    z: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    n_data: int,
    weights: ObjectiveWeights,
) -> torch.Tensor:
    """Per-sample weighted decomposition ``(..., M)``; larger is better.

    log_px: log p(x|z) ``(..., M)``; log_qz_x: log q(z|x,u) ``(..., M)``; log_pz: log p(z|u)
    ``(..., M)``; z, mean, logvar: ``(..., M, n)``; n_data: size of the data set. Leading
    dimensions (e.g. K stacked restarts) are independent.
    """
    m, n = z.shape[-2:]
    pairwise = gaussian_log_density_matrix(z, mean, logvar)  # (..., M, M, n), without -log(2 pi)/2
    log_norm = math.log(m * n_data)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    log_qz = logsumexp(pairwise.sum(-1), dim=-1) - log_norm - n * half_log_2pi
    log_qz_marginals = (logsumexp(pairwise, dim=-2) - log_norm - half_log_2pi).sum(-1)
    return (
        weights.reconstruction * log_px
        - weights.mutual_info * (log_qz_x - log_qz)
        - weights.total_correlation * (log_qz - log_qz_marginals)
        - weights.dimension_kl * (log_qz_marginals - log_pz)
    )
