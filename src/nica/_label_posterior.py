"""New data without u: which label u a new observation belongs to, from a fitted model's own
likelihood, and what an iVAE encoder is given when u is unknown.

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
import torch
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


@torch.no_grad()
def ivae_label_log_likelihood(module: Any, x: torch.Tensor, n_labels: int, *, n_samples: int = 10,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """ELBO(x, u = k) of an iVAE module (a single model) for every one-hot label k, up to a
    term constant in k: ``(batch, n_labels)``; x ``(batch, x_dim)`` standardised.

    With an encoder q(z | x) that does not see u, the reconstruction term is the same for
    every label and is left out: what remains is -KL(q(z | x) || p(z | u = k)), exact.
    With an encoder q(z | x, u) the reconstruction term averages ``n_samples`` draws, the
    same noise for every label (common random numbers).
    """
    sees_u = module.config.conditional and module.config.encoder_sees_u
    eye = torch.eye(n_labels, device=x.device, dtype=x.dtype)
    if not sees_u:
        mean, logvar = module.inference(x, x.new_zeros((len(x), 0)))
    else:
        eps = torch.randn((n_samples, 1, len(x), module.config.n_latent), generator=generator,
                          device=x.device, dtype=x.dtype)
    scores = []
    for k in range(n_labels):
        u_k = eye[k].expand(len(x), n_labels)
        reconstruction = 0.0
        if sees_u:
            mean, logvar = module.inference(x, u_k)
            z = mean + torch.exp(0.5 * logvar) * eps  # (n_samples, 1, batch, n)
            reconstruction = torch.stack([module.decoder.log_prob(x, zs) for zs in z]).mean(0)
        kl = module.prior.kl_from_gaussian(mean, logvar, module.prior_params(u_k))
        scores.append((reconstruction - kl)[0])
    return torch.stack(scores, dim=-1)


def chunked_label_log_likelihood(module: Any, chunks: Any, n_labels: int, device: torch.device) -> np.ndarray:
    """:func:`ivae_label_log_likelihood` over blocks of rows (``chunks`` yields ``[x_block]``),
    with one seeded generator: ``(n_rows, n_labels)`` float64."""
    generator = torch.Generator(device=device).manual_seed(0)
    out = [ivae_label_log_likelihood(module, xb, n_labels, generator=generator).cpu() for (xb,) in chunks]
    return torch.cat(out).double().numpy()


def encoder_input_without_u(config: Any, n_samples: int) -> torch.Tensor:
    """What an iVAE encoder (of :class:`nica.models.IVAEConfig` ``config``) is given when u is
    unknown: ``(n_samples, 0)``, or an error naming the option for an encoder q(z | x, u)."""
    if config.conditional and config.encoder_sees_u:
        raise ValueError(
            "u is required: this model's encoder q(z | x, u) sees u (encoder_sees_u=True, "
            "CLI --encoder-sees-u or --preset authors). Pass u, or refit with "
            "encoder_sees_u=False (CLI --encoder-ignores-u) for latents of new data without u; "
            "predict_u(X) tells which fitted label each row most likely has"
        )
    return torch.zeros((n_samples, 0))


def _mixed(classes: list) -> bool:
    """Labels of several Python types (kept as objects rather than coerced to strings)."""
    return len({type(c) for c in classes}) > 1


__all__ = ["LABEL_PRIORS", "LabelPosteriorMixin", "chunked_label_log_likelihood", "encoder_input_without_u",
           "ivae_label_log_likelihood", "label_log_prior"]
