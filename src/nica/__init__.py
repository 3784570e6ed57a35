"""nica: identifiable deep latent-variable models and nonlinear ICA.

The public surface: the :class:`IVAE` estimator, the baselines :class:`VAE`,
:class:`BetaVAE`, :class:`BetaTCVAE`, :class:`TCL` (more in :mod:`nica.baselines`), the
identifiable flow :class:`IFlow` (:mod:`nica.flows`), the paper's benchmark generator
:func:`make_nonstationary`, latents that depend on each other given u
(:func:`make_latent_scm`, :class:`LatentCausalVAE`), the metrics :func:`mean_corr_coef` /
:func:`weak_mean_corr_coef`, the choice of the latent dimension by the ELBO
:func:`select_n_components`, and :func:`load`.
"""

from nica._validation import IdentifiabilityWarning
from nica._version import __version__
from nica.baselines import TCL, BetaTCVAE, BetaVAE
from nica.datasets import LatentSCMData, NonstationaryData, make_latent_scm, make_nonstationary
from nica.estimator import IVAE, VAE, NotFittedError
from nica.flows import IFlow
from nica.latent_causal import LatentCausalVAE
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
    "LatentCausalVAE",
    "LatentSCMData",
    "NonstationaryData",
    "NotFittedError",
    "PRESETS",
    "TCL",
    "VAE",
    "__version__",
    "load",
    "make_latent_scm",
    "make_nonstationary",
    "mean_corr_coef",
    "select_n_components",
    "weak_mean_corr_coef",
]
