"""Choosing one of K restarts without looking at the true sources.

Each rule maps the K fitted models to a score per restart (higher is better):

``"score"``
    the model's own training score: the final-epoch mean training ELBO of an iVAE (the
    paper's proposal; also called ``"elbo"``), the exact log-likelihood of a flow (also
    called ``"likelihood"``);
``"agreement"``
    the mean MCC between a restart's latents and every other restart's latents. An
    identifiable model's good fits agree with each other up to permutation and sign;
    spurious optima do not, so the restart closest to the consensus is kept;
``"first"``
    keep restart 0 (the score is 1 for it, 0 for the others): the baseline a rule must beat.

docs/performance.md records how often each rule beats the median restart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nica.metrics.mcc import pairwise_mcc

SELECTION_RULES = ("agreement", "score", "first")
#: other names of a rule: the score is an ELBO for the iVAE, a log-likelihood for a flow
SELECTION_ALIASES = {"elbo": "score", "likelihood": "score"}


def canonical_rule(rule: object) -> str:
    """The rule ``rule`` names (an alias resolved); ValueError for an unknown name."""
    if isinstance(rule, str) and rule in SELECTION_RULES:
        return rule
    if isinstance(rule, str) and rule in SELECTION_ALIASES:
        return SELECTION_ALIASES[rule]
    raise ValueError(f"selection must be one of {SELECTION_RULES} (or {', '.join(map(repr, SELECTION_ALIASES))}, "
                     f"names of 'score'), got {rule!r}")


def agreement_matrix(latents: np.ndarray) -> np.ndarray:
    """Pairwise MCC between restarts: latents ``(K, N, n)`` -> symmetric ``(K, K)``, diagonal 1."""
    return pairwise_mcc(latents)


def agreement_scores(agreement: np.ndarray) -> np.ndarray:
    """Mean agreement of each restart with the others ``(K,)``; 1 for a single restart."""
    k = agreement.shape[0]
    if k == 1:
        return np.ones(1)
    return (agreement.sum(1) - 1.0) / (k - 1)


def restart_scores(
    rule: str, *, fit_scores: np.ndarray | None = None, latents: Callable[[], np.ndarray],
    model_elbo: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores ``(K,)`` under ``rule`` and the ``(K, K)`` agreement matrix (None when K = 1).

    ``fit_scores`` ``(K,)``: each model's training score (ELBO or log-likelihood;
    ``model_elbo`` is its former name). ``latents()`` returns the latents of every restart
    on a common sample ``(K, N, n)``; it is not called for a single restart.
    """
    rule = canonical_rule(rule)
    fit_scores = np.asarray(model_elbo if fit_scores is None else fit_scores, dtype=float)
    agreement = agreement_matrix(latents()) if len(fit_scores) > 1 else None
    if rule == "score":
        return fit_scores, agreement
    if rule == "first":
        scores = np.zeros(len(fit_scores))
        scores[0] = 1.0
        return scores, agreement
    return agreement_scores(agreement if agreement is not None else np.ones((1, 1))), agreement
