"""Which model ``nica fit`` uses: chosen from the data, or named.

``model="auto"`` (the default of :func:`fit_model` and of ``nica fit``) chooses by this
rule (:func:`choose_model`):

- real-valued X in memory: the identifiable flow :class:`nica.IFlow`, on X itself when
  the latent dimension equals the number of features and on its top principal
  components when it is smaller. On every benchmark shape we measured (5 -> 5, 10 -> 10,
  5 -> 20, noisy 5 -> 20, Laplace, uncentered) it recovered the sources better than the
  iVAE, and in less time (docs/tuning.md, "the model nica fit picks");
- binary X (0/1 only): :class:`nica.IVAE` with a Bernoulli decoder (a flow has no
  density on a discrete set);
- X read from disk batch by batch (out of core): :class:`nica.IVAE`, which streams.

Both models are fitted by maximum likelihood (the flow exactly, the iVAE on the ELBO, a
lower bound of the same log p(x | u)), and both ``score`` methods return that quantity per
sample in the units of X, so they can be compared on held-out data
(:func:`compare_models`).

Every estimator registered with a model name (:mod:`nica.base.registry`: ``"ivae"``,
``"vae"``, ``"beta-vae"``, ``"beta-tcvae"``, ``"flow"``, ``"temporal"``, ``"switching"``,
``"latent-causal"``, ``"tcl"``, and any of your own) is ``model=NAME`` here, ``nica fit
--model NAME`` and ``nica sweep``'s ``model.estimator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nica.base.params import check_n_components
from nica._validation import check_observations
from nica.datasets.streaming import is_out_of_core
from nica.datasets.tabular import split_aux
from nica.base.registry import ModelTable, register_model

#: name -> estimator class, for ``fit_model(model=NAME)``, ``nica fit --model NAME`` and
#: ``nica sweep``: a live view of the estimators registered with a model name
#: (:func:`nica.base.registry.register_estimator`, or :func:`register_model`)
MODELS = ModelTable()


@dataclass(frozen=True)
class ModelChoice:
    """What ``model="auto"`` chose: the model's name, the parameters the data call for,
    and the reason in words."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def choose_model(X: Any, n_components: int) -> ModelChoice:
    """The model ``"auto"`` stands for, for observations ``X`` ``(n_samples, n_features)``
    (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> choose_model(np.random.default_rng(0).normal(size=(100, 5)), 3).name
    'flow'
    >>> choose_model(np.random.default_rng(0).integers(0, 2, size=(100, 5)), 3).params
    {'decoder': 'bernoulli'}
    """
    n_features = _n_features(X)
    n = check_n_components(n_components, n_features)
    if is_out_of_core(X):
        return ModelChoice("ivae", {}, "X is read from disk batch by batch, which the iVAE supports")
    x = check_observations(X, "X")
    if np.isin(x, (0.0, 1.0)).all():
        return ModelChoice("ivae", {"decoder": "bernoulli"}, "X is binary: iVAE with a Bernoulli decoder")
    where = "the features" if n == n_features else f"the top {n} principal components"
    return ModelChoice("flow", {}, f"{n_features} real-valued features -> {n} components: flow on {where}")


def make_model(model: str, n_components: int, X: Any = None, **params: Any) -> Any:
    """An unfitted estimator: ``model`` is a name in :data:`MODELS`, or ``"auto"``, which
    chooses from the observations ``X`` (:func:`choose_model`); ``params`` are the
    estimator's keyword arguments (they override what the choice sets).

    Examples
    --------
    >>> import numpy as np
    >>> make_model("auto", 5, np.random.default_rng(0).normal(size=(100, 5)), random_state=0)
    IFlow(5, random_state=0)
    >>> make_model("ivae", 5)
    IVAE(5)
    """
    if model == "auto":
        if X is None:
            raise ValueError("model='auto' chooses from the data: pass X")
        choice = choose_model(X, n_components)
        model, params = choice.name, {**choice.params, **params}
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose 'auto' or one of {sorted(MODELS)}")
    cls = MODELS[model]
    valid = set(cls._param_names()) if hasattr(cls, "_param_names") else None
    unknown = sorted(set(params) - valid) if valid is not None else []
    if unknown:
        raise ValueError(f"{cls.__name__} (model {model!r}) has no parameter(s) {unknown}")
    return cls(n_components, **params)


def fit_model(X: Any, u: Any, n_components: int, *, model: str = "auto", **params: Any) -> Any:
    """Fit the model for this data (``model="auto"``: the flow for real-valued X in memory,
    the iVAE for binary or out-of-core X; module docstring), or the named one.

    Parameters
    ----------
    X : ``(n_samples, n_features)`` observations.
    u : the auxiliary variable, as for :meth:`nica.IVAE.fit`.
    n_components : latent dimension n.
    model : ``"auto"`` or a name in :data:`MODELS` (``"ivae"``, ``"flow"``, ...).
    params : keyword arguments of the chosen estimator (``random_state``, ``max_steps``, ...).

    Returns
    -------
    The fitted estimator (:class:`nica.IFlow`, :class:`nica.IVAE`, ...).

    Examples
    --------
    >>> import nica
    >>> data = nica.make_nonstationary(2, n_segments=6, n_per_segment=100, random_state=0)
    >>> model = nica.fit_model(data.x, data.u, 2, max_steps=50, random_state=0)
    >>> type(model).__name__, model.transform(data.x).shape
    ('IFlow', (600, 2))
    """
    X, u = split_aux(X, u)  # u given as a column name of a DataFrame or AnnData
    return make_model(model, n_components, X, **params).fit(X, u)


def compare_models(models: dict[str, Any], X: Any, u: Any) -> dict[str, float]:
    """Each fitted model's ``score(X, u)``: mean log p(x | u) per sample in the units of X
    (exact for a flow, the ELBO lower bound for an iVAE); compare them on held-out rows."""
    return {name: float(model.score(X, u)) for name, model in models.items()}


def _n_features(X: Any) -> int:
    """The number of columns of X without converting it (X may be large, sparse or on disk)."""
    shape = getattr(X, "X", X).shape if hasattr(X, "shape") or hasattr(X, "X") else None
    if shape is None or len(shape) != 2:
        return check_observations(X, "X").shape[1]
    return int(shape[1])


__all__ = ["MODELS", "ModelChoice", "choose_model", "compare_models", "fit_model", "make_model", "register_model"]
