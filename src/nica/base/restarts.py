"""The restarts of a fit: how many, and which one is kept.

Every estimator trains its K restarts side by side as one stacked module (its own
stacking, or :class:`nica.models.base.RestartStack`); after training,
:func:`choose_restart` scores them under the estimator's ``selection`` rule
(:mod:`nica.training.selection`), never with the true sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nica.training.selection import SELECTION_RULES, canonical_rule, restart_scores

#: rows of X on which restarts' latents are compared by the agreement rule
SELECTION_SAMPLES = 5_000


def check_restarts(n_restarts: object, selection: object) -> int:
    """``n_restarts`` as an ``int`` >= 1, after checking that ``selection`` is a known rule."""
    k = n_restarts
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"n_restarts must be a positive integer, got {k!r}")
    canonical_rule(selection)
    return int(k)


@dataclass(frozen=True)
class RestartChoice:
    """The kept restart and what chose it.

    ``scores`` ``(K,)`` under the rule; ``fit_scores`` ``(K,)`` each restart's training
    score (what the ``"score"`` rule reads); ``agreement`` ``(K, K)`` MCC between
    restarts' latents (None for a single restart).
    """

    selected: int
    scores: np.ndarray
    fit_scores: np.ndarray
    agreement: np.ndarray | None


def choose_restart(fit_scores: np.ndarray, selection: str, latents: Callable[[], np.ndarray]) -> RestartChoice:
    """Score K restarts under ``selection`` and keep the best. ``fit_scores`` ``(K,)``: each
    restart's training score (NaN counts as the worst); ``latents()``: every restart's
    latents on a common sample ``(K, rows, n)``, computed only when K > 1."""
    fit_scores = np.asarray(fit_scores, dtype=float)
    scores, agreement = restart_scores(selection, fit_scores=np.nan_to_num(fit_scores, nan=-np.inf), latents=latents)
    return RestartChoice(int(np.argmax(scores)), scores, fit_scores, agreement)


def selection_rows(n_rows: int, seed: int) -> np.ndarray:
    """The sorted rows ``(min(n_rows, SELECTION_SAMPLES),)`` on which restarts' latents are
    compared, drawn from the fit's seed."""
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:SELECTION_SAMPLES])


__all__ = ["RestartChoice", "SELECTION_RULES", "SELECTION_SAMPLES", "check_restarts", "choose_restart",
           "selection_rows"]
