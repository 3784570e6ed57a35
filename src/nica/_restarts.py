"""The restarts of an :class:`nica.IVAE` fit: how many, and which one is kept.

The K restarts are trained side by side as one stacked module; after training,
:func:`choose_restart` scores them under the estimator's ``selection`` rule
(:mod:`nica.training.selection`), never with the true sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nica.datasets.streaming import OneHotRows, RowSource
from nica.models.ivae import IVAEModule
from nica.training.selection import SELECTION_RULES, restart_scores
from nica.training.trainer import TrainHistory, gather_rows

#: rows of X on which restarts' latents are compared by the agreement rule
SELECTION_SAMPLES = 5_000


def check_restarts(n_restarts: object, selection: object) -> int:
    """``n_restarts`` as an ``int`` >= 1, after checking that ``selection`` is a known rule."""
    k = n_restarts
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"n_restarts must be a positive integer, got {k!r}")
    if selection not in SELECTION_RULES:
        raise ValueError(f"selection must be one of {SELECTION_RULES}, got {selection!r}")
    return int(k)


@dataclass(frozen=True)
class RestartChoice:
    """The kept restart and what chose it.

    ``scores`` ``(K,)`` under the rule; ``model_elbo`` ``(K,)`` each restart's final
    training ELBO per sample (of standardised X); ``agreement`` ``(K, K)`` MCC between
    restarts' latents (None for a single restart).
    """

    selected: int
    scores: np.ndarray
    model_elbo: np.ndarray
    agreement: np.ndarray | None


def choose_restart(module: IVAEModule, history: TrainHistory, x: torch.Tensor | RowSource,
                   u: torch.Tensor | OneHotRows, *, selection: str, seed: int) -> RestartChoice:
    """Score the restarts of a trained (eval-mode) stacked ``module`` and pick the best."""
    model_elbo = np.asarray(history.model_elbo or [np.nan] * module.config.n_models, dtype=float)
    scores, agreement = restart_scores(
        selection,
        model_elbo=np.nan_to_num(model_elbo, nan=-np.inf),
        latents=lambda: restart_latents(module, x, u, seed),
    )
    return RestartChoice(int(np.argmax(scores)), scores, model_elbo, agreement)


@torch.no_grad()
def restart_latents(
    module: IVAEModule, x: torch.Tensor | RowSource, u: torch.Tensor | OneHotRows, seed: int
) -> np.ndarray:
    """Posterior means of every restart on a seeded subsample: ``(K, rows, n)``."""
    rows = np.random.default_rng(seed).permutation(len(x))[:SELECTION_SAMPLES]
    rows_t = torch.from_numpy(np.sort(rows)).to(u.device)
    return module.inference(gather_rows(x, rows_t), u[rows_t])[0].cpu().numpy()
