"""The methods of the ``switching`` and ``energy-landscape`` experiments, fitted the same way.

Each method is fitted on the training series and returns its latents of the held-out
ones (and, for the switching flow, the regime of every held-out step):

* ``SwitchingTemporalFlow`` with hidden regimes (no u), or with the true regime / well of
  every step given as u (one transition, conditioned on it);
* ``iVAE (u = regime)``: :class:`nica.IVAE` on the steps as rows, u the true regime;
* ``TCL (u = regime)``: :class:`nica.TCL`, a feature extractor trained to classify the
  regime of a step (then linear ICA), the time-contrastive baseline;
* ``PCA``: the top principal components of x (whitened).

The baselines are given the true regimes, which our hidden-regime model is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

OURS_HIDDEN, OURS_GIVEN = "SwitchingTemporalFlow (regimes hidden)", "SwitchingTemporalFlow (regime given as u)"
IVAE_REGIME, TCL_REGIME, PCA_METHOD = "iVAE (u = regime)", "TCL (u = regime)", "PCA"
REGIME_METHODS = (OURS_HIDDEN, OURS_GIVEN, IVAE_REGIME, TCL_REGIME, PCA_METHOD)


@dataclass
class RegimeFit:
    """Latents of the held-out series in their layout, regimes (or None), CPU seconds of
    the fit (one thread), optimiser steps."""

    z_test: np.ndarray
    regimes_test: np.ndarray | None
    cpu_seconds: float
    n_steps: int


def fit_regime_method(method: str, n: int, lags: int, x: np.ndarray, regimes: np.ndarray, x_test: np.ndarray,
                      *, n_regimes: int, seed: int, ours: dict[str, Any] | None = None,
                      baseline: dict[str, Any] | None = None) -> RegimeFit:
    """Fit ``method`` to the series ``x`` ``(N, T, d)`` (true regimes ``(N, T)``, used only
    by the methods that are given them) and return its latents of ``x_test``."""
    from nica.baselines import TCL
    from nica.ivae.estimator import IVAE
    from nica.temporal import SwitchingTemporalFlow

    start = time.process_time()
    rows, labels, rows_test = x.reshape(-1, x.shape[-1]), regimes.reshape(-1), x_test.reshape(-1, x.shape[-1])
    if method in (OURS_HIDDEN, OURS_GIVEN):
        hidden = method == OURS_HIDDEN
        model = SwitchingTemporalFlow(n, lags=lags, n_regimes=n_regimes if hidden else 1, random_state=seed,
                                      device="cpu", **(ours or {}))
        model.fit(x, None if hidden else regimes)
        cpu = time.process_time() - start
        return RegimeFit(model.transform(x_test), model.predict_regime(x_test) if hidden else None, cpu,
                         model.n_steps_)
    if method == PCA_METHOD:
        mean = rows.mean(0)
        _, s, vt = np.linalg.svd(rows[:: max(1, len(rows) // 200_000)] - mean, full_matrices=False)
        z = (rows_test - mean) @ vt[:n].T
        return RegimeFit(z.reshape(*x_test.shape[:-1], n), None, time.process_time() - start, 0)
    if method == IVAE_REGIME:
        model = IVAE(n, encoder_sees_u=False, random_state=seed, device="cpu", **(baseline or {})).fit(rows, labels)
    elif method == TCL_REGIME:
        model = TCL(n, random_state=seed, device="cpu", **(baseline or {})).fit(rows, labels)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {REGIME_METHODS}")
    cpu = time.process_time() - start
    z = model.transform(rows_test) if method == TCL_REGIME else model.transform(rows_test, None)
    return RegimeFit(np.asarray(z).reshape(*x_test.shape[:-1], n), None, cpu, model.n_steps_)


__all__ = ["IVAE_REGIME", "OURS_GIVEN", "OURS_HIDDEN", "PCA_METHOD", "REGIME_METHODS", "TCL_REGIME", "RegimeFit",
           "fit_regime_method"]
