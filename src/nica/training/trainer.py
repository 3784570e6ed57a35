"""One trainer for every model: Adam, mini-batches, a learning-rate schedule, early stopping.

The data live on the training device as two tensors; each epoch draws one permutation
from an explicit ``torch.Generator`` and slices it, so there is no DataLoader overhead
and a run is bit-for-bit repeatable on CPU for a given seed.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from nica.models.ivae import IVAEModule
from nica.models.objectives import AUTHORS_WEIGHTS, OBJECTIVES, ObjectiveWeights, objective_weights

LR_SCHEDULES = ("constant", "cosine", "plateau")
#: ReduceLROnPlateau settings of the authors' runner (stepped once per epoch)
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.1, 0


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes
    ----------
    objective : ``"elbo"``, ``"reweighted"`` (the authors' weighted decomposition) or
        ``"annealed"`` (from ``weights`` to the ELBO over ``anneal_fraction`` of training).
    weights : term weights of the reweighted objective.
    batch_size, learning_rate, max_steps : mini-batch size, Adam step size, step budget.
    lr_schedule : ``"constant"``, ``"cosine"`` (decay to 1% over ``max_steps``) or
        ``"plateau"`` (x0.1 whenever the epoch loss fails to improve, as the authors).
    n_iter_no_change : early stopping: stop after this many epochs without the mean
        training ELBO improving by more than ``tol`` nats per sample; ``None`` disables it.
    """

    objective: str = "reweighted"
    weights: ObjectiveWeights = AUTHORS_WEIGHTS
    anneal_fraction: float = 0.625
    batch_size: int = 64
    learning_rate: float = 1e-2
    max_steps: int = 10_000
    lr_schedule: str = "cosine"
    n_iter_no_change: int | None = None
    tol: float = 1e-3

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("batch_size", "max_steps"):
            value = getattr(self, name)
            # numbers.Integral admits numpy integers (e.g. from a sweep over np.arange)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.n_iter_no_change is not None and self.n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change must be >= 1 or None, got {self.n_iter_no_change}")


@dataclass
class TrainHistory:
    """What happened during a fit; one entry per epoch in the lists.

    With K stacked models ``elbo`` and ``loss`` are averages over the models and
    ``model_elbo`` holds each model's mean training ELBO over the last epoch ``(K,)``.
    """

    elbo: list[float] = field(default_factory=list)
    model_elbo: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    n_steps: int = 0
    stopped_early: bool = False
    fit_time: float = 0.0


def _make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.max_steps, eta_min=0.01 * config.learning_rate
        )
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE
        )
    return None


def train(
    module: IVAEModule,
    x: torch.Tensor,
    u: torch.Tensor,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: Callable[[int, TrainHistory], None] | None = None,
) -> TrainHistory:
    """Fit ``module`` to ``x`` ``(N, x_dim)`` and ``u`` ``(N, aux_dim)`` in place.

    ``generator`` (on the data's device) drives batch order and reparameterisation noise.
    ``on_epoch(epoch, history)`` is called after every epoch (e.g. to log MCC).
    """
    config.validate()
    n_data = x.shape[0]
    batch_size = min(config.batch_size, n_data)
    steps_per_epoch = n_data // batch_size
    # the fused kernel does one pass over all parameters: per-step overhead dominates small nets
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate, fused=True)
    scheduler = _make_scheduler(optimizer, config)
    history = TrainHistory()
    best_elbo, epochs_without_gain = -math.inf, 0
    start = time.perf_counter()
    module.train()
    bar = tqdm(total=config.max_steps, disable=not progress, desc="fit", unit="step", leave=False)
    epoch = 0
    while history.n_steps < config.max_steps:
        order = torch.randperm(n_data, generator=generator, device=x.device)
        elbo_sum = torch.zeros(module.config.n_models, device=x.device)
        loss_sum = torch.zeros((), device=x.device)
        n_batches = min(steps_per_epoch, config.max_steps - history.n_steps)
        for b in range(n_batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            weights = objective_weights(
                config.objective,
                history.n_steps,
                config.max_steps,
                config.weights,
                config.anneal_fraction,
            )
            out = module.loss(x[idx], u[idx], n_data=n_data, weights=weights, generator=generator)
            optimizer.zero_grad(set_to_none=True)
            out.loss.sum().backward()
            optimizer.step()
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
                scheduler.step()
            history.n_steps += 1
            elbo_sum += out.elbo.mean(-1)
            loss_sum += out.loss.detach().mean()
        model_elbo = (elbo_sum / n_batches).tolist()
        epoch_elbo = sum(model_elbo) / len(model_elbo)
        epoch_loss = float(loss_sum) / n_batches
        history.model_elbo = model_elbo
        history.elbo.append(epoch_elbo)
        history.loss.append(epoch_loss)
        history.learning_rate.append(optimizer.param_groups[0]["lr"])
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(epoch_loss)
        bar.update(n_batches)
        bar.set_postfix(elbo=f"{epoch_elbo:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, history)
        epoch += 1
        if not math.isfinite(epoch_loss):
            raise FloatingPointError(
                f"the training loss became {epoch_loss} at step {history.n_steps}; "
                "lower learning_rate or check the data for extreme values"
            )
        if config.n_iter_no_change is not None:
            if epoch_elbo > best_elbo + config.tol:
                best_elbo, epochs_without_gain = epoch_elbo, 0
            else:
                epochs_without_gain += 1
                if epochs_without_gain >= config.n_iter_no_change:
                    history.stopped_early = True
                    break
    bar.close()
    module.eval()
    history.fit_time = time.perf_counter() - start
    return history
