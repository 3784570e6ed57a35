"""How :class:`nica.IFlow` trains its stacked restarts: held-out rows for early stopping,
pruning the restarts to the most likely one, and the exact log-likelihood of every
restart over all rows (in memory or read from disk a block at a time).

Pruning (``prune_after``): all K restarts train side by side at a constant learning rate
for ``prune_after`` steps; then only the restart with the highest training
log-likelihood (under the estimator's ``selection`` rule) goes on, alone, for the rest of
the budget on the learning-rate schedule. A single restart costs less than half a step
of four stacked ones, so the restart that started in the best basin gets more than twice
the steps for the same time (docs/tuning.md, issue 22). Each phase checkpoints on its
own, so an interrupted fit resumes in either phase to the uninterrupted result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nica.base.params import INFERENCE_CHUNK, chunks
from nica.datasets.streaming import OneHotRows, row_subset
from nica.flows.module import STACKABLE_FLOW, IFlowModule
from nica.flows.projection import InputProjection
from nica.training.checkpoint import Checkpointing
from nica.training.selection import restart_scores
from nica.training.trainer import TrainConfig, TrainHistory, TrainingDivergedError, Validation, gather_rows

#: ``early_stopping``: steps between evaluations of the held-out log-likelihood, and the
#: most rows held out
VALIDATION_EVERY, MAX_VALIDATION_ROWS = 500, 20_000
#: ``early_stopping``: evaluations without a gain before stopping, when ``n_iter_no_change`` is None
VALIDATION_PATIENCE = 10
#: values per tensor in the element-wise layers during inference (16 MB of float32)
INFERENCE_ELEMENTS = 2**22
#: the checkpoint folder of the phase after pruning, inside ``checkpoint_dir``
REFINE_FOLDER = "after-pruning"


def hold_out(x: Any, u: torch.Tensor | OneHotRows, *, fraction: float, seed: int, patience: int | None,
             tol: float) -> tuple[Any, Any, Callable[[IFlowModule], Validation]]:
    """The training rows of x and u, and the early-stopping rule for a module: its best
    restart's mean log-likelihood of the flow's input on a seeded random ``fraction`` of
    the rows (at most :data:`MAX_VALIDATION_ROWS`, never trained on), every
    :data:`VALIDATION_EVERY` steps."""
    fraction = float(fraction)
    if not 0 < fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}")
    n_rows = len(x)
    n_held = min(max(1, int(round(fraction * n_rows))), MAX_VALIDATION_ROWS)
    if n_rows - n_held < 2:
        raise ValueError(f"early_stopping holds out {n_held} of {n_rows} rows, too few left to train on")
    order = np.random.default_rng(seed + 2).permutation(n_rows)
    held = torch.from_numpy(np.sort(order[:n_held]))
    kept = torch.from_numpy(np.sort(order[n_held:]))
    x_held, u_held = gather_rows(x, held), u[held]
    patience = VALIDATION_PATIENCE if patience is None else int(patience)

    def validation(module: IFlowModule) -> Validation:
        @torch.no_grad()
        def score() -> float:
            return float(module.log_prob(x_held, u_held).double().mean(-1).max())

        return Validation(score, every=VALIDATION_EVERY, patience=patience, tol=float(tol))

    return row_subset(x, kept), row_subset(u, kept), validation


@dataclass
class Pruning:
    """What pruning kept: the restart, every restart's score under the selection rule when
    they were compared (``scores``, ``agreement``), and the stacked restarts at that point."""

    selected: int
    scores: np.ndarray
    agreement: np.ndarray | None
    restarts: IFlowModule


#: one call of the trainer (the skeleton's :meth:`nica.base.Estimator._train_phase`):
#: ``phase(module, config, generator_seed, checkpoint, validation)`` -> its history
Phase = Callable[[IFlowModule, TrainConfig, int, "Checkpointing | None", "Validation | None"], TrainHistory]


def train_restarts(module: IFlowModule, config: TrainConfig, *, prune_after: int | None, selection: str,
                   latents: Callable[[IFlowModule], np.ndarray], generator_seed: int, train_phase: Phase,
                   checkpoint: Checkpointing | None, validation: Callable[[IFlowModule], Validation] | None,
                   ) -> tuple[IFlowModule, TrainHistory, Pruning | None]:
    """Train the stacked restarts of ``module`` (module docstring) by ``train_phase``: the
    trained module (one restart when pruned), the history of the whole fit, and what
    pruning chose (None without pruning). A ``TrainingDivergedError`` after pruning
    carries the history of both phases."""
    k = module.config.n_models

    def phase(trained: IFlowModule, phase_config: TrainConfig, seed: int, folder: Checkpointing | None
              ) -> TrainHistory:
        return train_phase(trained, phase_config, seed, folder, None if validation is None else validation(trained))

    if not prune_after or k == 1 or prune_after >= config.max_steps:
        return module, phase(module, config, generator_seed, checkpoint), None
    explore = dataclasses.replace(config, max_steps=int(prune_after), lr_schedule="constant")
    first = phase(module, explore, generator_seed, checkpoint)
    module.eval()
    scores, agreement = restart_scores(selection, fit_scores=np.nan_to_num(np.asarray(first.model_score, float),
                                                                            nan=-np.inf),
                                       latents=lambda: latents(module))
    kept = int(np.argmax(scores))
    single = module.select(kept)
    pruning = Pruning(kept, scores, agreement, module)
    if first.stopped_early:  # the held-out likelihood stopped the fit before pruning
        return single, first, pruning
    refine = dataclasses.replace(config, max_steps=config.max_steps - int(prune_after))
    later = None if checkpoint is None else dataclasses.replace(
        checkpoint, directory=checkpoint.directory / REFINE_FOLDER)
    try:
        second = phase(single, refine, generator_seed + 2, later)
    except TrainingDivergedError as exc:
        exc.history = joined(first, exc.history)
        raise
    return single, joined(first, second), pruning


def joined(first: TrainHistory, second: TrainHistory) -> TrainHistory:
    """One history of two consecutive phases of a fit."""
    offset = first.n_steps
    events = first.events + [{**e, "step": e.get("step", 0) + offset} for e in second.events]
    events.insert(len(first.events), {"step": offset, "event": "restarts pruned to the most likely one"})
    return TrainHistory(
        score=first.score + second.score, model_score=second.model_score,
        validation=first.validation + second.validation,
        loss=first.loss + second.loss, learning_rate=first.learning_rate + second.learning_rate,
        n_steps=first.n_steps + second.n_steps, stopped_early=second.stopped_early,
        fit_time=first.fit_time + second.fit_time, events=events,
    )


def inference_rows(module: IFlowModule) -> int:
    """Rows per block of inference: :data:`~nica._base.INFERENCE_CHUNK` at most, and few
    enough that the element-wise layers' (restarts, features, units, rows) tensors stay
    near :data:`INFERENCE_ELEMENTS` values, so memory does not grow with the width."""
    c = module.config
    per_row = c.n_models * c.x_dim * (c.n_bins if c.flow == STACKABLE_FLOW else 1)
    return int(min(INFERENCE_CHUNK, max(256, INFERENCE_ELEMENTS // per_row)))


@torch.no_grad()
def restart_log_likelihood(module: IFlowModule, x: Any, u: torch.Tensor | OneHotRows, projection: InputProjection,
                           device: torch.device) -> np.ndarray:
    """Mean exact log p(x | u) per row of every stacked restart ``(K,)``, in the units of
    X, over all rows of ``x`` ``(N, d)`` (in memory or out of core: read a chunk at a time)."""
    total = torch.zeros(module.config.n_models, dtype=torch.float64)
    n_rows = int(x.shape[0])
    for rows in chunks(n_rows, inference_rows(module)):
        block = np.asarray(x[rows])
        y = torch.from_numpy(projection.apply(block)).to(device)
        total += module.log_prob(y, u[rows].to(device)).double().sum(-1).cpu()
        total += float(projection.residual_log_density(block).sum())
    return (total / n_rows).numpy() - projection.log_jacobian()


__all__ = ["Pruning", "hold_out", "inference_rows", "joined", "restart_log_likelihood",
           "train_restarts"]
