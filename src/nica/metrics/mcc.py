"""Mean correlation coefficient (MCC) between true sources and estimated latents (§4)."""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from nica._validation import check_observations

METHODS = ("pearson", "spearman")


@dataclass
class MCCResult:
    """Details of an MCC computation.

    Attributes
    ----------
    score : mean absolute correlation over matched pairs.
    permutation : ``(n_sources,)``; source i is matched to latent ``permutation[i]``.
    correlations : ``(n_sources,)`` signed correlation of each matched pair.
    matrix : ``(n_sources, n_latents)`` full correlation matrix.
    """

    score: float
    permutation: np.ndarray
    correlations: np.ndarray
    matrix: np.ndarray


def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` as a finite float64 array ``(n_samples, n_dims)``; a 1-D array is one column."""
    return check_observations(a, name, min_samples=2, dtype=np.float64, allow_1d=True)


def _check_rows(s: np.ndarray, z: np.ndarray) -> None:
    if s.shape[0] != z.shape[0]:
        raise ValueError(
            f"s and z must have the same number of rows, got {s.shape[0]} and {z.shape[0]}; "
            "pass the latents of the same samples, in the same order"
        )


def _rescaled(a: np.ndarray) -> np.ndarray:
    """Each column divided by its largest magnitude: correlations do not change, and sums of
    squares of values near 1e308 (or 1e-300) can no longer overflow (or underflow)."""
    peak = np.abs(a).max(0)
    return a / np.where(peak > 0, peak, 1.0)


def correlation_matrix(s: np.ndarray, z: np.ndarray, method: str = "pearson") -> np.ndarray:
    """Correlations between the columns of s ``(N, n)`` and z ``(N, m)``: ``(n, m)``.

    A constant column correlates 0 with everything.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    s, z = _as_2d(s, "s"), _as_2d(z, "z")
    _check_rows(s, z)
    if method == "spearman":
        from scipy.stats import rankdata  # scipy.stats takes a second to import: only when needed

        s, z = rankdata(s, axis=0), rankdata(z, axis=0)
    s = _rescaled(s)
    z = _rescaled(z)
    s = s - s.mean(0)
    z = z - z.mean(0)
    norm_s, norm_z = np.linalg.norm(s, axis=0), np.linalg.norm(z, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (s.T @ z) / np.outer(norm_s, norm_z)
    # rounding can leave |c| a few ulps above 1 for exact copies; correlations live in [-1, 1]
    return np.clip(np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)


def mean_corr_coef(
    s: np.ndarray,
    z: np.ndarray,
    method: str = "pearson",
    *,
    return_details: bool = False,
) -> float | MCCResult:
    """Mean absolute correlation after the best one-to-one matching of components.

    Parameters
    ----------
    s : ``(N, n)`` true sources.
    z : ``(N, m)`` estimated latents with ``m >= n`` (extra latents stay unmatched).
    method : ``"pearson"`` or ``"spearman"`` (invariant to monotone transforms).
    return_details : return an :class:`MCCResult` with the matching instead of the score.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.random.default_rng(0).normal(size=(100, 3))
    >>> round(mean_corr_coef(s, -s[:, [2, 0, 1]]), 6)
    1.0
    """
    c = correlation_matrix(s, z, method)
    n, m = c.shape
    if m < n:
        raise ValueError(f"z has {m} components, fewer than the {n} sources in s; pass at least as many latents as sources")
    rows, cols = linear_sum_assignment(-np.abs(c))
    matched = c[rows, cols]
    score = float(np.abs(matched).mean())
    if not return_details:
        return score
    return MCCResult(score=score, permutation=cols, correlations=matched, matrix=c)


def weak_mean_corr_coef(s: np.ndarray, z: np.ndarray) -> float:
    """MCC after aligning s and z by CCA: identifiability up to a linear map.

    Equals the mean of the n largest canonical correlations between s ``(N, n)`` and z
    ``(N, m)``, ``m >= n``; when s or z is rank-deficient (e.g. a constant column) the
    missing canonical correlations count as 0, as constant columns do in the MCC.
    """
    s, z = _as_2d(s, "s"), _as_2d(z, "z")
    _check_rows(s, z)
    if z.shape[1] < s.shape[1]:
        raise ValueError(
            f"z has {z.shape[1]} components, fewer than the {s.shape[1]} sources in s; "
            "pass at least as many latents as sources"
        )
    n = s.shape[1]
    cc = canonical_correlations(s, z)[:n]
    return float(cc.sum() / n)


def canonical_correlations(a: np.ndarray, b: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Canonical correlations between the columns of a ``(N, p)`` and b ``(N, q)``, descending."""
    a = _rescaled(a)
    b = _rescaled(b)
    a = a - a.mean(0)
    b = b - b.mean(0)
    qa = _orthonormal_basis(a, eps)
    qb = _orthonormal_basis(b, eps)
    sv = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.clip(sv, 0.0, 1.0)


def _orthonormal_basis(a: np.ndarray, eps: float) -> np.ndarray:
    u, sv, _ = np.linalg.svd(a, full_matrices=False)
    return u[:, sv > eps * max(sv.max(initial=0.0), eps)]


def pairwise_mcc(latents: Sequence[np.ndarray], *, weak: bool = False) -> np.ndarray:
    """MCC between every pair of representations of the same rows: ``(K, K)``, symmetric,
    diagonal 1.

    Where there are no true sources, identifiability is judged by consistency: fits with
    different seeds of an identifiable model agree up to permutation and element-wise
    transforms (strong MCC near 1) or at least up to a linear map (``weak=True``: MCC
    after CCA alignment); an unidentifiable one need not.

    Parameters
    ----------
    latents : K arrays ``(N, n)`` (or one ``(K, N, n)`` array), the same N rows each.
    weak : CCA-aligned MCC (:func:`weak_mean_corr_coef`) instead of MCC.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 2))
    >>> pairwise_mcc([z, z[:, ::-1] * [2, -1], rng.normal(size=(500, 2))]).round(2)[0]
    array([1.  , 1.  , 0.06])
    """
    score = weak_mean_corr_coef if weak else mean_corr_coef
    k = len(latents)
    out = np.eye(k)
    for a in range(k):
        for b in range(a + 1, k):
            out[a, b] = out[b, a] = score(latents[a], latents[b])
    return out
