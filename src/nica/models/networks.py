"""Building blocks shared by every network in nica: activations and the MLP."""

from __future__ import annotations

import math
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


class StackedLinear(nn.Module):
    """``n_models`` independent affine maps applied side by side with one batched matmul.

    Training K restarts as one model this way costs one kernel launch per layer instead
    of K, which is what makes restarts cheap on a CPU whose small-net steps are bound by
    per-operation overhead. Each model is initialised like ``torch.nn.Linear``.

    Parameters
    ----------
    in_dim, out_dim : input and output widths.
    n_models : number of stacked models K.
    bias : add a learned offset.

    Attributes
    ----------
    weight : ``(K, out_dim, in_dim)``; bias : ``(K, 1, out_dim)`` or None.

    Shapes: ``(batch, in_dim)`` (shared by all models) or ``(K, batch, in_dim)``
    -> ``(K, batch, out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int, n_models: int = 1, *, bias: bool = True) -> None:
        super().__init__()
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        self.in_features, self.out_features, self.n_models = in_dim, out_dim, n_models
        bound = 1.0 / math.sqrt(in_dim) if in_dim > 0 else 0.0
        # U(-1/sqrt(in), 1/sqrt(in)) for weight and bias: torch.nn.Linear's default
        self.weight = nn.Parameter(torch.empty(n_models, out_dim, in_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_models, 1, out_dim).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.n_models, *x.shape)
        weight_t = self.weight.transpose(-1, -2)
        if self.bias is None:
            return torch.bmm(x, weight_t)
        return torch.baddbmm(self.bias, x, weight_t)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_features}, out_dim={self.out_features}, n_models={self.n_models}"


class MLP(nn.Module):
    """A fully connected network with ``n_layers`` linear maps and a linear output.

    Parameters
    ----------
    in_dim, out_dim : input and output widths.
    hidden_dim : width of every hidden layer.
    n_layers : number of linear maps (1 = a single linear map, no hidden layer).
    activation : registry name of the hidden nonlinearity.
    n_models : number of independent copies K trained side by side (see ``StackedLinear``).

    Shapes: ``(batch, in_dim)`` or ``(K, batch, in_dim)`` -> ``(K, batch, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 50,
        n_layers: int = 3,
        activation: str = "xtanh",
        n_models: int = 1,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        widths = [in_dim] + [hidden_dim] * (n_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(StackedLinear(w_in, w_out, n_models))
            if i < n_layers - 1:
                layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


LOGVAR_MIN, LOGVAR_MAX = -12.0, 10.0


def bounded_logvar(raw: torch.Tensor) -> torch.Tensor:
    """Clamp a raw log-variance so that ``exp`` can neither overflow nor vanish."""
    return raw.clamp(LOGVAR_MIN, LOGVAR_MAX)


__all__ = ["MLP", "StackedLinear", "XTanh", "ACTIVATIONS", "make_activation", "bounded_logvar"]
