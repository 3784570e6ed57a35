"""How X is standardised before a fit, for every family that scales its columns: the
per-column statistics of X and the mean and scale they give (``x_mean_``, ``x_scale_``;
:func:`nica.base.params.log_jacobian` converts scores back to the units of X)."""

from __future__ import annotations

import warnings

import numpy as np

from nica._validation import user_stacklevel
from nica.datasets.streaming import ColumnStats

#: what ``standardization`` does: per-feature z-scores, one scale for every feature, or nothing
SCALINGS = ("feature", "global", "none")


def stats_of(x: np.ndarray) -> ColumnStats:
    """Per-column mean and standard deviation of an in-memory X ``(N, d)``, in float64
    (squares of float32 values above ~1e19 overflow in float32)."""
    return ColumnStats(x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64), len(x))


def standardization(stats: ColumnStats, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale ``(d,)`` each, float32, that X is standardised with: per feature
    (``"feature"``: a constant column keeps scale 1, with a warning), one scale for every
    feature (``"global"``: the root mean feature variance), or the identity (``"none"``)."""
    d = len(stats.mean)
    if kind == "none":
        return np.zeros(d, np.float32), np.ones(d, np.float32)
    if kind not in SCALINGS:
        raise ValueError(f"unknown scaling {kind!r}; choose one of {SCALINGS}")
    mean, std = stats.mean, stats.std
    if np.any(std == 0):
        cols = np.nonzero(std == 0)[0].tolist()
        warnings.warn(f"X has constant column(s) {cols}; they carry no information", stacklevel=user_stacklevel())
    if kind == "global":
        scale = float(np.sqrt(np.mean(np.square(std))))
        return mean.astype(np.float32), np.full(d, scale if scale > 0 else 1.0, np.float32)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


__all__ = ["SCALINGS", "standardization", "stats_of"]
