"""What every torch module nica trains provides: the module protocol and its loss's outputs.

A module (the iVAE's :class:`~nica.models.IVAEModule`, the flow's, the temporal model's,
TCL's network) owns its loss; the trainer (:func:`nica.training.train`) owns the
optimisation and knows nothing else of it. The protocol, as scvi-tools splits a model
from its training loop:

- ``loss(x, u, *, n_data, generator, **objective)`` -> :class:`LossOutput`, differentiable:
  what the trainer minimises (and what DDP wraps as ``forward``);
- ``training_loss_kwargs(step, max_steps)``: the loss's objective settings at a step (the
  iVAE's reweighting and its annealing schedule live here, not in the trainer's loop);
- ``fused_loss()``: optionally, a callable with ``loss``'s signature that returns the same
  outputs and writes every parameter's gradient itself, with no autograd graph (the
  iVAE's hand-derived backward); the trainer uses it when it trains in one process
  without ``torch.compile`` and then skips ``backward``;
- ``latents(x, u)``: the latents of every stacked model ``(K, batch, n)``, the input of the
  restarts' agreement and of ``transform``;
- ``select(k)``: stacked model ``k`` as a module of its own; ``n_models``: K.

Shapes: K stacked models (restarts), ``batch`` rows; a module that does not stack may
return per-sample tensors without the leading K.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class LossOutput:
    """Named outputs of a module's ``loss``.

    ``loss`` is ``(K,)`` (or a scalar), one value to minimise per stacked model (their sum
    is what the trainer differentiates: the models share no parameters); the per-sample
    tensors are ``(K, batch)`` (or ``(batch,)``). ``score`` is the training score per
    sample: the ELBO of an iVAE, the exact log-likelihood of a flow (the bound is tight),
    the label log-likelihood of TCL; ``score = reconstruction - kl`` for the modules with
    a latent prior. ``elbo`` is its former name, kept as an alias.
    """

    loss: torch.Tensor
    score: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """Alias of :attr:`score` (its name before every module reported one)."""
        return self.score


class LatentModule(nn.Module):
    """Base of the modules the trainer fits (module docstring): defaults for the optional
    parts of the protocol, and ``forward`` as the loss (what DDP wraps)."""

    @property
    def n_models(self) -> int:
        """K, the models stacked in this module (restarts trained side by side)."""
        return int(getattr(getattr(self, "config", None), "n_models", 1))

    def loss(self, x: torch.Tensor, u: torch.Tensor, *, n_data: int, generator: torch.Generator | None = None,
             **objective: Any) -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def training_loss_kwargs(self, step: int, max_steps: int) -> dict[str, Any]:
        """Keyword arguments of ``loss`` at training step ``step`` of ``max_steps`` (none)."""
        return {}

    def fused_loss(self) -> Callable[..., LossOutput] | None:
        """A loss that also writes the gradients (module docstring), or None (autograd)."""
        return None

    def latents(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, k: int) -> LatentModule:
        """Stacked model ``k`` as a module of its own; a module of one model is itself."""
        if k != 0 or self.n_models != 1:
            raise IndexError(f"model index {k} out of range for {self.n_models} models")
        return self

    def forward(self, x: torch.Tensor, u: torch.Tensor, **kwargs: Any) -> LossOutput:
        """:meth:`loss`: the forward pass of training (what DDP wraps)."""
        return self.loss(x, u, **kwargs)


class RestartStack(LatentModule):
    """K independent copies of a module that does not stack its own parameters, trained
    side by side as one module (the trainer sums their losses; they share nothing, so each
    gets its own gradients), with the stacked module's protocol.

    ``modules`` are built from one seed in turn, so the first equals a single fit's module.
    """

    def __init__(self, modules: list[LatentModule]) -> None:
        super().__init__()
        self.restarts = nn.ModuleList(modules)
        self.config = modules[0].config

    @property
    def n_models(self) -> int:
        return len(self.restarts)

    def loss(self, x: torch.Tensor, u: torch.Tensor, *, n_data: int, generator: torch.Generator | None = None,
             **objective: Any) -> LossOutput:
        """Every restart's loss on the same batch: ``loss`` ``(K,)``, the others ``(K, batch)``."""
        outs = [m.loss(x, u, n_data=n_data, generator=generator, **objective) for m in self.restarts]

        def stacked(name: str) -> torch.Tensor:
            return torch.cat([getattr(o, name).reshape(-1, *getattr(o, name).shape[-1:]) for o in outs])

        return LossOutput(torch.cat([o.loss.reshape(-1) for o in outs]), stacked("score"),
                          stacked("reconstruction"), stacked("kl"))

    def training_loss_kwargs(self, step: int, max_steps: int) -> dict[str, Any]:
        return self.restarts[0].training_loss_kwargs(step, max_steps)

    def latents(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``(K, batch, n)``: every restart's latents."""
        out = [m.latents(x, u) for m in self.restarts]
        return torch.cat([z.reshape(-1, *z.shape[-2:]) for z in out])

    def select(self, k: int) -> LatentModule:
        """Restart ``k`` (its own module, shared with this stack)."""
        if not 0 <= k < len(self.restarts):
            raise IndexError(f"model index {k} out of range for {len(self.restarts)} models")
        return self.restarts[k]


__all__ = ["LatentModule", "LossOutput", "RestartStack"]
