"""A subspace for the flow's input chosen by nonlinear deflation (n < d).

The top-n principal components keep the directions of largest variance. When the
features are nonlinear functions of the latents (a cubic and a tanh of one latent, say),
several of those directions can be harmonics of one strongly expressed latent, and a
weakly expressed latent is left out of the subspace: no model on top can recover it.
Nonlinear deflation picks directions one at a time, each the direction of largest
variance of what a polynomial of the directions already chosen does *not* explain:

    w_1 = top principal direction of y
    w_{k+1} = top principal direction of  y - P_k(y)

with y ``(N, d)`` the centred (scaled) features and P_k the least-squares fit of every
feature on the monomials (degree ``degree``) of the standardised y w_1, ..., y w_k. A
harmonic of a latent already in the subspace is explained by the polynomial and is not
picked again; a new latent is not. The span of w_1..w_n is the subspace; within it the
projection is still the principal axes scaled to unit variance
(:class:`nica.flows.projection.InputProjection`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

#: rows (evenly spaced over X) on which the directions are chosen
DEFLATION_ROWS = 20_000
#: degree of the polynomial of the chosen directions that is taken out of the features
DEFLATION_DEGREE = 3
#: at most this many monomials: with many chosen directions the degree is lowered to keep
#: the regression small (degree 1 makes the next direction the next principal one)
MAX_MONOMIALS = 1_000


def monomials(c: np.ndarray, degree: int) -> np.ndarray:
    """The constant and every monomial of the columns of ``c`` ``(N, k)`` up to ``degree``:
    ``(N, C(k + degree, degree))``."""
    columns = [np.ones(len(c))]
    for order in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(c.shape[1]), order):
            columns.append(np.prod(c[:, combo], axis=1))
    return np.stack(columns, axis=1)


def _top_direction(y: np.ndarray) -> np.ndarray:
    """The unit direction ``(d,)`` of largest second moment of the rows y ``(N, d)``: the
    top eigenvector of y^T y, or for a wide table (N < d) the thin SVD's, never a d x d
    matrix."""
    if len(y) < y.shape[1]:
        return np.linalg.svd(y, full_matrices=False)[2][0]
    return np.linalg.eigh(y.T @ y)[1][:, -1]


def deflation_basis(centred: np.ndarray, n_components: int, degree: int = DEFLATION_DEGREE,
                    rows: int = DEFLATION_ROWS) -> np.ndarray:
    """An orthonormal basis ``(d, n_components)`` of the subspace chosen by nonlinear
    deflation of the centred features ``centred`` ``(N, d)`` (module docstring), on at
    most ``rows`` evenly spaced rows (deterministic)."""
    n_rows, d = centred.shape
    if not 1 <= n_components <= d:
        raise ValueError(f"n_components must be in 1..{d}, got {n_components}")
    y = np.asarray(centred[:: max(1, n_rows // rows)], dtype=np.float64)
    chosen = _top_direction(y)[:, None]
    while chosen.shape[1] < n_components:
        c = y @ chosen
        basis = monomials(c / np.where(c.std(0) > 0, c.std(0), 1.0), _affordable_degree(c.shape[1], degree))
        residual = y - basis @ np.linalg.lstsq(basis, y, rcond=None)[0]
        # the residual is already null along the chosen directions (the polynomial holds
        # their linear terms); projecting them out keeps the basis orthonormal even when
        # the residual vanishes
        residual = residual - (residual @ chosen) @ chosen.T
        chosen = np.concatenate([chosen, _orthogonal_unit(_top_direction(residual), chosen)[:, None]], axis=1)
    return chosen


def _affordable_degree(k: int, degree: int) -> int:
    """The highest degree <= ``degree`` whose monomials of k variables number at most
    :data:`MAX_MONOMIALS` (at least 1)."""
    while degree > 1 and math.comb(k + degree, degree) > MAX_MONOMIALS:
        degree -= 1
    return degree


def _orthogonal_unit(v: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``v`` ``(d,)`` made orthogonal to the orthonormal ``basis`` ``(d, k)`` and of unit
    length; when nothing of it is left, a unit vector of the complement of the basis."""
    v = v - basis @ (basis.T @ v)
    norm = float(np.linalg.norm(v))
    if norm > 1e-8:
        return v / norm
    complement = np.linalg.qr(np.concatenate([basis, np.eye(len(v))], axis=1))[0]
    return complement[:, basis.shape[1]]


__all__ = ["DEFLATION_DEGREE", "DEFLATION_ROWS", "MAX_MONOMIALS", "deflation_basis", "monomials"]
