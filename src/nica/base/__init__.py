"""What every estimator shares: the skeleton :class:`Estimator` (fit, restarts, checkpoints
and resume, divergence, fitted state, chunked inference, save), the parameter protocol
(:class:`ParamsMixin`), the one registry of estimators (:func:`register_estimator`), the
choice among restarts and the label posterior of ``predict_u``.

One job per module: :mod:`~nica.base.params` (parameters and their checks),
:mod:`~nica.base.registry` (the registry), :mod:`~nica.base.checkpointing` (a fit's
checkpoints and seed), :mod:`~nica.base.restarts` (which restart is kept),
:mod:`~nica.base.label_posterior` (p(u | x) from a per-label likelihood),
:mod:`~nica.base.formats` (the parts of a save format the families share) and
:mod:`~nica.base.estimator` (the skeleton).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> its module, imported on first use (PEP 562): the modules below the
#: skeleton (params, registry) import without it, so that persistence can use them
_EXPORTS = {
    "ESTIMATOR_TYPES": "nica.base.registry",
    "Estimator": "nica.base.estimator",
    "EstimatorType": "nica.base.registry",
    "FitData": "nica.base.estimator",
    "FitInputs": "nica.base.estimator",
    "FitPlan": "nica.base.estimator",
    "LabelPosteriorMixin": "nica.base.label_posterior",
    "NotFittedError": "nica.base.params",
    "ParamsMixin": "nica.base.params",
    "batched": "nica.base.estimator",
    "check_n_components": "nica.base.params",
    "fitted_alias": "nica.base.estimator",
    "register_estimator": "nica.base.registry",
    "register_model": "nica.base.registry",
    "resolve_device": "nica.base.params",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nica.base' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
