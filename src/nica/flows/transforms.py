"""The bijection of the identifiable flow, built from zuko transforms.

Direction: every lazy transform here maps observations to latents, z = f^{-1}(x) (zuko's
convention for density estimation), so a training step is one forward pass; the
generative direction x = f(z) is ``transform().inv``. Each flow step is

    random permutation -> LU linear map -> element-wise transform conditioned on the
    other features (rational-quadratic spline or affine; autoregressive or coupling),

as in iFlow (Li et al. 2020: permutation + LU + autoregressive RQ spline), with a final
LU map. Every piece returns its log |det Jacobian| per sample.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.distributions import Transform
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.flows.coupling import GeneralCouplingTransform
from zuko.lazy import LazyComposedTransform, LazyTransform, UnconditionalTransform
from zuko.transforms import LULinearTransform, MonotonicRQSTransform, PermutationTransform

from nica.models.networks import ACTIVATIONS

#: the conditioned element-wise transform of one flow step
FLOW_STEPS = ("spline-autoregressive", "spline-coupling", "affine-coupling")


class LULinear(LazyTransform):
    """A learned invertible linear map W = L U with a positive diagonal (exp of a parameter).

    L is lower triangular with diagonal exp(log_diag), U is unit upper triangular; starts
    at the identity. Keeping the diagonal positive keeps W invertible throughout training.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(dim, dim))
        self.upper = nn.Parameter(torch.zeros(dim, dim))
        self.log_diag = nn.Parameter(torch.zeros(dim))

    def forward(self, c: Tensor | None = None) -> Transform:
        lu = torch.tril(self.lower, -1) + torch.diag(self.log_diag.exp()) + torch.triu(self.upper, 1)
        return LULinearTransform(lu)


def _permutation(dim: int) -> LazyTransform:
    # drawn from the global torch RNG, which the estimator seeds while building the module
    return UnconditionalTransform(PermutationTransform, torch.randperm(dim), buffer=True)


def _step(kind: str, dim: int, index: int, n_bins: int, tail_bound: float, hidden: list[int],
          activation: str) -> LazyTransform:
    net = dict(hidden_features=hidden, activation=ACTIVATIONS[activation])
    spline = dict(univariate=partial(MonotonicRQSTransform, bound=tail_bound),
                  shapes=[(n_bins,), (n_bins,), (n_bins - 1,)])
    if kind == "spline-autoregressive":
        return MaskedAutoregressiveTransform(dim, **spline, **net)
    mask = torch.arange(dim) % 2 == index % 2  # alternate which half conditions the other
    if kind == "spline-coupling":
        return GeneralCouplingTransform(dim, mask=mask, **spline, **net)
    if kind == "affine-coupling":
        return GeneralCouplingTransform(dim, mask=mask, **net)
    raise ValueError(f"unknown flow step {kind!r}; choose one of {FLOW_STEPS}")


def make_flow_transform(
    dim: int,
    *,
    flow: str = "spline-autoregressive",
    n_flows: int = 5,
    n_bins: int = 8,
    tail_bound: float = 5.0,
    hidden_dim: int = 64,
    n_layers: int = 2,
    activation: str = "relu",
) -> LazyComposedTransform:
    """The lazy bijection x -> z of ``n_flows`` steps (see the module docstring).

    Parameters
    ----------
    dim : number of features (= latents).
    flow : element-wise transform of each step, one of :data:`FLOW_STEPS`.
    n_flows : number of steps.
    n_bins, tail_bound : spline knots and the half-width of the interval [-B, B] on which
        splines act (identity outside).
    hidden_dim, n_layers, activation : the conditioner MLPs (``n_layers`` hidden layers of
        ``hidden_dim`` units; an :data:`nica.models.networks.ACTIVATIONS` name).

    Returns
    -------
    A :class:`zuko.lazy.LazyComposedTransform`; ``t()`` is the transform, whose
    ``call_and_ladj(x)`` gives z ``(batch, dim)`` and log |det dz/dx| ``(batch,)``.
    """
    if flow not in FLOW_STEPS:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOW_STEPS}")
    if dim < 2 and flow != "spline-autoregressive":
        raise ValueError(f"flow={flow!r} couples halves of the features and needs at least 2 of them")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    if not tail_bound > 0:
        raise ValueError(f"tail_bound must be > 0, got {tail_bound}")
    hidden = [hidden_dim] * n_layers
    steps: list[LazyTransform] = []
    for i in range(n_flows):
        steps += [_permutation(dim), LULinear(dim), _step(flow, dim, i, n_bins, tail_bound, hidden, activation)]
    steps.append(LULinear(dim))
    return LazyComposedTransform(*steps)


__all__ = ["FLOW_STEPS", "LULinear", "make_flow_transform"]
