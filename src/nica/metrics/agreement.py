"""Agreement between fits with different seeds: identifiability judged without true sources.

Where no one knows the sources (real data), an identifiable model shows itself by
consistency: fits with different seeds give the same latents up to permutation and
element-wise transforms (strong MCC between seeds near 1), or at least up to a linear map
(weak, CCA-aligned MCC). :func:`seed_agreement` measures both over every pair of fits,
and says how well each latent component of one fit (the *anchor*: the fit that agrees
best with the others) is found again by the other fits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nica.metrics.mcc import _as_2d, mean_corr_coef, pairwise_mcc


@dataclass(frozen=True)
class SeedAgreement:
    """How far K fits of the same data agree.

    Attributes
    ----------
    mcc, mcc_std : mean and standard deviation over the K(K-1)/2 pairs of fits of the
        strong MCC between their latents (Pearson, Hungarian matching).
    weak_mcc, weak_mcc_std : the same for the weak (CCA-aligned) MCC.
    per_component : ``(n,)`` for each latent of the anchor fit, its absolute correlation
        with the latent matched to it in each other fit, averaged over those fits.
    weak_per_component : ``(n,)`` for each latent of the anchor fit, its multiple
        correlation with all latents of each other fit (agreement up to a linear map),
        averaged over those fits.
    pairwise, weak_pairwise : ``(K, K)`` the strong and weak MCC of every pair (diagonal 1).
    anchor : index of the anchor fit, the one with the highest mean strong MCC to the others.
    """

    mcc: float
    mcc_std: float
    weak_mcc: float
    weak_mcc_std: float
    per_component: np.ndarray
    weak_per_component: np.ndarray
    pairwise: np.ndarray
    weak_pairwise: np.ndarray
    anchor: int

    @property
    def n_fits(self) -> int:
        return len(self.pairwise)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python numbers and lists (JSON-ready)."""
        return {
            "mcc": self.mcc, "mcc_std": self.mcc_std, "weak_mcc": self.weak_mcc, "weak_mcc_std": self.weak_mcc_std,
            "per_component": self.per_component.tolist(), "weak_per_component": self.weak_per_component.tolist(),
            "pairwise": self.pairwise.tolist(), "weak_pairwise": self.weak_pairwise.tolist(), "anchor": self.anchor,
        }


def seed_agreement(latents: Sequence[np.ndarray]) -> SeedAgreement:
    """Strong and weak MCC between every pair of fits, and per latent component.

    Parameters
    ----------
    latents : K >= 2 arrays ``(N, n)``: the latents of the same N rows from K fits.

    Returns
    -------
    :class:`SeedAgreement`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.laplace(size=(2000, 3))
    >>> noisy = [s[:, perm] * sign + 0.05 * rng.normal(size=s.shape)
    ...          for perm, sign in (([0, 1, 2], 1), ([2, 0, 1], -1), ([1, 2, 0], 2))]
    >>> bool(seed_agreement(noisy).mcc > 0.99)
    True
    >>> noisy[2][:, 1] = rng.normal(size=2000)  # one fit loses source 2
    >>> agreement = seed_agreement(noisy)
    >>> int(np.argmin(agreement.per_component)), agreement.anchor
    (2, 0)
    """
    if len(latents) < 2:
        raise ValueError(f"agreement needs the latents of at least 2 fits, got {len(latents)}")
    zs = [_as_2d(z, f"latents[{k}]") for k, z in enumerate(latents)]
    if len({z.shape for z in zs}) != 1:
        raise ValueError(f"every fit's latents must have the same shape, got {sorted({z.shape for z in zs})}")
    strong, weak = pairwise_mcc(zs), pairwise_mcc(zs, weak=True)
    pairs = np.triu_indices(len(zs), 1)
    # the anchor: the fit most like the others (one poor fit cannot make every component look unstable)
    anchor = int(np.argmax(strong.sum(axis=1)))
    others = [k for k in range(len(zs)) if k != anchor]
    per_component = np.mean([np.abs(mean_corr_coef(zs[anchor], zs[k], return_details=True).correlations)
                             for k in others], axis=0)
    weak_per_component = np.mean([multiple_correlations(zs[anchor], zs[k]) for k in others], axis=0)
    return SeedAgreement(
        mcc=float(strong[pairs].mean()), mcc_std=float(strong[pairs].std()),
        weak_mcc=float(weak[pairs].mean()), weak_mcc_std=float(weak[pairs].std()),
        per_component=per_component, weak_per_component=weak_per_component,
        pairwise=strong, weak_pairwise=weak, anchor=anchor,
    )


@functools.lru_cache(maxsize=64)
def chance_agreement(n: int, *, draws: int = 2000, random_state: int = 0) -> float:
    """The strong MCC expected between two fits whose latents are the same white Gaussian
    vector in two unrelated bases: the mean, over uniformly random ``(n, n)`` rotations Q,
    of the Hungarian-matched mean of |Q| (the correlations of Qz with z).

    It is the agreement of fits that pin their latents down only up to a rotation (a
    Gaussian model: nothing identifiable), each shown its own rotation of the data; it
    falls with n (0.90 for n = 2, 0.73 for n = 5, 0.56 for n = 12).

    >>> round(chance_agreement(5), 2)
    0.73
    """
    from scipy.optimize import linear_sum_assignment

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(random_state)
    draws = max(20, min(draws, 5_000 // n))  # fewer draws for large n: a draw varies less there
    total = 0.0
    for _ in range(draws):
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        a = np.abs(q)
        rows, cols = linear_sum_assignment(-a)
        total += a[rows, cols].mean()
    return float(total / draws)


def align_to(anchor: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z ``(N, n)`` with its columns reordered and sign-flipped to match those of
    ``anchor`` ``(N, n)`` (the MCC's matching)."""
    match = mean_corr_coef(anchor, z, return_details=True)
    return np.asarray(z)[:, match.permutation] * np.where(match.correlations < 0, -1.0, 1.0)


def multiple_correlations(z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """For each column of z ``(N, n)``, its multiple correlation with the columns of
    ``basis`` ``(N, m)`` (the correlation of the column with its least-squares fit from
    them): ``(n,)`` in [0, 1]. A constant column scores 0."""
    z, basis = _as_2d(z, "z"), _as_2d(basis, "basis")
    zc, bc = z - z.mean(0), basis - basis.mean(0)
    u, sv, _ = np.linalg.svd(bc, full_matrices=False)
    q = u[:, sv > 1e-10 * max(sv.max(initial=0.0), 1e-300)]
    explained = np.linalg.norm(q.T @ zc, axis=0)
    total = np.linalg.norm(zc, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(total > 0, explained / total, 0.0)
    return np.clip(np.nan_to_num(r), 0.0, 1.0)


__all__ = ["SeedAgreement", "align_to", "chance_agreement", "multiple_correlations", "seed_agreement"]
