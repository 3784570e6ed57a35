"""Adam over one flat buffer, and the learning-rate schedules of the trainer.

Why not ``torch.optim.Adam``: constructing any ``torch.optim`` optimizer imports
``torch._dynamo`` (its methods are wrapped by ``torch._disable_dynamo``), which takes 2-3 s
on a 2-core machine: about 15% of a default fit, paid by every fresh process (the CLI, each
sweep or benchmark worker). The models here are small, so the step itself is cheap when
every parameter is a view into one contiguous buffer: the update is a handful of
operations whatever the number of parameter tensors.

The update is Adam as ``torch.optim.Adam`` computes it (Kingma & Ba 2015, bias-corrected,
``eps`` added to the corrected square root, no weight decay, no AMSGrad);
``tests/test_optim.py`` checks it against torch's implementation step for step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

#: ReduceLROnPlateau's default relative threshold (mode "min", threshold_mode "rel")
PLATEAU_THRESHOLD = 1e-4


class FlatAdam:
    """Adam whose parameters live in one flat buffer ``(n_params,)``.

    On construction every parameter's data becomes a view of that buffer (their values
    are unchanged); :meth:`release` gives each parameter its own storage again (the
    trainer calls it when training ends). Gradients are gathered with one ``cat``.

    Parameters
    ----------
    params : the parameters to optimise (all on one device, one floating dtype).
    lr : step size; :attr:`lr` may be changed between steps (schedules do).
    betas, eps : Adam's moment decay rates and denominator offset.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("FlatAdam got no parameters that require gradients")
        kinds = {(p.dtype, p.device) for p in self.params}
        if len(kinds) > 1:
            raise ValueError(f"FlatAdam needs every parameter on one device with one dtype, got {sorted(map(str, kinds))}")
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = self.flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def flat_grad(self) -> torch.Tensor:
        """Every parameter's gradient in buffer order ``(n_params,)``; zeros where none."""
        return torch.cat([
            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self.params
        ])

    def step(self) -> None:
        """One Adam update of every parameter from its current gradient."""
        if torch.is_grad_enabled():  # entering no_grad costs more than the update itself
            with torch.no_grad():
                return self._update()
        return self._update()

    def _update(self) -> None:
        grad = self.flat_grad()
        beta1, beta2 = self.betas
        self.step_count += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-self.lr / bias_correction1)

    def release(self) -> None:
        """Give every parameter its own contiguous storage (values unchanged)."""
        for p in self.params:
            p.data = p.data.clone()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "step": self.step_count,
                "exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])
        self.step_count = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


def cosine_factor(max_steps: int) -> Callable[[int], float]:
    """Cosine decay from 1 to 0.01 of the initial learning rate over ``max_steps``."""
    return lambda step: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, max_steps) / max_steps))


class LearningRateSchedule:
    """The step size over a fit: ``"constant"``, ``"cosine"`` (per step, to 1% over
    ``max_steps``) or ``"plateau"`` (x ``factor`` after more than ``patience`` epochs whose
    loss is not below the best so far by a relative 1e-4, as torch's ReduceLROnPlateau in
    its default mode, which the authors' runner used)."""

    def __init__(self, optimizer: FlatAdam, kind: str, max_steps: int,
                 factor: float = 0.1, patience: int = 0) -> None:
        self.optimizer = optimizer
        self.kind = kind
        self.base_lr = optimizer.lr
        self.factor_at = cosine_factor(max_steps)
        self.factor, self.patience = factor, patience
        self.steps = 0
        self.best = math.inf
        self.bad_epochs = 0

    def after_step(self) -> None:
        self.steps += 1
        if self.kind == "cosine":
            self.optimizer.lr = self.base_lr * self.factor_at(self.steps)

    def after_epoch(self, loss: float) -> None:
        if self.kind != "plateau":
            return
        if loss < self.best * (1 - PLATEAU_THRESHOLD):
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            lowered = self.optimizer.lr * self.factor
            if self.optimizer.lr - lowered > 1e-8:  # torch's eps: changes below it are ignored
                self.optimizer.lr = lowered
            self.bad_epochs = 0

    def scale(self, factor: float) -> float:
        """Multiply the current and every future step size; the new step size."""
        self.base_lr *= factor
        self.optimizer.lr *= factor
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "steps": self.steps, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.steps, self.best, self.bad_epochs = int(state["steps"]), float(state["best"]), int(state["bad_epochs"])
