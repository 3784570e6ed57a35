"""New data without u: which label u a new observation belongs to, from a fitted model's own
likelihood.

For a model with a categorical auxiliary variable, Bayes' rule over the fitted labels gives

    p(u = k | x) = p(x | u = k) p(u = k) / sum_j p(x | u = j) p(u = j),

with p(x | u = k) the model's likelihood (exact for the identifiable flow, the ELBO for
the iVAE) and p(u = k) the label frequencies of the fit data (or a prior the caller
gives). :class:`LabelPosteriorMixin` turns an estimator's per-label log-likelihood into
``predict_log_proba_u`` / ``predict_proba_u`` / ``predict_u``; the estimator implements
``_label_log_likelihood(X)`` (any term constant in k may be left out: it cancels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

#: what ``label_prior`` accepts besides an array of probabilities
LABEL_PRIORS = ("fitted", "uniform")


def label_log_prior(counts: list[int], n_labels: int, label_prior: Any = "fitted") -> np.ndarray:
    """log p(u = k) ``(n_labels,)``: the fit-time label frequencies (``"fitted"``; uniform
    when the counts were not recorded), ``"uniform"``, or the given probabilities."""
    if isinstance(label_prior, str):
        if label_prior not in LABEL_PRIORS:
            raise ValueError(f"label_prior must be one of {LABEL_PRIORS} or an array of probabilities, "
                             f"got {label_prior!r}")
        if label_prior == "fitted" and len(counts) == n_labels:
            freq = np.asarray(counts, dtype=float)
            return np.log(freq / freq.sum())
        return np.full(n_labels, -np.log(n_labels))
    prior = np.asarray(label_prior, dtype=float)
    if prior.shape != (n_labels,) or not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() <= 0:
        raise ValueError(f"label_prior must hold {n_labels} non-negative numbers (one per fitted label, "
                         f"in the order of u_classes_), got {np.asarray(label_prior).tolist()!r}")
    with np.errstate(divide="ignore"):  # a label given probability 0 is never predicted
        return np.log(prior / prior.sum())


class LabelPosteriorMixin:
    """``predict_u`` / ``predict_proba_u`` / ``predict_log_proba_u`` for an estimator with a
    fitted categorical ``aux_encoder_`` and a ``_label_log_likelihood(X)`` ``(N, n_labels)``."""

    def _label_log_likelihood(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_categorical_u(self) -> None:
        """Raise unless the fitted u is categorical (the estimator checks it is fitted first)."""
        kind = self.aux_encoder_.kind
        if kind == "none":
            raise ValueError(f"this {type(self).__name__} was fitted without u (its prior does not "
                             "depend on u), so it cannot tell which label a point belongs to")
        if kind != "categorical":
            raise ValueError(f"predict_u needs a model fitted with categorical u (labels); this "
                             f"{type(self).__name__} was fitted with {kind} u")

    @property
    def u_classes_(self) -> list:
        """The fitted labels of u, in the column order of :meth:`predict_proba_u`."""
        self._check_categorical_u()
        return list(self.aux_encoder_.classes)

    def predict_log_proba_u(self, X: Any, *, label_prior: Any = "fitted") -> np.ndarray:
        """log p(u = k | x) for every fitted label k: ``(n_rows, n_labels)``.

        Parameters
        ----------
        X : ``(n_rows, n_features)`` new observations; u is not needed.
        label_prior : p(u): ``"fitted"`` (the label frequencies of the fit data),
            ``"uniform"``, or ``(n_labels,)`` probabilities in the order of ``u_classes_``.
        """
        log_lik = self._label_log_likelihood(X)
        self._check_categorical_u()
        joint = log_lik + label_log_prior(self.aux_encoder_.counts, log_lik.shape[1], label_prior)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict_proba_u(self, X: Any, *, label_prior: Any = "fitted") -> np.ndarray:
        """p(u = k | x) for every fitted label k: ``(n_rows, n_labels)``, rows sum to 1
        (columns in the order of ``u_classes_``); see :meth:`predict_log_proba_u`."""
        return np.exp(self.predict_log_proba_u(X, label_prior=label_prior))

    def predict_u(self, X: Any, *, label_prior: Any = "fitted") -> np.ndarray:
        """The most probable fitted label of each row: ``(n_rows,)``, labels as given at fit
        time (one-hot u gives column indices); see :meth:`predict_log_proba_u`."""
        best = self.predict_log_proba_u(X, label_prior=label_prior).argmax(axis=1)
        return np.asarray(self.u_classes_, dtype=object)[best] if _mixed(self.u_classes_) \
            else np.asarray(self.u_classes_)[best]


def _mixed(classes: list) -> bool:
    """Labels of several Python types (kept as objects rather than coerced to strings)."""
    return len({type(c) for c in classes}) > 1


__all__ = ["LABEL_PRIORS", "LabelPosteriorMixin", "label_log_prior"]
