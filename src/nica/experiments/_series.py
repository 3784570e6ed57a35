"""Fitting the models of the time-series experiments (``temporal``, ``regimes``) the same way.

Each method is fitted on the training series and scored on the held-out series of the
same process, at the steps t >= L that every method has (iVAE with u = the past
observations has no u for the first L steps):

* ``TemporalIVAE``: :class:`nica.TemporalIVAE` with the domain of each step as u (or
  none), latents z_t = f^{-1}(x_t);
* ``iVAE (u = domain)``: :class:`nica.IVAE` on the steps as rows, u the domain label;
* ``iVAE (u = time window)``: u the index of the window of ``window`` steps a step is in;
* ``iVAE (u = past x)``: u = ``[x_{t-1}, ..., x_{t-L}]`` (and the one-hot domain, when
  there is one), a continuous u through the prior MLP, with a learned prior mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from nica.ivae.estimator import IVAE
from nica.temporal import TemporalIVAE, lagged_aux, time_windows

TEMPORAL = "TemporalIVAE"
IVAE_DOMAIN, IVAE_WINDOW, IVAE_PAST = "iVAE (u = domain)", "iVAE (u = time window)", "iVAE (u = past x)"
SERIES_METHODS = (TEMPORAL, IVAE_DOMAIN, IVAE_WINDOW, IVAE_PAST)


@dataclass
class SeriesFit:
    """A fitted method: latents of the held-out steps t >= L ``(T_test - L, n)``, the
    model's own score on the training series, fit seconds and optimiser steps."""

    z_test: np.ndarray
    score: float
    score_name: str
    seconds: float
    n_steps: int


def fit_series_method(method: str, n: int, lags: int, x: np.ndarray, u: np.ndarray | None, x_test: np.ndarray,
                      u_test: np.ndarray | None, *, seed: int, window: int = 500,
                      temporal: dict[str, Any] | None = None, ivae: dict[str, Any] | None = None) -> SeriesFit:
    """Fit ``method`` (one of :data:`SERIES_METHODS`) on the series ``x`` ``(T, d)`` with
    domains ``u`` ``(T,)`` (or None) and return its latents of ``x_test``.

    ``temporal`` / ``ivae`` are settings passed to :class:`nica.TemporalIVAE` /
    :class:`nica.IVAE`; ``window`` is the time window of ``iVAE (u = time window)``.
    """
    common = dict(random_state=seed, device="cpu")
    start = time.perf_counter()
    if method == TEMPORAL:
        model: Any = TemporalIVAE(n, lags=lags, **common, **(temporal or {})).fit(x, u)
        seconds = time.perf_counter() - start
        z = model.transform(x_test)[lags:]
        return SeriesFit(z, model.score_, "log-likelihood" if model.inference == "flow" else "ELBO", seconds,
                         model.n_steps_)
    if method == IVAE_PAST:
        rows, aux = lagged_aux(x, u, lags)
        model = IVAE(n, prior_mean=True, u_type="continuous", **common, **(ivae or {})).fit(rows, aux)
        seconds = time.perf_counter() - start
        rows_test, aux_test = lagged_aux(x_test, u_test, lags)
        return SeriesFit(model.transform(rows_test, aux_test), model.elbo_, "ELBO", seconds, model.n_steps_)
    if method == IVAE_DOMAIN:
        if u is None:
            raise ValueError("iVAE (u = domain) needs domain labels")
        labels, labels_test = u, u_test
    elif method == IVAE_WINDOW:
        labels, labels_test = time_windows(len(x), window), time_windows(len(x_test), window)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {SERIES_METHODS}")
    model = IVAE(n, **common, **(ivae or {})).fit(x, labels)
    seconds = time.perf_counter() - start
    return SeriesFit(model.transform(x_test, labels_test)[lags:], model.elbo_, "ELBO", seconds, model.n_steps_)


__all__ = ["IVAE_DOMAIN", "IVAE_PAST", "IVAE_WINDOW", "SERIES_METHODS", "TEMPORAL", "SeriesFit",
           "fit_series_method"]
