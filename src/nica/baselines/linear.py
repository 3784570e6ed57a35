"""Linear floors: FastICA and PCA with the estimators' ``fit(X, u)`` interface.

A nonlinear method that does not beat linear ICA on nonlinearly mixed data has learned
nothing the mixing's linear part did not already give away; these two set that floor.
``u`` is accepted everywhere and ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nica.base.params import (
    ParamsMixin,
    check_fitted,
    check_n_components,
    check_new_observations,
    check_positive_int,
)
from nica._random import draw_seed
from nica._validation import check_observations

ICA_CONTRASTS = ("logcosh", "exp", "cube")


class _LinearBaseline(ParamsMixin):
    """fit / transform / inverse_transform over a fitted scikit-learn decomposition ``model_``."""

    def _make(self, n_components: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: Any, u: Any = None) -> _LinearBaseline:
        """Fit on X ``(n_samples, n_features)``; ``u`` is ignored."""
        x = check_observations(X, "X").astype(np.float64)
        n = check_n_components(self.n_components, x.shape[1], allow_none=True)
        model = self._make(n).fit(x)
        self.model_ = model
        self.n_components_ = n
        self.n_features_in_ = x.shape[1]
        self.components_ = model.components_
        self.mean_ = model.mean_
        return self

    def transform(self, X: Any, u: Any = None) -> np.ndarray:
        """Estimated sources ``(n_rows, n_components_)``; ``u`` is ignored."""
        check_fitted(self, "model_")
        x = check_new_observations(X, self.n_features_in_).astype(np.float64)
        return self.model_.transform(x).astype(np.float32)

    def fit_transform(self, X: Any, u: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X, u).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Back to the units of X: ``(n_rows, n_features)``."""
        check_fitted(self, "model_")
        z = check_new_observations(Z, self.n_components_, "Z").astype(np.float64)
        return self.model_.inverse_transform(z).astype(np.float32)


class LinearICA(_LinearBaseline):
    """Linear ICA by FastICA (Hyvärinen 1999), the floor for nonlinear ICA methods.

    Parameters
    ----------
    n_components : number of sources (``None``: as many as features).
    fun : FastICA contrast, ``"logcosh"``, ``"exp"`` or ``"cube"``.
    max_iter, tol : FastICA's iteration budget and convergence tolerance.
    random_state : int, ``numpy.random.Generator`` or None; seeds FastICA's initial
        unmixing matrix, resolved once per fit.

    Attributes
    ----------
    model_ : the fitted :class:`sklearn.decomposition.FastICA`.
    components_ : unmixing matrix ``(n_components_, n_features)``.
    mean_ : ``(n_features,)``; n_components_, n_features_in_ : as named.

    Examples
    --------
    >>> import numpy as np
    >>> from nica.baselines import LinearICA
    >>> s = np.random.default_rng(0).laplace(size=(500, 2))
    >>> x = s @ np.array([[1.0, 0.5], [0.3, 1.0]])
    >>> LinearICA(random_state=0).fit(x).transform(x).shape
    (500, 2)
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        fun: str = "logcosh",
        max_iter: int = 1000,
        tol: float = 1e-4,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_components = n_components
        self.fun = fun
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _make(self, n_components: int) -> Any:
        from sklearn.decomposition import FastICA  # imported on use: sklearn is slow to import

        if self.fun not in ICA_CONTRASTS:
            raise ValueError(f"fun must be one of {ICA_CONTRASTS}, got {self.fun!r}")
        return FastICA(
            n_components, whiten="unit-variance", fun=self.fun,
            max_iter=check_positive_int(self.max_iter, "max_iter"), tol=self.tol,
            random_state=draw_seed(self.random_state),
        )

    def fit(self, X: Any, u: Any = None) -> LinearICA:
        """Fit on X ``(n_samples, n_features)``; ``u`` is ignored."""
        super().fit(X, u)
        self.mixing_ = self.model_.mixing_
        self.n_iter_ = self.model_.n_iter_
        return self


class PCA(_LinearBaseline):
    """Principal components, the weakest floor (decorrelation only).

    Parameters
    ----------
    n_components : number of components (``None``: as many as features).
    whiten : scale the components to unit variance.

    Attributes
    ----------
    model_ : the fitted :class:`sklearn.decomposition.PCA`.
    components_ : ``(n_components_, n_features)``; explained_variance_ : ``(n_components_,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from nica.baselines import PCA
    >>> x = np.random.default_rng(0).normal(size=(100, 3))
    >>> PCA(2).fit(x).transform(x).shape
    (100, 2)
    """

    def __init__(self, n_components: int | None = None, *, whiten: bool = False) -> None:
        self.n_components = n_components
        self.whiten = whiten

    def _make(self, n_components: int) -> Any:
        from sklearn.decomposition import PCA as SklearnPCA

        # the exact solver: no randomness, so no random_state
        return SklearnPCA(n_components, whiten=bool(self.whiten), svd_solver="full")

    def fit(self, X: Any, u: Any = None) -> PCA:
        """Fit on X ``(n_samples, n_features)``; ``u`` is ignored."""
        super().fit(X, u)
        self.explained_variance_ = self.model_.explained_variance_
        return self


__all__ = ["LinearICA", "PCA"]
