"""The identifiable VAE family, by feature: the estimators :class:`IVAE` and :class:`VAE`
(:mod:`~nica.ivae.estimator`), the unconditional baselines :class:`BetaVAE` and
:class:`BetaTCVAE` (:mod:`~nica.ivae.beta`), how parameters and the shape of X become the
module's and the trainer's settings (:mod:`~nica.ivae.settings`, :data:`SHAPE_DEFAULTS`),
the family's save format (:mod:`~nica.ivae._format`, :data:`IVAE_FORMAT`) and the
likelihood of new data under each label (:mod:`~nica.ivae.label_likelihood`). The torch
module is :class:`nica.models.IVAEModule`.
"""

from nica.ivae._format import IVAE_FORMAT
from nica.ivae.beta import BetaTCVAE, BetaVAE
from nica.ivae.estimator import IVAE, VAE
from nica.ivae.settings import SHAPE_DEFAULTS

__all__ = ["BetaTCVAE", "BetaVAE", "IVAE", "IVAE_FORMAT", "SHAPE_DEFAULTS", "VAE"]
