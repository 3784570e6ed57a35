"""nica: identifiable deep latent-variable models and nonlinear ICA.

The public surface: the :class:`IVAE` estimator, the baselines :class:`VAE`,
:class:`BetaVAE`, :class:`BetaTCVAE`, :class:`TCL` (more in :mod:`nica.baselines`), the
identifiable flow :class:`IFlow` (:mod:`nica.flows`), nonlinear ICA of time series
:class:`TemporalIVAE` (:mod:`nica.temporal`), the paper's benchmark generator
:func:`make_nonstationary` and the time-series ones :func:`make_temporal` /
:func:`make_regimes`, the metrics :func:`mean_corr_coef` / :func:`weak_mean_corr_coef` /
:func:`regime_accuracy`, the choice of the latent dimension by the ELBO
:func:`select_n_components`, and :func:`load`.
"""

from nica._validation import IdentifiabilityWarning
from nica._version import __version__
from nica.baselines import TCL, BetaTCVAE, BetaVAE
from nica.datasets import NonstationaryData, make_nonstationary, make_regimes, make_temporal
from nica.estimator import IVAE, VAE, NotFittedError
from nica.flows import IFlow
from nica.metrics import mean_corr_coef, regime_accuracy, weak_mean_corr_coef
from nica.model_selection import select_n_components
from nica.persistence import load
from nica.presets import PRESETS
from nica.temporal import TemporalIVAE

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
    "TemporalIVAE",
    "VAE",
    "__version__",
    "load",
    "make_nonstationary",
    "make_regimes",
    "make_temporal",
    "mean_corr_coef",
    "regime_accuracy",
    "select_n_components",
    "weak_mean_corr_coef",
]
