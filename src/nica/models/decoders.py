"""Observation models p(x | z): Gaussian (fixed or learned variance) and Bernoulli."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from nica.models.networks import MLP, bounded_logvar

LOG_2PI = math.log(2 * math.pi)


class GaussianDecoder(nn.Module):
    """x = f(z) + eps, eps ~ N(0, diag(var)).

    Parameters
    ----------
    variance : a fixed variance (the authors use 0.1 or 0.01) or ``"learned"`` for a
        learned per-dimension variance, initialised at ``init_variance``.
    """

    def __init__(
        self,
        n_latent: int,
        x_dim: int,
        *,
        variance: float | str = "learned",
        init_variance: float = 0.1,
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
        n_models: int = 1,
    ) -> None:
        super().__init__()
        self.net = MLP(n_latent, x_dim, hidden_dim, n_layers, activation, n_models)
        # one variance per model and feature: (K, 1, x_dim) broadcasts over the batch
        shape = (n_models, 1, x_dim)
        if variance == "learned":
            self.logvar = nn.Parameter(torch.full(shape, math.log(init_variance)))
        else:
            if not isinstance(variance, (int, float)) or variance <= 0:
                raise ValueError(f"decoder variance must be > 0 or 'learned', got {variance!r}")
            self.register_buffer("logvar", torch.full(shape, math.log(float(variance))))

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder mean f(z): ``([K,] batch, n_latent) -> (K, batch, x_dim)``."""
        return self.net(z)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over observed dimensions: x ``(batch, x_dim)``, z ``(K, batch, n)`` -> ``(K, batch)``."""
        logvar = bounded_logvar(self.logvar)
        return -0.5 * (LOG_2PI + logvar + (x - self.net(z)) ** 2 * torch.exp(-logvar)).sum(-1)


class BernoulliDecoder(nn.Module):
    """x ~ Bernoulli(sigmoid(f(z))) for binary observations."""

    def __init__(
        self,
        n_latent: int,
        x_dim: int,
        *,
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
        n_models: int = 1,
    ) -> None:
        super().__init__()
        self.net = MLP(n_latent, x_dim, hidden_dim, n_layers, activation, n_models)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Success probabilities sigmoid(f(z)): ``([K,] batch, x_dim) -> (K, batch, x_dim)``."""
        return torch.sigmoid(self.net(z))

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over observed dimensions: x ``(batch, x_dim)``, z ``(K, batch, n)`` -> ``(K, batch)``."""
        logits = self.net(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


DECODERS = {"gaussian": GaussianDecoder, "bernoulli": BernoulliDecoder}
