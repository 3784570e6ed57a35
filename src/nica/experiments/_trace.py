"""MCC over training for the VAE family (iVAE, VAE, beta-VAE, beta-TCVAE), Fig. 2a.

The estimators expose no per-epoch callback, so :func:`fit_traced` does what
:meth:`nica.IVAE.fit` does, step by step and with the estimator's own helpers (input
checks, network and training configs, standardisation, u encoding, the seeding of the
network and of the batch generator, and the final bookkeeping), and hands
:func:`nica.training.train` an ``on_epoch`` callback that computes the posterior-mean
MCC on the training data. The callback draws no random numbers and leaves the module in
training mode, so the traced fit is the fit ``model.fit(x, u)`` would make (a test checks
that the two give the same latents). The alternative, refitting with growing
``max_steps``, would be both wasteful and wrong: the cosine learning-rate schedule
depends on ``max_steps``.
"""

from __future__ import annotations

import numpy as np
import torch

from nica._random import draw_seed
from nica._validation import warn_identifiability
from nica.estimator import IVAE, _standardize, resolve_device
from nica.metrics import mean_corr_coef
from nica.models.ivae import IVAEModule
from nica.training.trainer import TrainHistory, train

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
    u_fit = u if model._conditional else None
    xa, aux, stats = model._check_fit_inputs(x, u_fit)
    train_config = model._train_config()
    train_config.validate()
    model_config = model._model_config(xa.shape[1], aux, model._check_restarts())
    if model._conditional:
        warn_identifiability(aux.n_values, model.n_components, prior=model.prior,
                             prior_mean=model.prior_mean, prior_scale=model.prior_scale)
    device = resolve_device(model.device)
    x_mean, x_scale = model._standardization(stats)
    x_t = torch.from_numpy(_standardize(xa, x_mean, x_scale)).to(device)
    u_t = model._aux_rows(u_fit, len(xa), aux).to(device)
    seed = draw_seed(model.random_state)
    with torch.random.fork_rng(devices=[]):  # seeded exactly as IVAE.fit seeds its module
        torch.manual_seed(seed)
        module = IVAEModule(model_config)
    module.to(device)
    module.objective, module.analytic_gradients = model._objective(), bool(model.analytic_gradients)
    generator = torch.Generator(device=device).manual_seed(seed + 1)

    def mcc_now() -> float:
        with torch.no_grad():
            z = module.inference(x_t, u_t[:])[0][0].cpu().numpy()
        return mean_corr_coef(s, z)

    trace: list[TracePoint] = [(0, 0, mcc_now(), float("nan"))]
    n_epochs = -(-train_config.max_steps // max(1, len(xa) // min(train_config.batch_size, len(xa))))

    def on_epoch(epoch: int, history: TrainHistory) -> None:
        if (epoch + 1) % every == 0 or epoch + 1 == n_epochs:
            trace.append((epoch + 1, history.n_steps, mcc_now(), history.elbo[-1]))

    history = train(module, x_t, u_t, train_config, generator=generator, on_epoch=on_epoch)
    if trace[-1][1] != history.n_steps:  # early stopping ended on an epoch between two records
        trace.append((len(history.elbo), history.n_steps, mcc_now(), history.elbo[-1]))
    model._set_fitted(module, history, x_t, u_t, aux, x_mean, x_scale, seed, device)
    return model, trace


__all__ = ["TracePoint", "fit_traced"]
