"""Factorised exponential-family priors p(z | u) (paper eq. 7).

Each prior maps the auxiliary variable u to the natural parameters lambda(u) through
an "aux net" (a lookup table for one-hot labels or an MLP for continuous u) and offers
its per-dimension log-density and the analytic KL from a diagonal Gaussian posterior.

:data:`PRIORS` names them (``IVAE(prior=NAME)``); a new prior subclasses
:class:`ConditionalPrior` and registers with :func:`register_prior`
(docs/architecture.md has the recipe).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from nica.models.networks import MLP, StackedLinear, bounded_logvar

LOG_2PI = math.log(2 * math.pi)


@dataclass
class PriorParams:
    """Location and log-scale parameter of p(z | u); both ``(K, batch, n_latent)``.

    For the Gaussian prior ``log_scale`` is the log-variance; for the Laplace prior it
    is the log of the scale b.
    """

    loc: torch.Tensor
    log_scale: torch.Tensor


def make_aux_net(
    aux_dim: int,
    out_dim: int,
    kind: str,
    hidden_dim: int,
    n_layers: int,
    activation: str,
    n_models: int = 1,
) -> nn.Module:
    """The map u -> lambda(u): ``"table"`` (one weight row per label) or ``"mlp"``."""
    if kind == "table":
        return StackedLinear(aux_dim, out_dim, n_models, bias=False)
    if kind == "mlp":
        return MLP(aux_dim, out_dim, hidden_dim, n_layers, activation, n_models)
    raise ValueError(f"unknown prior network {kind!r}; choose 'table' or 'mlp'")


class ConditionalPrior(nn.Module):
    """Base of the factorised priors p(z | u): which parameters depend on u, and how u is
    mapped to them.

    A subclass implements ``log_prob(z, params)`` (per-dimension log-density
    ``(..., batch, n_latent)``) and ``kl_from_gaussian(mean, logvar, params)`` (the KL from
    a diagonal Gaussian posterior, summed over dimensions: ``(..., batch)``), where
    ``params`` is the :class:`PriorParams` that :meth:`forward` returns for u.
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
        super().__init__()
        self.n_latent = n_latent
        self.n_models = n_models
        self.learn_mean = learn_mean and conditional
        self.learn_scale = learn_scale and conditional
        n_heads = int(self.learn_mean) + int(self.learn_scale)
        self.net = (
            make_aux_net(
                aux_dim, n_heads * n_latent, aux_net, hidden_dim, n_layers, activation, n_models
            )
            if n_heads
            else None
        )

    def forward(self, u: torch.Tensor) -> PriorParams:
        """u: ``(batch, aux_dim)`` -> parameters ``(K, batch, n_latent)`` each."""
        zeros = u.new_zeros(self.n_models, u.shape[-2], self.n_latent)
        if self.net is None:
            return PriorParams(zeros, zeros)
        out = self.net(u)
        loc, log_scale = zeros, zeros
        if self.learn_mean and self.learn_scale:
            loc, log_scale = out.chunk(2, dim=-1)
        elif self.learn_mean:
            loc = out
        else:
            log_scale = out
        return PriorParams(loc, bounded_logvar(log_scale))

    def n_statistics(self) -> int:
        """How many sufficient statistics per dimension depend on u (k in the theory)."""
        return int(self.learn_mean) + int(self.learn_scale)

    #: strength of :meth:`penalty`, set by the module from its config (``prior_penalty``)
    penalty_strength: float = 0.0

    def penalty(self, p: PriorParams) -> torch.Tensor | None:
        """A regularisation term on the prior's parameters ``(K, batch)``, added to the loss
        (not to the ELBO), or None; the factorised priors have none."""
        return None


class GaussianPrior(ConditionalPrior):
    """p(z_i | u) = N(mu_i(u), exp(log_var_i(u))), sufficient statistics (z, z^2)."""

    def log_prob(self, z: torch.Tensor, p: PriorParams) -> torch.Tensor:
        """Per-dimension log-density ``(..., batch, n_latent)``."""
        return -0.5 * (LOG_2PI + p.log_scale + (z - p.loc) ** 2 * torch.exp(-p.log_scale))

    def kl_from_gaussian(
        self, mean: torch.Tensor, logvar: torch.Tensor, p: PriorParams
    ) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || p(z | u)), summed over dimensions: ``(..., batch)``."""
        ratio = torch.exp(logvar - p.log_scale)
        sq = (mean - p.loc) ** 2 * torch.exp(-p.log_scale)
        return 0.5 * (ratio + sq - 1.0 - logvar + p.log_scale).sum(-1)


class LaplacePrior(ConditionalPrior):
    """p(z_i | u) = Laplace(mu_i(u), b_i(u)), sufficient statistic |z - mu|."""

    def log_prob(self, z: torch.Tensor, p: PriorParams) -> torch.Tensor:
        """Per-dimension log-density ``(..., batch, n_latent)``."""
        return -math.log(2.0) - p.log_scale - (z - p.loc).abs() * torch.exp(-p.log_scale)

    def kl_from_gaussian(
        self, mean: torch.Tensor, logvar: torch.Tensor, p: PriorParams
    ) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || Laplace), summed over dimensions: ``(..., batch)``.

        Uses the folded-normal mean E|z - m| = s sqrt(2/pi) exp(-d^2 / 2s^2) + d (1 - 2 Phi(-d/s)).
        """
        std = torch.exp(0.5 * logvar)
        delta = mean - p.loc
        normal = torch.distributions.Normal(0.0, 1.0)
        abs_mean = std * math.sqrt(2 / math.pi) * torch.exp(-0.5 * (delta / std) ** 2) + delta * (
            1 - 2 * normal.cdf(-delta / std)
        )
        neg_entropy = -0.5 * (LOG_2PI + 1.0 + logvar)
        cross_entropy = math.log(2.0) + p.log_scale + abs_mean * torch.exp(-p.log_scale)
        return (neg_entropy + cross_entropy).sum(-1)


#: name -> prior class, for ``IVAE(prior=NAME)`` and :class:`nica.flows.IFlow`
PRIORS: dict[str, type[ConditionalPrior]] = {"gaussian": GaussianPrior, "laplace": LaplacePrior}

P = TypeVar("P", bound=type[ConditionalPrior])


def register_prior(name: str) -> Callable[[P], P]:
    """Class decorator: make a :class:`ConditionalPrior` subclass available as ``prior=name``."""

    def register(cls: P) -> P:
        if not (isinstance(cls, type) and issubclass(cls, ConditionalPrior)):
            raise TypeError(f"a prior must subclass nica.models.priors.ConditionalPrior, got {cls!r}")
        known = PRIORS.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"a prior named {name!r} is already registered ({known.__qualname__})")
        PRIORS[name] = cls
        return cls

    return register
