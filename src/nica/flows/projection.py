"""The linear map from observations to the flow's input, and the density of what it leaves out.

With as many latents as features (n = d) the flow sees X standardised per feature. With
fewer (n < d) it sees the top-n principal components of X, each scaled to unit variance,
and the rest of x, its part orthogonal to that principal subspace, is modelled as
isotropic Gaussian noise (as probabilistic PCA does), so that the model is still a
density on R^d:

    log p(x | u) = log p_flow(y | u) - sum_i log scale_i + log N(r; 0, sigma^2 I_{d-n}),
    y = V^T (x - mean) / scale,   r = the coordinates of x - mean off the subspace,

with V ``(d, n)`` the principal directions and sigma^2 the mean variance of the discarded
directions. That likelihood is on the same scale as a flow on all d features and as the
ELBO of an iVAE of the same data. The benchmark's mixings (a random MLP of n sources
into d > n features) are injective and smooth, so their top principal subspace keeps the
sources recoverable; docs/tuning.md has what this gave against the iVAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from nica.datasets.streaming import ColumnStats, RowSource
from nica.flows.deflation import deflation_basis

#: the residual variance is floored at this fraction of the total variance
MIN_NOISE_FRACTION = 1e-9
#: ``feature_scaling`` of :meth:`InputProjection.fit` (n < d): each feature is divided by
#: sd**power before the principal components are taken
FEATURE_SCALINGS = {"none": 0.0, "sqrt-std": 0.5, "std": 1.0}
#: ``subspace`` of :meth:`InputProjection.fit` (n < d): the top-n principal subspace, or the
#: one chosen by nonlinear deflation (:mod:`nica.flows.deflation`)
SUBSPACES = ("principal", "deflation")


@dataclass
class InputProjection:
    """``y = (((x - mean) / feature_weights) @ components) / scale``; ``components`` None
    means the identity.

    Attributes
    ----------
    mean : ``(d,)``; scale : ``(n,)``; components : ``(d, n)`` orthonormal columns or None;
    noise_variance : sigma^2 of the discarded directions (0 when n = d);
    feature_weights : ``(d,)`` each feature is divided by its weight before the projection
        (``feature_scaling`` of :meth:`fit`), or None (all ones).
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray | None = None
    noise_variance: float = 0.0
    feature_weights: np.ndarray | None = None

    @classmethod
    def fit(cls, x: np.ndarray, n_components: int, standardize: bool = True,
            feature_scaling: str = "none", subspace: str = "principal") -> InputProjection:
        """Per-feature standardisation (n = d; identity when not ``standardize``) or the
        top-n principal components scaled to unit variance (n < d; centred only when not
        ``standardize``), from ``x`` ``(N, d)``. ``feature_scaling`` (n < d only): the
        features are divided by sd**p first, p = 0 (``"none"``), 1/2 (``"sqrt-std"``) or
        1 (``"std"``: the components of the correlation matrix). ``subspace`` (n < d
        only): ``"principal"``, or ``"deflation"``: the subspace chosen by nonlinear
        deflation (:func:`nica.flows.deflation.deflation_basis`), within which the
        components are still its principal axes scaled to unit variance."""
        if feature_scaling not in FEATURE_SCALINGS:
            raise ValueError(f"feature_scaling must be one of {sorted(FEATURE_SCALINGS)}, got {feature_scaling!r}")
        if subspace not in SUBSPACES:
            raise ValueError(f"subspace must be one of {list(SUBSPACES)}, got {subspace!r}")
        d = x.shape[1]
        mean = x.mean(0, dtype=np.float64)
        if n_components == d:
            return cls._standardisation(mean, x.std(0, dtype=np.float64), standardize)
        weights = None
        if FEATURE_SCALINGS[feature_scaling] > 0:
            std = x.std(0, dtype=np.float64)
            weights = np.where(std > 0, std, 1.0) ** FEATURE_SCALINGS[feature_scaling]
        centred = x - mean if weights is None else (x - mean) / weights
        if n_components >= len(x) and len(x) < d:
            raise ValueError(f"X has {len(x)} rows for {d} features: too few to find {n_components} "
                             "principal components (fewer than the rows)")
        if subspace == "deflation":
            return cls._deflation(mean, centred, n_components, standardize, weights)
        if len(x) >= d:  # the d x d covariance's eigenvectors
            return cls.from_covariance(mean, centred.T @ centred / len(x), n_components, standardize, weights)
        # more features than rows (a wide table): the thin SVD, never a d x d matrix
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        eigenvalues = np.concatenate([singular**2 / len(x), np.zeros(d - len(singular))])
        return cls._principal(mean, eigenvalues, vt.T, n_components, standardize, weights)

    @classmethod
    def from_stats(cls, stats: ColumnStats, n_components: int, standardize: bool = True) -> InputProjection:
        """The same as :meth:`fit`, from the moments of one streamed pass over an
        out-of-core X (:func:`nica.datasets.streaming.column_stats`; with
        ``covariance=True`` when n < d)."""
        if n_components == len(stats.mean):
            return cls._standardisation(stats.mean, stats.std, standardize)
        if stats.cov is None:
            raise ValueError("principal components need the covariance: column_stats(..., covariance=True)")
        return cls.from_covariance(stats.mean, stats.cov, n_components, standardize)

    @classmethod
    def _standardisation(cls, mean: np.ndarray, std: np.ndarray, standardize: bool) -> InputProjection:
        if not standardize:
            return cls(np.zeros(len(mean)), np.ones(len(mean)))
        return cls(np.asarray(mean, float), np.where(std > 0, std, 1.0))

    @classmethod
    def from_covariance(cls, mean: np.ndarray, cov: np.ndarray, n_components: int,
                        standardize: bool = True, feature_weights: np.ndarray | None = None) -> InputProjection:
        """The top-n principal subspace of covariance ``cov`` ``(d, d)`` about ``mean`` ``(d,)``
        (the covariance of the features divided by ``feature_weights`` ``(d,)`` when given)."""
        eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
        order = np.argsort(eigenvalues)[::-1]
        return cls._principal(mean, np.clip(eigenvalues[order], 0.0, None), eigenvectors[:, order], n_components,
                              standardize, feature_weights)

    @classmethod
    def _deflation(cls, mean: np.ndarray, centred: np.ndarray, n_components: int, standardize: bool,
                   feature_weights: np.ndarray | None) -> InputProjection:
        """The principal axes, scaled, of the subspace that nonlinear deflation of the
        centred (weighted) features ``(N, d)`` chooses; the variance off it is the noise."""
        basis = deflation_basis(centred, n_components)
        inside = centred @ basis
        eigenvalues, rotation = np.linalg.eigh(inside.T @ inside / len(centred))
        order = np.argsort(eigenvalues)[::-1]
        kept = np.clip(eigenvalues[order], 0.0, None)
        d = centred.shape[1]
        left = max(float(np.einsum("ij,ij->", centred, centred)) / len(centred) - float(kept.sum()), 0.0)
        spectrum = np.concatenate([kept, np.full(d - n_components, left / (d - n_components))])
        return cls._principal(mean, spectrum, basis @ rotation[:, order], n_components, standardize,
                              feature_weights)

    @classmethod
    def _principal(cls, mean: np.ndarray, eigenvalues: np.ndarray, eigenvectors: np.ndarray, n_components: int,
                   standardize: bool, feature_weights: np.ndarray | None = None) -> InputProjection:
        """The top-n principal subspace from the covariance's eigenvalues ``(d,)`` (descending)
        and their eigenvectors ``(d, >= n)``; the rest of the variance is isotropic noise."""
        d = len(eigenvalues)
        kept = eigenvalues[:n_components]
        floor = MIN_NOISE_FRACTION * max(float(eigenvalues.sum()), 1e-300)
        noise = max(float(eigenvalues[n_components:].sum() / (d - n_components)), floor)
        scale = np.sqrt(np.maximum(kept, floor)) if standardize else np.ones(n_components)
        return cls(np.asarray(mean, float), scale, eigenvectors[:, :n_components], noise, feature_weights)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "components": None if self.components is None else self.components.tolist(),
                "noise_variance": self.noise_variance,
                "feature_weights": None if self.feature_weights is None else self.feature_weights.tolist()}

    @classmethod
    def from_dict(cls, record: dict) -> InputProjection:
        components = record["components"]
        projection = cls(np.asarray(record["mean"], float), np.asarray(record["scale"], float),
                         None if components is None else np.asarray(components, float),
                         float(record["noise_variance"]),
                         None if record.get("feature_weights") is None
                         else np.asarray(record["feature_weights"], float))
        projection.check()
        return projection

    def check(self) -> None:
        """Raise ValueError when the arrays do not fit together (a corrupt saved model)."""
        d = len(self.mean)
        n = d if self.components is None else self.components.shape[1]
        if self.scale.shape != (n,) or (self.components is not None and self.components.shape != (d, n)):
            raise ValueError(f"projection arrays do not fit: mean {self.mean.shape}, scale {self.scale.shape}")
        if not (np.all(np.isfinite(self.mean)) and np.all(self.scale > 0) and self.noise_variance >= 0):
            raise ValueError("projection: mean must be finite, scale > 0 and noise_variance >= 0")
        w = self.feature_weights
        if w is not None and (w.shape != (d,) or not np.all(np.isfinite(w)) or not np.all(w > 0)):
            raise ValueError(f"projection: feature_weights must be {d} finite numbers > 0")

    @property
    def n_features(self) -> int:
        return len(self.mean)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The flow's input ``(N, n)`` (float32) for observations ``(N, d)``."""
        centred = self._centred(x)
        y = centred if self.components is None else centred @ self.components
        return (y / self.scale).astype(np.float32)

    def _centred(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / feature_weights`` ``(N, d)``."""
        centred = x - self.mean
        return centred if self.feature_weights is None else centred / self.feature_weights

    def reconstruct(self, y: np.ndarray) -> np.ndarray:
        """Observations ``(N, d)`` for flow inputs ``(N, n)`` (on the principal subspace)."""
        y = np.asarray(y, dtype=np.float64) * self.scale
        y = y if self.components is None else y @ self.components.T
        return (y if self.feature_weights is None else y * self.feature_weights) + self.mean

    def log_jacobian(self) -> float:
        """sum_i log scale_i (+ sum_j log feature_weights_j): subtracted from the flow's
        log-density of y."""
        weights = 0.0 if self.feature_weights is None else float(np.log(self.feature_weights).sum())
        return float(np.log(self.scale).sum()) + weights

    def residual_log_density(self, x: np.ndarray) -> np.ndarray:
        """log N(r; 0, sigma^2 I) of each row's part off the subspace ``(N,)``; zeros when n = d."""
        if self.components is None:
            return np.zeros(len(x))
        centred = self._centred(np.asarray(x, dtype=np.float64))
        residual = centred - (centred @ self.components) @ self.components.T
        k = self.n_features - self.components.shape[1]
        sq = np.einsum("ij,ij->i", residual, residual)
        return -0.5 * k * math.log(2 * math.pi * self.noise_variance) - 0.5 * sq / self.noise_variance

    def mean_residual_log_density(self, x: np.ndarray) -> float:
        """The mean of :meth:`residual_log_density` over the rows of ``x``."""
        return float(self.residual_log_density(x).mean()) if self.components is not None else 0.0


class ProjectedRows(RowSource):
    """Rows of an out-of-core X ``(N, d)`` as the flow's input ``(N, n)``: each mini-batch
    (or chunk) is read from disk and mapped by ``projection`` (:meth:`InputProjection.apply`)."""

    def __init__(self, array: object, projection: InputProjection, device: torch.device | str) -> None:
        super().__init__(array, projection.mean, np.ones(projection.n_features), device)
        self.projection = projection
        self.shape = (self.shape[0], len(projection.scale))

    def standardise(self, block: np.ndarray) -> np.ndarray:
        return self.projection.apply(np.asarray(block))


__all__ = ["FEATURE_SCALINGS", "InputProjection", "MIN_NOISE_FRACTION", "ProjectedRows", "SUBSPACES"]
