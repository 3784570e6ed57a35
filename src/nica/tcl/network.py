"""TCL's network: an MLP feature extractor h(x) with a last absolute-value (or square)
layer, and a linear classifier of the segment label (Hyvärinen & Morioka 2016)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from nica.models.base import LatentModule, LossOutput
from nica.models.networks import ACTIVATIONS, MLP

#: nonlinearity of the feature layer: the TCL paper's absolute value, or the square
FEATURE_NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "abs": torch.abs,
    "square": torch.square,
}
#: pieces per maxout unit (the authors' ``maxout_k``)
MAXOUT_PIECES = 2


class Maxout(nn.Module):
    """A linear map to ``out_dim * pieces`` units and the max over each group of ``pieces``."""

    def __init__(self, in_dim: int, out_dim: int, pieces: int = MAXOUT_PIECES) -> None:
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_dim, out_dim * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, in_dim) -> (batch, out_dim)``."""
        h = self.linear(x)
        return h.unflatten(-1, (-1, self.pieces)).amax(-1)


class _FirstModel(nn.Module):
    """``(1, batch, d) -> (batch, d)``: the output of a single stacked model."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h[0]


@dataclass
class TCLConfig:
    """Architecture of a :class:`TCLNetwork` (the arguments it was built with); saved as JSON."""

    x_dim: int
    n_components: int
    n_classes: int
    hidden_dim: int
    n_layers: int
    activation: str = "maxout"
    feature_nonlinearity: str = "abs"

    def to_dict(self) -> dict:
        return asdict(self)


class TCLNetwork(LatentModule):
    """Feature extractor h(x) ``(batch, n)`` and a linear classifier of the segment label.

    Parameters
    ----------
    x_dim, n_components, n_classes : input width, number of features, number of segments.
    hidden_dim, n_layers : ``n_layers`` linear maps; the ``n_layers - 1`` hidden ones have
        ``hidden_dim`` units.
    activation : ``"maxout"`` or an :data:`nica.models.networks.ACTIVATIONS` name.
    feature_nonlinearity : ``"abs"`` or ``"square"``, applied to the last layer.
    """

    def __init__(
        self,
        x_dim: int,
        n_components: int,
        n_classes: int,
        *,
        hidden_dim: int,
        n_layers: int,
        activation: str = "maxout",
        feature_nonlinearity: str = "abs",
    ) -> None:
        super().__init__()
        self.config = TCLConfig(x_dim, n_components, n_classes, hidden_dim, n_layers, activation,
                                feature_nonlinearity)
        if feature_nonlinearity not in FEATURE_NONLINEARITIES:
            raise ValueError(f"unknown feature_nonlinearity {feature_nonlinearity!r}; "
                             f"choose one of {sorted(FEATURE_NONLINEARITIES)}")
        if activation == "maxout":
            widths = [x_dim] + [hidden_dim] * (n_layers - 1)
            hidden = [Maxout(a, b) for a, b in zip(widths[:-1], widths[1:])]
            self.extractor: nn.Module = nn.Sequential(*hidden, nn.Linear(widths[-1], n_components))
        elif activation in ACTIVATIONS:
            # a single stacked model: drop its leading model dimension
            self.extractor = nn.Sequential(MLP(x_dim, n_components, hidden_dim, n_layers, activation),
                                           _FirstModel())
        else:
            raise ValueError(f"unknown activation {activation!r}; choose 'maxout' or one of {sorted(ACTIVATIONS)}")
        self.nonlinearity = FEATURE_NONLINEARITIES[feature_nonlinearity]
        self.classifier = nn.Linear(n_components, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """h(x) after the feature nonlinearity: ``(batch, x_dim) -> (batch, n_components)``."""
        return self.nonlinearity(self.extractor(x))

    @classmethod
    def from_config(cls, config: TCLConfig) -> TCLNetwork:
        """The network a :class:`TCLConfig` describes."""
        c = config
        return cls(c.x_dim, c.n_components, c.n_classes, hidden_dim=c.hidden_dim, n_layers=c.n_layers,
                   activation=c.activation, feature_nonlinearity=c.feature_nonlinearity)

    def latents(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """The features h(x) as the latents of one model ``(1, batch, n_components)``."""
        return self.features(x)[None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment logits ``(batch, n_classes)`` (not the loss, as other modules' forward:
        TCL trains in one process, never wrapped by DDP)."""
        return self.classifier(self.features(x))

    def loss(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_data: int,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Mean cross-entropy of the one-hot labels ``u`` ``(batch, n_classes)``.

        Returned in the trainer's :class:`~nica.models.LossOutput`: ``score`` and
        ``reconstruction`` hold the per-sample log-likelihood of the label, ``kl`` zeros.
        ``n_data`` and ``generator`` are unused.
        """
        log_lik = -F.cross_entropy(self(x), u.argmax(-1), reduction="none")
        detached = log_lik.detach()
        return LossOutput(-log_lik.mean(), detached, detached, torch.zeros_like(detached))


__all__ = ["FEATURE_NONLINEARITIES", "MAXOUT_PIECES", "Maxout", "TCLConfig", "TCLNetwork"]
