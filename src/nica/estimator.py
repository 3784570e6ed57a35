"""Former home of :class:`nica.IVAE` and :class:`nica.VAE`, now the package :mod:`nica.ivae`
(kept so that ``from nica.estimator import IVAE`` and ``nica.estimator.SHAPE_DEFAULTS``
keep working)."""

from nica.base.params import NotFittedError, resolve_device
from nica.ivae.estimator import IVAE, VAE
from nica.ivae.settings import SHAPE_DEFAULTS

__all__ = ["IVAE", "SHAPE_DEFAULTS", "VAE", "NotFittedError", "resolve_device"]
