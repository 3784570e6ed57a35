"""Time series as the temporal models and the iVAE baselines read them.

A data set is one series ``(T, d)``, many of equal length ``(N, T, d)``, or a list of
series of any lengths; u gives the domain (or any auxiliary label) of each step, in the
same layout, or one label per series. :func:`check_series` validates and splits them
into a list of ``(T_i, d)`` arrays (and ``(T_i,)`` labels), :func:`windows` cuts them
into the windows x_{t-L..t} the temporal models train on, and :func:`lagged_aux` /
:func:`time_windows` build the auxiliary variables of iVAE on a series (past
observations, time windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nica._validation import AuxEncoder, check_observations


@dataclass
class Series:
    """Validated sequences: ``x`` a list of ``(T_i, d)`` float32 arrays, ``u`` a list of
    ``(T_i,)`` or ``(T_i, m)`` arrays or None, ``layout`` how they were given:
    ``"single"`` ``(T, d)``, ``"stacked"`` ``(N, T, d)`` or ``"list"``."""

    x: list[np.ndarray]
    u: list[np.ndarray] | None
    layout: str

    @property
    def n_steps(self) -> int:
        return sum(len(s) for s in self.x)

    @property
    def n_features(self) -> int:
        return self.x[0].shape[1]

    def concatenated(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every step as one row: x ``(sum T_i, d)``, u ``(sum T_i, ...)`` or None."""
        u = None if self.u is None else np.concatenate(self.u)
        return np.concatenate(self.x), u

    def restore(self, rows: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Per-step results ``(sum T_i, k)`` back in the layout the sequences came in."""
        parts = np.split(rows, np.cumsum([len(s) for s in self.x])[:-1])
        if self.layout == "single":
            return parts[0]
        if self.layout == "stacked":
            return np.stack(parts)
        return parts


def check_series(X: Any, u: Any = None, *, min_length: int = 2, name: str = "X",
                 n_features: int | None = None) -> Series:
    """Validate a series, or several, and their per-step labels.

    Parameters
    ----------
    X : ``(T, d)``, ``(N, T, d)`` or a list of ``(T_i, d)`` arrays.
    u : None, or per step ``(T,)`` / ``(T, m)`` for one series, ``(N, T)`` / ``(N, T, m)``
        or ``(N,)`` (one label per series) for stacked series, a list for a list.
    min_length : the shortest series allowed (``lags + 1`` for a model with L lags).
    n_features : the width X must have (a fitted model's), or None.

    Raises
    ------
    ValueError, TypeError : naming the problem (shape, NaN, a series too short for the
        lags, u of the wrong length) before anything is fitted.
    """
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{name} is an empty list; pass one series (T, d) or several")
        layout, parts = "list", [check_observations(s, f"{name}[{i}]", min_samples=1) for i, s in enumerate(X)]
    else:
        try:
            arr = np.asarray(X) if not hasattr(X, "toarray") else X
        except Exception as exc:
            raise ValueError(f"{name} could not be converted to an array: {exc}") from None
        if getattr(arr, "ndim", 2) == 3:
            if arr.shape[0] < 1:
                raise ValueError(f"{name} has no series (shape {arr.shape})")
            layout, parts = "stacked", [check_observations(s, f"{name}[{i}]", min_samples=1)
                                        for i, s in enumerate(arr)]
        else:
            layout, parts = "single", [check_observations(X, name, min_samples=1)]
    widths = {p.shape[1] for p in parts}
    if len(widths) > 1:
        raise ValueError(f"the series of {name} have different numbers of features: {sorted(widths)}")
    width = widths.pop()
    if n_features is not None and width != n_features:
        raise ValueError(f"{name} has {width} features but the model was fitted with {n_features}")
    for i, p in enumerate(parts):
        if len(p) < min_length:
            which = name if layout == "single" else f"{name}[{i}]"
            raise ValueError(f"{which} has {len(p)} time steps, too short for the model's lags: each series "
                             f"needs at least {min_length} steps (lags + 1)")
    return Series(parts, None if u is None else _split_aux(u, parts, layout), layout)


def _split_aux(u: Any, parts: list[np.ndarray], layout: str) -> list[np.ndarray]:
    lengths = [len(p) for p in parts]
    if layout == "list":
        if not isinstance(u, (list, tuple)) or len(u) != len(parts):
            raise ValueError(f"X is a list of {len(parts)} series; pass u as a list of as many per-step "
                             "label arrays")
        out = [np.asarray(v) for v in u]
    elif layout == "single":
        out = [np.asarray(u)]
    else:
        arr = np.asarray(u)
        if arr.ndim == 1 and len(arr) == len(parts):  # one label per series
            arr = np.repeat(arr[:, None], lengths[0], axis=1)
        if arr.ndim < 2 or arr.shape[0] != len(parts):
            raise ValueError(f"X holds {len(parts)} series of {lengths[0]} steps; u must have shape "
                             f"({len(parts)}, {lengths[0]}) (a label per step) or ({len(parts)},) (per "
                             f"series), got {arr.shape}")
        out = list(arr)
    for i, (v, n) in enumerate(zip(out, lengths)):
        if v.ndim == 0 or len(v) != n:
            where = "" if layout == "single" else f" of series {i}"
            got = "a scalar" if v.ndim == 0 else f"{len(v)} values"
            raise ValueError(f"u{where} has {got} but the series has {n} time steps; pass one label per step")
    return out


def aux_encoder(series: Series, u_type: str = "auto") -> AuxEncoder:
    """u's encoding for the temporal models: one-hot labels (a single label, or no u, is
    one domain) or standardised continuous values (``u_type``: ``"auto"``,
    ``"categorical"`` or ``"continuous"``)."""
    if series.u is None:
        return AuxEncoder("categorical", kind="categorical", classes=[0])
    _, u = series.concatenated()
    values = np.unique(u) if u.ndim == 1 and u.dtype.kind in "iubfU" else None
    if values is not None and len(values) == 1 and u_type != "continuous":
        return AuxEncoder("categorical", kind="categorical", classes=[values[0].item()])
    return AuxEncoder(u_type).fit(u, len(u))


def encoded_aux(series: Series, aux: AuxEncoder) -> np.ndarray:
    """The encoded u of every step ``(sum T_i, aux_dim)``; a model fitted without u takes none."""
    if series.u is None:
        if aux.kind != "categorical" or len(aux.classes) != 1:
            raise ValueError("u is required: the model was fitted with u (a label per step)")
        return np.ones((series.n_steps, 1), np.float32)
    return aux.transform(series.concatenated()[1])


def windows(x: list[np.ndarray], lags: int) -> np.ndarray:
    """Every window ``x_{t-L..t}`` (oldest first) of every series: ``(sum (T_i - L), L + 1, d)``."""
    out = [np.lib.stride_tricks.sliding_window_view(s, lags + 1, axis=0).transpose(0, 2, 1) for s in x]
    return np.ascontiguousarray(np.concatenate(out))


def window_ends(x: list[np.ndarray], lags: int) -> np.ndarray:
    """Index, among all steps of the concatenated series, of each window's last step t."""
    starts = np.cumsum([0] + [len(s) for s in x[:-1]])
    return np.concatenate([start + np.arange(lags, len(s)) for start, s in zip(starts, x)])


def lagged_aux(X: Any, u: Any = None, lags: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows and auxiliary variables for iVAE with u built from the past observations.

    Each step t >= L of each series becomes a row x_t with u_t = ``[x_{t-1}, ...,
    x_{t-L}]`` (and the one-hot label of step t, when ``u`` is given), for ``IVAE(...,
    u_type="continuous")``.

    Returns
    -------
    x_rows ``(sum (T_i - L), d)`` and aux ``(sum (T_i - L), L * d [+ n_labels])``.

    Examples
    --------
    >>> x_rows, aux = lagged_aux(np.arange(10.0).reshape(5, 2), lags=2)
    >>> x_rows.shape, aux.shape, aux[0].tolist()
    ((3, 2), (3, 4), [2.0, 3.0, 0.0, 1.0])
    """
    series = check_series(X, u, min_length=lags + 1)
    win = windows(series.x, lags)
    aux = win[:, :-1][:, ::-1].reshape(len(win), -1)
    if series.u is not None:
        _, labels = series.concatenated()
        labels = labels[window_ends(series.x, lags)]
        classes, index = np.unique(labels, return_inverse=True, axis=0 if labels.ndim > 1 else None)
        aux = np.concatenate([aux, np.eye(len(classes), dtype=aux.dtype)[index.reshape(-1)]], axis=1)
    return win[:, -1], aux


def time_windows(n_steps: int, window: int) -> np.ndarray:
    """Labels ``t // window`` of the steps of a series: u for iVAE from the time structure alone."""
    if window < 1:
        raise ValueError(f"window must be a positive number of steps, got {window}")
    return np.arange(n_steps) // window


__all__ = ["Series", "aux_encoder", "check_series", "encoded_aux", "lagged_aux", "time_windows", "window_ends", "windows"]
