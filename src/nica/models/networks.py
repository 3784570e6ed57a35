"""Building blocks shared by every network in nica: activations and the MLP."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class XTanh(nn.Module):
    """xtanh(x) = tanh(x) + slope * x, the authors' default hidden nonlinearity."""

    def __init__(self, slope: float = 0.1) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(torch.tanh(x), x, alpha=self.slope)


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "xtanh": lambda: XTanh(0.1),
    "lrelu": lambda: nn.LeakyReLU(0.2),
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module by its registry name (see ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


class MLP(nn.Module):
    """A fully connected network with ``n_layers`` linear maps and a linear output.

    Parameters
    ----------
    in_dim, out_dim : input and output widths.
    hidden_dim : width of every hidden layer.
    n_layers : number of linear maps (1 = a single linear map, no hidden layer).
    activation : registry name of the hidden nonlinearity.

    Shapes: ``(batch, in_dim) -> (batch, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        widths = [in_dim] + [hidden_dim] * (n_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(w_in, w_out))
            if i < n_layers - 1:
                layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


LOGVAR_MIN, LOGVAR_MAX = -12.0, 10.0


def bounded_logvar(raw: torch.Tensor) -> torch.Tensor:
    """Clamp a raw log-variance so that ``exp`` can neither overflow nor vanish."""
    return raw.clamp(LOGVAR_MIN, LOGVAR_MAX)


__all__ = ["MLP", "XTanh", "ACTIVATIONS", "make_activation", "bounded_logvar"]
