"""nica: identifiable deep latent-variable models and nonlinear ICA.

The public surface: the :class:`IVAE` estimator, the baselines :class:`VAE`,
:class:`BetaVAE`, :class:`BetaTCVAE`, :class:`TCL` (more in :mod:`nica.baselines`), the
identifiable flow :class:`IFlow` (:mod:`nica.flows`), the paper's benchmark generator
:func:`make_nonstationary`, the metrics :func:`mean_corr_coef` /
:func:`weak_mean_corr_coef`, the choice of the latent dimension by the ELBO
:func:`select_n_components`, and :func:`load`. Causal discovery by unmixing nonstationary
disturbances (NonSENS, the paper's application) is :mod:`nica.causal`.
"""

from nica._validation import IdentifiabilityWarning
from nica._version import __version__
from nica.baselines import TCL, BetaTCVAE, BetaVAE
from nica.datasets import NonstationaryData, make_nonstationary
from nica.estimator import IVAE, VAE, NotFittedError
from nica.flows import IFlow
from nica.metrics import mean_corr_coef, weak_mean_corr_coef
from nica.model_selection import select_n_components
from nica.persistence import load
from nica.presets import PRESETS

__all__ = [
    "BetaTCVAE",
    "BetaVAE",
    "IFlow",
    "IVAE",
    "IdentifiabilityWarning",
    "NonstationaryData",
    "NotFittedError",
    "PRESETS",
    "TCL",
    "VAE",
    "__version__",
    "load",
    "make_nonstationary",
    "mean_corr_coef",
    "select_n_components",
    "weak_mean_corr_coef",
]
