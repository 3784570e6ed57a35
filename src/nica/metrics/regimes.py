"""Regime accuracy: how well regimes read off learned latents match the true ones.

The latents are clustered (a Gaussian mixture or k-means on the standardised latents,
as many clusters as true regimes), each cluster is matched to one regime by the
Hungarian algorithm on the confusion matrix, and the accuracy is the fraction of steps
whose matched cluster is their true regime. Cluster labels are arbitrary, so matching
them is part of the metric, as the permutation is part of MCC.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from nica._validation import check_observations

CLUSTERING = ("gmm", "kmeans")


def matched_accuracy(true: np.ndarray, predicted: np.ndarray) -> float:
    """Accuracy of ``predicted`` labels against ``true`` ones ``(N,)`` after the best
    one-to-one matching of predicted labels to true labels (unmatched labels count as errors)."""
    true, predicted = np.asarray(true).ravel(), np.asarray(predicted).ravel()
    if len(true) != len(predicted):
        raise ValueError(f"true has {len(true)} labels but predicted has {len(predicted)}")
    if len(true) == 0:
        raise ValueError("no labels to compare")
    t_classes, t_index = np.unique(true, return_inverse=True)
    p_classes, p_index = np.unique(predicted, return_inverse=True)
    confusion = np.zeros((len(t_classes), len(p_classes)), dtype=np.int64)
    np.add.at(confusion, (t_index, p_index), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return float(confusion[rows, cols].sum() / len(true))


def regime_accuracy(regimes: np.ndarray, z: np.ndarray, n_regimes: int | None = None, *,
                    clustering: str = "gmm", random_state: int = 0) -> float:
    """Regimes read off latents ``z`` ``(N, n)`` by clustering, against the true ``regimes`` ``(N,)``.

    Parameters
    ----------
    regimes : the true regime of each row.
    z : latents (or any features) of the same rows.
    n_regimes : number of clusters; default the number of distinct true regimes.
    clustering : ``"gmm"`` (full-covariance Gaussian mixture, 3 initialisations) or
        ``"kmeans"`` (10 initialisations), on z standardised per column.
    random_state : seed of the clustering.

    Returns
    -------
    The matched accuracy in [0, 1] (:func:`matched_accuracy`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> regimes = np.repeat([0, 1], 100)
    >>> z = rng.normal(size=(200, 2)) + 6 * regimes[:, None]
    >>> regime_accuracy(regimes, z)
    1.0
    """
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    regimes = np.asarray(regimes).ravel()
    features = check_observations(z, "z", dtype=np.float64, allow_1d=True)
    if len(features) != len(regimes):
        raise ValueError(f"z has {len(features)} rows but regimes has {len(regimes)}; they must match row for row")
    if clustering not in CLUSTERING:
        raise ValueError(f"clustering must be one of {CLUSTERING}, got {clustering!r}")
    k = len(np.unique(regimes)) if n_regimes is None else int(n_regimes)
    if not 1 <= k <= len(features):
        raise ValueError(f"n_regimes must be between 1 and the number of rows, got {n_regimes!r}")
    std = features.std(0)
    features = (features - features.mean(0)) / np.where(std > 0, std, 1.0)
    if clustering == "gmm":
        labels = GaussianMixture(k, covariance_type="full", n_init=3, random_state=random_state).fit_predict(features)
    else:
        labels = KMeans(k, n_init=10, random_state=random_state).fit_predict(features)
    return matched_accuracy(regimes, labels)


__all__ = ["CLUSTERING", "matched_accuracy", "regime_accuracy"]
