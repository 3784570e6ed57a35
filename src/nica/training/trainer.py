"""One trainer for every model: Adam, mini-batches, a learning-rate schedule, early
stopping, recovery from non-finite losses, and checkpoints to resume from.

The data live on the training device as two tensors; each epoch draws one permutation
from an explicit ``torch.Generator`` and slices it, so there is no DataLoader overhead
and a run is bit-for-bit repeatable on CPU for a given seed (and thread count), also
across an interruption and ``resume``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from nica.training.checkpoint import Checkpointing
from nica.training.optim import FlatAdam, LearningRateSchedule
from nica.training.progress import FitProgress
from nica.training.distributed import all_true, mean_over_processes, rank_and_size

logger = logging.getLogger("nica.training")

LR_SCHEDULES = ("constant", "cosine", "plateau")
#: ReduceLROnPlateau settings of the authors' runner (stepped once per epoch)
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.1, 0
#: steps between in-memory copies of the last good state (what a non-finite step rolls back to)
SNAPSHOT_EVERY = 50


@dataclass
class TrainConfig:
    """Optimisation settings (what the loss is, and its objective's weights, is the
    module's: :mod:`nica.models.base`).

    Attributes
    ----------
    batch_size, learning_rate, max_steps : mini-batch size, Adam step size, step budget.
    lr_schedule : ``"constant"``, ``"cosine"`` (decay to 1% over ``max_steps``) or
        ``"plateau"`` (x0.1 whenever the epoch loss fails to improve, as the authors).
    n_iter_no_change : early stopping: stop after this many epochs without the mean
        training score (ELBO or log-likelihood) improving by more than ``tol`` nats per
        sample; ``None`` disables it.
    compile : run the training loss through ``torch.compile`` (optional; it pays only for
        long fits: docs/performance.md).
    max_nan_retries : a non-finite loss skips the step (rolling the model back to its last
        good state when the parameters themselves went bad) and multiplies the learning
        rate by ``nan_lr_factor``; after this many in a row the fit stops.
    matrix_learning_rate : step size of the orthogonalised momentum steps taken by the
        module's square weight matrices (its ``square_matrices()``, where it has them;
        :class:`nica.training.optim.FlatAdam`), scaled by the schedule as ``learning_rate``
        is; ``None``: those matrices take Adam's steps like every other parameter.
    """

    batch_size: int = 64
    learning_rate: float = 1e-2
    max_steps: int = 10_000
    lr_schedule: str = "cosine"
    n_iter_no_change: int | None = None
    tol: float = 1e-3
    compile: bool = False
    max_nan_retries: int = 5
    nan_lr_factor: float = 0.5
    matrix_learning_rate: float | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("batch_size", "max_steps"):
            value = getattr(self, name)
            # numbers.Integral admits numpy integers (e.g. from a sweep over np.arange)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 < self.nan_lr_factor <= 1:
            raise ValueError(f"nan_lr_factor must be in (0, 1], got {self.nan_lr_factor!r}")
        if not isinstance(self.max_nan_retries, numbers.Integral) or self.max_nan_retries < 0:
            raise ValueError(f"max_nan_retries must be a non-negative integer, got {self.max_nan_retries!r}")
        if self.matrix_learning_rate is not None and not self.matrix_learning_rate > 0:
            raise ValueError(f"matrix_learning_rate must be > 0 or None, got {self.matrix_learning_rate!r}")
        if self.n_iter_no_change is not None and self.n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change must be >= 1 or None, got {self.n_iter_no_change}")


@dataclass
class TrainHistory:
    """What happened during a fit; one entry per epoch in the lists.

    ``score`` is the module's training score per sample (``LossOutput.score``: the ELBO
    of an iVAE, the exact log-likelihood of a flow), the epoch's mean over mini-batches.
    With K stacked models ``score`` and ``loss`` are averages over the models and
    ``model_score`` holds each model's mean training score over the last epoch ``(K,)``.
    ``events`` records each non-finite step (step, action, new learning rate) and each
    resume from a checkpoint. ``validation`` holds the held-out score at each evaluation of
    a :class:`Validation` (every ``Validation.every`` steps). ``elbo`` and ``model_elbo``
    are the former names of ``score`` and ``model_score``, kept as aliases (and as the keys
    of saved models).
    """

    score: list[float] = field(default_factory=list)
    model_score: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    n_steps: int = 0
    stopped_early: bool = False
    fit_time: float = 0.0
    events: list[dict] = field(default_factory=list)

    @property
    def elbo(self) -> list[float]:
        """Alias of :attr:`score`."""
        return self.score

    @property
    def model_elbo(self) -> list[float]:
        """Alias of :attr:`model_score`."""
        return self.model_score

    def to_dict(self) -> dict[str, Any]:
        """The record as saved (model format 3 and checkpoints): the scores under their
        saved names ``elbo`` and ``model_elbo``."""
        record = asdict(self)
        record["elbo"], record["model_elbo"] = record.pop("score"), record.pop("model_score")
        return {key: record[key] for key in SAVED_HISTORY_KEYS}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TrainHistory:
        """A history from :meth:`to_dict`'s record (the saved names, or these fields')."""
        record = dict(record)
        for saved, name in (("elbo", "score"), ("model_elbo", "model_score")):
            if saved in record:
                record[name] = record.pop(saved)
        return cls(**record)


#: the keys of a saved history, in their saved order
SAVED_HISTORY_KEYS = ("elbo", "model_elbo", "validation", "loss", "learning_rate", "n_steps", "stopped_early",
                      "fit_time", "events")


@dataclass
class Validation:
    """Early stopping on a held-out score: ``score()`` (higher is better, e.g. the held-out
    log-likelihood) is evaluated every ``every`` steps, and training stops once the last
    ``patience`` evaluations have not beaten the best one before them by more than ``tol``.
    The decision reads only ``TrainHistory.validation``, so a resumed fit takes it alike."""

    score: Callable[[], float]
    every: int = 500
    patience: int = 10
    tol: float = 1e-3

    def should_stop(self, scores: list[float]) -> bool:
        if len(scores) <= self.patience:
            return False
        return max(scores[-self.patience:]) <= max(scores[:-self.patience]) + self.tol


class TrainingDivergedError(FloatingPointError):
    """The loss stayed non-finite after repeated retries.

    The module holds its last good state; ``history`` is the history up to the failure.
    """

    def __init__(self, message: str, history: TrainHistory) -> None:
        super().__init__(message)
        self.history = history


def gather_rows(x: Any, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of an in-memory tensor, or read from an out-of-core source
    (:class:`nica.datasets.streaming.RowSource`): ``(len(idx), d)``."""
    return x[idx] if isinstance(x, torch.Tensor) else x.gather(idx)


