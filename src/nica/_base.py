"""Former home of the estimators' shared parameters and checks, now :mod:`nica.base.params`
(kept so that ``from nica._base import ParamsMixin`` keeps working)."""

from nica.base.params import (
    INFERENCE_CHUNK,
    NotFittedError,
    ParamsMixin,
    check_fitted,
    check_n_components,
    check_new_observations,
    check_positive_int,
    chunks,
    resolve_device,
    seeded_init,
)

__all__ = ["INFERENCE_CHUNK", "NotFittedError", "ParamsMixin", "check_fitted", "check_n_components",
           "check_new_observations", "check_positive_int", "chunks", "resolve_device", "seeded_init"]
