"""The inference network q(z | x, u) = N(g(x, u), diag exp(logvar(x, u)))."""

from __future__ import annotations

import torch
from torch import nn

from nica.models.networks import MLP, bounded_logvar


class GaussianEncoder(nn.Module):
    """Diagonal-Gaussian posterior from mean and log-variance networks.

    Parameters
    ----------
    x_dim, aux_dim, n_latent : input, auxiliary and latent widths.
    use_aux : feed u to the encoder beside x (iVAE); ``False`` gives q(z | x) (plain VAE).
    shared : one network with both heads as outputs (half the cost per step) instead of
        the authors' two separate networks.
    hidden_dim, n_layers, activation, n_models : see :class:`nica.models.networks.MLP`.
    """

    def __init__(
        self,
        x_dim: int,
        aux_dim: int,
        n_latent: int,
        *,
        use_aux: bool = True,
        shared: bool = False,
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
        n_models: int = 1,
    ) -> None:
        super().__init__()
        self.use_aux = use_aux
        in_dim = x_dim + (aux_dim if use_aux else 0)
        self.n_latent = n_latent
        if shared:
            self.net = MLP(in_dim, 2 * n_latent, hidden_dim, n_layers, activation, n_models)
        else:
            self.mean_net = MLP(in_dim, n_latent, hidden_dim, n_layers, activation, n_models)
            self.logvar_net = MLP(in_dim, n_latent, hidden_dim, n_layers, activation, n_models)
        self.shared = shared

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: ``(batch, x_dim)``, u: ``(batch, aux_dim)`` -> mean, logvar ``(K, batch, n_latent)``."""
        h = torch.cat([x, u], dim=-1) if self.use_aux else x
        if self.shared:
            mean, raw_logvar = self.net(h).split(self.n_latent, dim=-1)
        else:
            mean, raw_logvar = self.mean_net(h), self.logvar_net(h)
        return mean, bounded_logvar(raw_logvar)
