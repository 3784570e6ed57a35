"""Fitting and scoring one estimator, the same way in every experiment.

MCC is posterior-mean (Pearson) MCC against the true sources on the training data, as
the paper. TCL is scored as the TCL paper does: its feature layer ends in an absolute
value, so its estimates are the sources' |s_i| up to order, sign and scale
(:class:`nica.TCL`), and they are compared with |s|. The score column holds each
estimator's own objective: the ELBO per sample for the VAE family (``model.score``, in
the units of X), the exact log-likelihood per sample for the identifiable flow, the
segment classification accuracy for TCL. A model with fewer latents than sources (the
latent-dimension selection) is scored over its latents, each matched to one source.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nica.baselines import TCL
from nica.experiments._core import Task
from nica.flows import IFlow
from nica.metrics import mean_corr_coef


def target_sources(model: Any, s: np.ndarray) -> np.ndarray:
    """What the estimator's latents estimate: |s| for TCL (abs features), s otherwise."""
    return np.abs(s) if isinstance(model, TCL) else s


def score_name(model: Any) -> str:
    if isinstance(model, TCL):
        return "accuracy"
    if isinstance(model, IFlow):
        return "log-likelihood"
    return "ELBO"


def fit_and_score(task: Task, model: Any, x: np.ndarray, u: np.ndarray, s: np.ndarray,
                  **changes: Any) -> dict[str, Any]:
    """Fit ``model`` on (x, u), then one results row: MCC, the model's score, fit seconds."""
    start = time.perf_counter()
    model.fit(x, u)
    seconds = time.perf_counter() - start
    z = model.transform(x, u)
    target = target_sources(model, s)
    mcc = mean_corr_coef(target, z) if z.shape[1] >= target.shape[1] else mean_corr_coef(z, target)
    return task.row(mcc=mcc, score=float(model.score(x, u)), score_name=score_name(model),
                    seconds=seconds, step=model.n_steps_, **changes)
