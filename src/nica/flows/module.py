"""The identifiable flow as a torch module: a bijection and the iVAE's conditional prior.

With zero noise and an invertible mixing, the iVAE's generative model becomes a
normalising flow x = f(z) whose base distribution is the factorised exponential-family
prior p(z | u) (the paper's special case; iFlow, Li et al. 2020). It is fitted by exact
maximum likelihood:

    log p(x | u) = log p(f^{-1}(x) | u) + log |det d f^{-1}(x) / dx|.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from nica.flows.transforms import make_flow_transform
from nica.models.ivae import LossOutput
from nica.models.objectives import ObjectiveWeights
from nica.models.priors import PRIORS, PriorParams


@dataclass
class IFlowConfig:
    """Architecture of an identifiable flow.

    Attributes
    ----------
    x_dim, aux_dim : observed (= latent) and auxiliary (one-hot or continuous) widths.
    prior : ``"gaussian"``, ``"laplace"`` or another registered prior (see :mod:`nica.models.priors`).
    prior_mean, prior_scale : whether the prior's location / scale depend on u (iFlow
        learns both natural parameters of a Gaussian).
    prior_net : ``"table"`` (one row per one-hot label) or ``"mlp"``.
    flow, n_flows, n_bins, tail_bound : the bijection (:func:`make_flow_transform`).
    hidden_dim, n_layers, activation : the conditioner MLPs of the flow and the prior MLP.
    """

    x_dim: int
    aux_dim: int
    prior: str = "gaussian"
    prior_mean: bool = True
    prior_scale: bool = True
    prior_net: str = "table"
    flow: str = "spline-autoregressive"
    n_flows: int = 5
    n_bins: int = 8
    tail_bound: float = 5.0
    hidden_dim: int = 64
    n_layers: int = 2
    activation: str = "relu"

    def to_dict(self) -> dict:
        return asdict(self)


class IFlowModule(nn.Module):
    """x = f(z), z ~ p(z | u) factorised; ``encode`` is f^{-1}, ``decode`` is f."""

    def __init__(self, config: IFlowConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        if c.prior not in PRIORS:
            raise ValueError(f"unknown prior {c.prior!r}; choose one of {sorted(PRIORS)}")
        self.transform = make_flow_transform(
            c.x_dim, flow=c.flow, n_flows=c.n_flows, n_bins=c.n_bins, tail_bound=c.tail_bound,
            hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation,
        )
        self.prior = PRIORS[c.prior](
            c.x_dim, c.aux_dim, learn_mean=c.prior_mean, learn_scale=c.prior_scale,
            conditional=True, aux_net=c.prior_net,
            hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation,
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f^{-1}(x) ``(batch, n)`` and log |det dz/dx| ``(batch,)``."""
        return self.transform().call_and_ladj(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = f(z): ``(batch, n) -> (batch, n)``."""
        return self.transform().inv(z)

    def prior_params(self, u: torch.Tensor) -> PriorParams:
        """Parameters of p(z | u) ``(batch, n)`` each, for a batch of auxiliary vectors."""
        params = self.prior(u)  # a single stacked model: (1, batch, n)
        return PriorParams(params.loc[0], params.log_scale[0])

    def log_prob(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Exact log p(x | u) per sample ``(batch,)``."""
        z, log_det = self.encode(x)
        return self.prior.log_prob(z, self.prior_params(u)).sum(-1) + log_det

    def loss(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_data: int,
        weights: ObjectiveWeights | None = None,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Negative mean log-likelihood, in the trainer's :class:`~nica.models.LossOutput`.

        ``elbo`` holds the exact log p(x | u) (the bound is tight), ``reconstruction`` the
        log-determinant and ``kl`` minus log p(z | u), so ``elbo = reconstruction - kl``.
        ``n_data``, ``weights`` and ``generator`` are unused: the objective is exact and
        deterministic.
        """
        z, log_det = self.encode(x)
        log_pz = self.prior.log_prob(z, self.prior_params(u)).sum(-1)
        log_px = log_pz + log_det
        return LossOutput(-log_px.mean(), log_px.detach(), log_det.detach(), -log_pz.detach())


__all__ = ["IFlowConfig", "IFlowModule"]
