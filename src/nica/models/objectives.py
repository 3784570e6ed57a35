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
from torch.autograd.function import once_differentiable


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


@dataclass(frozen=True)
class Objective:
    """What an iVAE module maximises during training, step by step: the named objective
    (:data:`OBJECTIVES`) with its weights and annealing; a training setting, not part of
    the module's saved architecture.

    Examples
    --------
    >>> Objective("annealed", AUTHORS_WEIGHTS, 0.5).weights_at(100, 200) == ELBO_WEIGHTS
    True
    """

    name: str = "elbo"
    weights: ObjectiveWeights = AUTHORS_WEIGHTS
    anneal_fraction: float = 0.625

    def validate(self) -> None:
        """Raise ``ValueError`` for an unknown objective."""
        if self.name not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.name!r}")

    def weights_at(self, step: int, total_steps: int) -> ObjectiveWeights:
        """The term weights in force at ``step`` of ``total_steps`` (:func:`objective_weights`)."""
        return objective_weights(self.name, step, total_steps, self.weights, self.anneal_fraction)


def _logsumexp_and_softmax(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``logsumexp`` over the last dimension and ``softmax`` over it, from one softmax kernel.

    The largest softmax entry is ``1 / sum_j exp(values_j - max)``, so the ``logsumexp`` is
    ``max - log(largest softmax entry)`` (never ``log 0``: that entry is at least 1/size).
    """
    weights = torch.softmax(values, -1)
    return values.amax(-1) - weights.amax(-1).log_(), weights


def mws_forward(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Values of :func:`mws_log_densities` and what :func:`mws_backward` needs.

    The pairwise tensor P = log N(z_ik | mean_jk, var_jk) (+ log(2 pi)/2) is built once and
    stored as ``(..., n, M, M)``, indexed [k, i, j], so that every reduction over the
    components j runs over the last, contiguous dimension; both softmaxes over j are kept.
    Returns ``log_joint (..., M)``, ``log_marginals (..., M, n)`` and the saved tensors.
    """
    # one copy to the (..., n, 1, M) layout for all three inputs
    z_t, mean_t, logvar_t = torch.stack((z.mT, mean.mT, logvar.mT)).unsqueeze(-2).unbind()
    diff = z_t.mT - mean_t  # (..., n, M, M): z_i - mean_j
    scaled = diff * torch.exp(-logvar_t)  # diff * w
    pairwise = torch.addcmul(-0.5 * logvar_t, diff, scaled, value=-0.5)
    log_joint, joint_softmax = _logsumexp_and_softmax(pairwise.sum(-3))  # (..., M)
    log_marginals, marginal_softmax = _logsumexp_and_softmax(pairwise)  # (..., n, M)
    return log_joint, log_marginals.mT, (diff, scaled, joint_softmax, marginal_softmax)


def mws_backward(
    saved: tuple[torch.Tensor, ...],
    grad_joint: torch.Tensor | float,
    grad_marginals: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients on z, mean, logvar ``(..., M, n)`` from those on :func:`mws_forward`'s outputs.

    With diff = z_i - mean_j and w = 1/var_j: dP/dz_i = -diff w, dP/dmean_j = diff w,
    dP/dlogvar_j = (diff^2 w - 1) / 2. ``grad_joint`` is ``(..., M)`` and ``grad_marginals``
    ``(..., M, n)``; both may instead be Python floats, the same gradient on every entry.
    """
    diff, scaled, joint_softmax, marginal_softmax = saved
    # upstream gradient on P[k, i, j]: g_joint[i] A[i, j] + g_marg[i, k] B[k, i, j]
    if isinstance(grad_joint, float) and isinstance(grad_marginals, float):
        grad_pairwise = torch.add(
            (joint_softmax * grad_joint).unsqueeze(-3), marginal_softmax, alpha=grad_marginals
        )
    else:
        grad_pairwise = torch.addcmul(
            (joint_softmax * grad_joint.unsqueeze(-1)).unsqueeze(-3),
            marginal_softmax,
            grad_marginals.mT.unsqueeze(-1),
        )
    grad_mean = grad_pairwise * scaled  # g diff w, before the sum over i
    # d/dlogvar_j = sum_i g (diff^2 w - 1) / 2 = -sum_i (g - g diff w diff) / 2, g in place
    grad_logvar = grad_pairwise.addcmul_(grad_mean, diff, value=-1).sum(-2).mul_(-0.5)
    return grad_mean.sum(-1).neg_().mT, grad_mean.sum(-2).mT, grad_logvar.mT


class _PairwiseLogDensities(torch.autograd.Function):
    """Both minibatch-weighted reductions of the pairwise log-density tensor, fused
    (:func:`mws_forward`), with the analytic backward of :func:`mws_backward`."""

    @staticmethod
    def forward(ctx, z, mean, logvar):  # type: ignore[override]
        log_joint, log_marginals, saved = mws_forward(z, mean, logvar)
        ctx.save_for_backward(*saved)
        return log_joint, log_marginals

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_joint, grad_marginals):  # type: ignore[override]
        return mws_backward(ctx.saved_tensors, grad_joint, grad_marginals)


def mws_log_densities(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised minibatch-weighted log q(z_i) and log q(z_ik), with analytic gradients.

    Shapes: z, mean, logvar ``(..., M, n)`` -> ``(..., M)`` and ``(..., M, n)``:

        joint[i]        = logsumexp_j sum_k P[i, j, k]
        marginals[i, k] = logsumexp_j P[i, j, k]

    with P = :func:`gaussian_log_density_matrix` (the log(2 pi)/2 constant and the
    log(M N) normalisation are left to the caller). Same values and gradients as
    ``torch.logsumexp`` on that explicit tensor, in about half the time. Leading
    dimensions (e.g. K stacked models) are independent.
    """
    return _PairwiseLogDensities.apply(z, mean, logvar)


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
    log_joint, log_marginals = mws_log_densities(z, mean, logvar)
    log_norm = math.log(m * n_data)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    log_qz = log_joint - (log_norm + n * half_log_2pi)
    log_qz_marginals = log_marginals.sum(-1) - n * (log_norm + half_log_2pi)
    return (
        weights.reconstruction * log_px
        - weights.mutual_info * (log_qz_x - log_qz)
        - weights.total_correlation * (log_qz - log_qz_marginals)
        - weights.dimension_kl * (log_qz_marginals - log_pz)
    )
