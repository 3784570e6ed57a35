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

Square weight matrices may instead take **orthogonalised momentum** steps (the update of
Jordan et al.'s Muon, 2024, with the exact polar factor in place of its Newton-Schulz
iteration): a heavy-ball momentum M of the matrix's gradient, and the step
W <- W - lr_W * U V^T for the SVD U S V^T of the Nesterov look-ahead G + beta M. Every
singular value of the step is lr_W whatever the gradient's scale or the matrix's size,
where Adam's per-entry steps of about lr add up to a perturbation whose operator norm grows
with the width (about 2 lr sqrt(d) for entries of random sign, up to lr d for a rank-one
gradient; docs/tuning.md, round s7).
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
    matrices : parameters among ``params`` of shape ``(..., d, d)`` (a batch of square
        matrices) that take orthogonalised momentum steps instead of Adam's (module
        docstring); they sit at the end of the flat buffer.
    matrix_lr_ratio : their step size over :attr:`lr` (so a schedule scales both).
    matrix_momentum : the momentum's decay rate beta.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, *,
                 matrices: Iterable[torch.nn.Parameter] = (), matrix_lr_ratio: float = 1.0,
                 matrix_momentum: float = 0.95) -> None:
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("FlatAdam got no parameters that require gradients")
        kinds = {(p.dtype, p.device) for p in params}
        if len(kinds) > 1:
            raise ValueError(f"FlatAdam needs every parameter on one device with one dtype, got {sorted(map(str, kinds))}")
        matrix_ids = {id(p) for p in matrices}
        self.matrices = [p for p in params if id(p) in matrix_ids]
        if len(self.matrices) != len(matrix_ids):
            raise ValueError("every entry of matrices must be one of params (and require gradients)")
        for p in self.matrices:
            if p.dim() < 2 or p.shape[-1] != p.shape[-2]:
                raise ValueError(f"matrices must be square in their last two dimensions, got shape {tuple(p.shape)}")
        self.params = [p for p in params if id(p) not in matrix_ids] + self.matrices
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        self.matrix_lr_ratio = float(matrix_lr_ratio)
        self.matrix_momentum = float(matrix_momentum)
        self.step_count = 0
        self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = self.flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.n_adam = len(self.flat) - sum(p.numel() for p in self.matrices)
        self.exp_avg = torch.zeros_like(self.flat[: self.n_adam])
        self.exp_avg_sq = torch.zeros_like(self.flat[: self.n_adam])
        self.momentum = torch.zeros_like(self.flat[self.n_adam :])

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
        self.step_count += 1
        if self.n_adam:
            self._adam_update(grad[: self.n_adam])
        if self.matrices:
            self._matrix_update(grad[self.n_adam :])

    def _adam_update(self, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.flat[: self.n_adam].addcdiv_(self.exp_avg, denom, value=-self.lr / bias_correction1)

    def _matrix_update(self, grad: torch.Tensor) -> None:
        self.momentum.mul_(self.matrix_momentum).add_(grad)
        look_ahead = grad.add(self.momentum, alpha=self.matrix_momentum)
        step = self.lr * self.matrix_lr_ratio
        offset = 0
        for p in self.matrices:
            direction = look_ahead[offset : offset + p.numel()].view_as(p)
            if bool(torch.isfinite(direction).all()):
                p.data.sub_(polar_factor(direction), alpha=step)
            else:  # no SVD of it: the matrix turns non-finite and the trainer rolls back
                p.data.sub_(direction, alpha=step)
            offset += p.numel()

    def release(self) -> None:
        """Give every parameter its own contiguous storage (values unchanged)."""
        for p in self.params:
            p.data = p.data.clone()

    def state_dict(self) -> dict[str, Any]:
        state = {"lr": self.lr, "step": self.step_count,
                 "exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}
        if self.matrices:
            state["momentum"] = self.momentum.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if ("momentum" in state) != bool(self.matrices) or len(state["exp_avg"]) != self.n_adam:
            raise ValueError("the optimiser state was saved with another split of Adam and matrix parameters")
        self.lr = float(state["lr"])
        self.step_count = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        if self.matrices:
            self.momentum.copy_(state["momentum"])


def polar_factor(m: torch.Tensor) -> torch.Tensor:
    """The orthogonal polar factor U V^T of each matrix of ``m`` ``(..., d, d)`` (U S V^T
    its SVD): the orthogonal matrix nearest to it, with every singular value 1."""
    u, _, vh = torch.linalg.svd(m)
    return u @ vh


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
