"""MCC over training for the VAE family (iVAE, VAE, beta-VAE, beta-TCVAE), Fig. 2a.

:func:`fit_traced` fits as :meth:`nica.IVAE.fit` does, through the estimator skeleton's
own fit with an ``on_epoch`` observer that computes the posterior-mean MCC on the
training data at initialisation and after every ``every`` epochs. The observer draws no
random numbers and leaves the module in training mode, so the traced fit is the fit
``model.fit(x, u)`` would make (a test checks that the two give the same latents). The
alternative, refitting with growing ``max_steps``, would be both wasteful and wrong: the
cosine learning-rate schedule depends on ``max_steps``.
"""

from __future__ import annotations

import numpy as np
import torch

from nica.base.estimator import FitData
from nica.ivae.estimator import IVAE
from nica.metrics import mean_corr_coef
from nica.models.base import LatentModule
from nica.training.trainer import TrainHistory

#: (epoch, optimiser steps so far, MCC, mean training ELBO of the epoch); epoch 0 is the initialisation
TracePoint = tuple[int, int, float, float]


def fit_traced(
    model: IVAE,
    x: np.ndarray,
    u: np.ndarray | None,
    s: np.ndarray,
    *,
    every: int = 1,
) -> tuple[IVAE, list[TracePoint]]:
    """Fit ``model`` (an :class:`nica.IVAE` or subclass, one restart) on (x, u) as
    ``model.fit`` would, recording the posterior-mean MCC against ``s`` after every
    ``every`` epochs, after the last epoch and at initialisation.

    x: ``(N, d)``, u: ``(N,)`` labels (ignored by unconditional models), s: ``(N, n)``.
    Returns the fitted model and the trace as :data:`TracePoint` tuples.
    """
    if getattr(model, "n_restarts", 1) != 1:
        raise ValueError("fit_traced follows one restart; use n_restarts=1")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    trace: list[TracePoint] = []
    n_rows = len(x)

    def mcc_now(module: LatentModule, data: FitData) -> float:
        with torch.no_grad():
            z = module.inference(data.x, data.u[:])[0][0].cpu().numpy()
        return mean_corr_coef(s, z)

    def on_epoch(module: LatentModule, data: FitData, epoch: int | None, history: TrainHistory | None) -> None:
        if epoch is None:
            state["data"] = data
            trace.append((0, 0, mcc_now(module, data), float("nan")))
            return
        config = model._train_config(data.x.shape[1])
        n_epochs = -(-config.max_steps // max(1, n_rows // min(config.batch_size, n_rows)))
        if (epoch + 1) % every == 0 or epoch + 1 == n_epochs:
            trace.append((epoch + 1, history.n_steps, mcc_now(module, data), history.score[-1]))

    state: dict = {}
    model._fit(x, u, on_epoch=on_epoch)
    if trace[-1][1] != model.history_.n_steps:  # early stopping ended on an epoch between two records
        history = model.history_
        trace.append((len(history.score), history.n_steps, mcc_now(model.restarts_module_, state["data"]),
                      history.score[-1]))
    return model, trace


__all__ = ["TracePoint", "fit_traced"]