class _Optimisation:
    """The mutable state of a fit: module, Adam, schedule; snapshots and checkpoints of it."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig) -> None:
        self.module = module
        matrices = module.square_matrices() if config.matrix_learning_rate is not None and hasattr(
            module, "square_matrices") else []
        ratio = config.matrix_learning_rate / config.learning_rate if matrices else 1.0
        self.optimizer = FlatAdam(module.parameters(), lr=config.learning_rate, matrices=matrices,
                                  matrix_lr_ratio=ratio)
        self.schedule = LearningRateSchedule(self.optimizer, config.lr_schedule, config.max_steps,
                                             factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])

    def parameters_finite(self) -> bool:
        return bool(torch.isfinite(self.optimizer.flat).all())

    def lower_learning_rate(self, factor: float) -> float:
        """Multiply the current (and, for the cosine schedule, every future) step size."""
        return self.schedule.scale(factor)


def train(
    module: torch.nn.Module,
    x: Any,
    u: torch.Tensor,
    config: TrainConfig,
    *,
    generator: torch.Generator,
    progress: bool = False,
    on_epoch: Callable[[int, TrainHistory], None] | None = None,
    checkpoint: Checkpointing | None = None,
    resume: bool = False,
    score_offset: float = 0.0,
    score_name: str = "ELBO",
    validation: Validation | None = None,
) -> TrainHistory:
    """Fit ``module`` to ``x`` ``(N, x_dim)`` and ``u`` ``(N, aux_dim)`` in place.

    ``x`` is a tensor on the training device, or a source whose ``gather(idx)`` reads the
    rows of a mini-batch from disk (:class:`nica.datasets.streaming.RowSource`).

    ``module`` follows the module protocol of :mod:`nica.models.base`: ``module.loss(x, u,
    n_data=, generator=, **module.training_loss_kwargs(step, max_steps))`` returns a
    :class:`~nica.models.LossOutput` with ``loss`` (a scalar, or ``(K,)`` for K stacked
    models) and ``score`` (``([K,] batch)``); a module's ``fused_loss()``, when it gives
    one, is used instead in a single process without ``compile`` (it writes the gradients
    itself, so the loop runs without autograd). Any ``nn.Module`` with such a ``loss``
    trains; the other two are optional.

    ``generator`` (on the data's device) drives batch order and reparameterisation noise.
    ``on_epoch(epoch, history)`` is called after every epoch (e.g. to log MCC); with a
    fused loss it runs with grad mode off.
    ``checkpoint`` writes the full training state every ``checkpoint.every`` steps;
    with ``resume=True`` training continues from the last checkpoint there (if any) and
    reaches the same result as an uninterrupted run. ``progress`` shows a bar
    (:class:`nica.training.progress.FitProgress`) whose scores are less ``score_offset``
    (e.g. the log-Jacobian of a standardisation of x: scores in the units of x),
    labelled ``score_name``. ``validation`` stops training early on a held-out score
    (:class:`Validation`).

    Raises
    ------
    TrainingDivergedError : the loss stayed non-finite ``config.max_nan_retries`` times in
        a row; the module is left in its last good state.
    """
    config.validate()
    n_data = len(x)
    rank, world_size = rank_and_size()
    batch_size = min(config.batch_size, n_data // world_size)
    # under torchrun each process takes its slice of every global batch (module docstring
    # of nica.training.distributed); DDP averages the gradients
    steps_per_epoch = n_data // (batch_size * world_size)
    opt = _Optimisation(module, config)
    contexts = contextlib.ExitStack()
    try:
        # DDP wraps forward(), which for a LatentModule is its loss
        loss_fn = module.loss if world_size == 1 else DistributedDataParallel(module)
        if config.compile:
            loss_fn = torch.compile(loss_fn)
        # the module's own fused loss and backward: it also fills every parameter's .grad
        fused = getattr(module, "fused_loss", None)
        fused = fused() if fused is not None and world_size == 1 and not config.compile else None
        if fused is not None:
            loss_fn = fused
            # nothing is recorded for autograd on this path: grad mode goes off once
            contexts.enter_context(torch.no_grad())
        loss_kwargs = getattr(module, "training_loss_kwargs", None)
        history = TrainHistory()
        loop = dict(epoch=0, batch=0, n_batches=0, order=None, best_elbo=-math.inf, epochs_without_gain=0)
        # models that stack K restarts report (K, batch) ELBOs; any other module (batch,)
        n_models = int(getattr(module, "n_models", None) or getattr(getattr(module, "config", None), "n_models", 1))
        score_sum = torch.zeros(n_models, device=x.device)
        loss_sum = torch.zeros((), device=x.device)
        n_good = 0
        saved = checkpoint.load() if checkpoint is not None and resume else None
        snapshot, failures_in_a_row = None, 0
        if saved is not None:
            opt.load_state_dict(saved["optimisation"])
            generator.set_state(saved["generator"])
            history = TrainHistory.from_dict(saved["history"])
            loop = saved["loop"]
            score_sum, loss_sum, n_good = saved["elbo_sum"].to(x.device), saved["loss_sum"].to(x.device), saved["n_good"]
            # the state a non-finite step rolls back to is the uninterrupted fit's, not the resume point
            snapshot, failures_in_a_row = saved.get("snapshot"), saved.get("failures_in_a_row", 0)
            history.events.append({"step": history.n_steps, "event": "resumed from checkpoint"})
            logger.info("resumed from %s at step %d", checkpoint.path, history.n_steps)
        previous_time = history.fit_time
        start = time.perf_counter()
        if snapshot is None:
            snapshot = opt.state_dict()
        module.train()
        bar = FitProgress(config.max_steps, history.n_steps, progress, score_offset, score_name)

        def write_checkpoint() -> None:
            history.fit_time = previous_time + time.perf_counter() - start
            checkpoint.save({
                "optimisation": opt.state_dict(), "generator": generator.get_state(),
                "history": history.to_dict(), "loop": dict(loop), "elbo_sum": score_sum.cpu(),
                "loss_sum": loss_sum.cpu(), "n_good": n_good, "snapshot": snapshot,
                "failures_in_a_row": failures_in_a_row,
            })

        # an epoch left unfinished by a checkpoint at its last step is closed on resume; a
        # fit that stopped early stays stopped
        while (history.n_steps < config.max_steps and not history.stopped_early) or loop["order"] is not None:
            if loop["order"] is None:  # a new epoch
                loop["order"] = torch.randperm(n_data, generator=generator, device=x.device)
                loop["batch"] = 0
                loop["n_batches"] = min(steps_per_epoch, config.max_steps - history.n_steps)
                score_sum.zero_()
                loss_sum.zero_()
                n_good = 0
            order = loop["order"].to(x.device)
            while loop["batch"] < loop["n_batches"]:
                b = loop["batch"] * world_size + rank
                idx = order[b * batch_size : (b + 1) * batch_size]
                kwargs = loss_kwargs(history.n_steps, config.max_steps) if loss_kwargs is not None else {}
                out = loss_fn(gather_rows(x, idx), u[idx], n_data=n_data, generator=generator, **kwargs)
                total = out.loss.sum()
                loop["batch"] += 1
                history.n_steps += 1
                if all_true(bool(torch.isfinite(total)), total.device):
                    if fused is None:
                        opt.optimizer.zero_grad()
                        total.backward()
                    opt.optimizer.step()
                    score_sum += out.score.mean(-1)
                    loss_sum += out.loss.detach().mean()
                    n_good += 1
                    failures_in_a_row = 0
                    if history.n_steps % SNAPSHOT_EVERY == 0 and opt.parameters_finite():
                        snapshot = opt.state_dict()
                else:
                    failures_in_a_row += 1
                    _recover(opt, snapshot, config, history, failures_in_a_row)
                opt.schedule.after_step()
                if validation is not None and history.n_steps % validation.every == 0:
                    history.validation.append(float(validation.score()))
                    if validation.should_stop(history.validation):
                        history.stopped_early = True
                        loop["n_batches"] = loop["batch"]  # this epoch ends here
                if progress:
                    bar.step(score_sum, n_good)
                if checkpoint is not None and rank == 0 and history.n_steps % checkpoint.every == 0:
                    write_checkpoint()
            stop = _end_epoch(opt, history, loop, score_sum, loss_sum, n_good, config)
            bar.show(history.model_score)
            if on_epoch is not None:
                on_epoch(loop["epoch"], history)
            loop["epoch"] += 1
            loop["order"] = None
            if stop:
                break
        bar.close()
        module.eval()
        history.fit_time = previous_time + time.perf_counter() - start
        if checkpoint is not None and rank == 0 and history.n_steps % checkpoint.every != 0:
            write_checkpoint()  # the final state, so that resuming a finished fit is a no-op
        return history
    finally:  # the parameters get their own storage back, also when training fails
        contexts.close()
        opt.optimizer.release()


def _recover(
    opt: _Optimisation, snapshot: dict, config: TrainConfig, history: TrainHistory, failures: int
) -> None:
    """Handle a non-finite loss: skip the step, roll back if the parameters went bad, lower lr."""
    rolled_back = not opt.parameters_finite()
    if rolled_back:
        opt.load_state_dict(snapshot)
    opt.optimizer.zero_grad()
    if failures > config.max_nan_retries:
        if not rolled_back and not opt.parameters_finite():
            opt.load_state_dict(snapshot)
        opt.module.eval()
        raise TrainingDivergedError(
            f"the training loss was non-finite {failures} times in a row (last at step "
            f"{history.n_steps}) despite lowering the learning rate; the model keeps its last good "
            "state. Lower learning_rate, check the data for extreme values, or standardise X",
            history,
        )
    lr = opt.lower_learning_rate(config.nan_lr_factor)
    action = "rolled back to the last good state" if rolled_back else "skipped the batch"
    history.events.append({"step": history.n_steps, "event": f"non-finite loss: {action}", "learning_rate": lr})
    logger.warning("non-finite loss at step %d: %s, learning rate lowered to %.3g", history.n_steps, action, lr)


def _end_epoch(
    opt: _Optimisation,
    history: TrainHistory,
    loop: dict,
    score_sum: torch.Tensor,
    loss_sum: torch.Tensor,
    n_good: int,
    config: TrainConfig,
) -> bool:
    """Record the epoch's means, step the plateau schedule; True when early stopping fires."""
    n = max(n_good, 1)
    # averaged over processes under DDP, so that every replica takes the same decisions
    model_score = mean_over_processes(score_sum / n).tolist()
    epoch_score = sum(model_score) / len(model_score)
    epoch_loss = float(mean_over_processes(loss_sum / n))
    history.model_score = model_score
    history.score.append(epoch_score)
    history.loss.append(epoch_loss)
    history.learning_rate.append(opt.optimizer.lr)
    opt.schedule.after_epoch(epoch_loss)
    if config.n_iter_no_change is None:
        return False
    if epoch_score > loop["best_elbo"] + config.tol:
        loop["best_elbo"], loop["epochs_without_gain"] = epoch_score, 0
        return False
    loop["epochs_without_gain"] += 1
    if loop["epochs_without_gain"] >= config.n_iter_no_change:
        history.stopped_early = True
        return True
    return False
