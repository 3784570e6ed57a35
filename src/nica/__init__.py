"""nica: identifiable deep latent-variable models and nonlinear ICA.

The public surface: the :class:`IVAE` estimator, the baselines :class:`VAE`,
:class:`BetaVAE`, :class:`BetaTCVAE`, :class:`TCL` (more in :mod:`nica.baselines`), the
identifiable flow :class:`IFlow` (:mod:`nica.flows`), nonlinear ICA of time series
:class:`TemporalIVAE` and, with regime-dependent transitions and hidden Markov regimes,
:class:`SwitchingTemporalFlow` (:mod:`nica.temporal`), the paper's benchmark generator
:func:`make_nonstationary` and the time-series ones :func:`make_temporal` /
:func:`make_regimes` / :func:`make_switching` (CtrlNS) / :func:`make_energy_landscape` (MOSAIC), latents that depend on each other given u
(:func:`make_latent_scm`, :class:`LatentCausalVAE`), the metrics :func:`mean_corr_coef` /
:func:`weak_mean_corr_coef` / :func:`pairwise_mcc` / :func:`regime_accuracy`, the model chosen from the data
:func:`fit_model` (what ``nica fit`` runs; :func:`choose_model`, :data:`MODELS`), whether
its latents are the same from seed to seed beside references without identifiability
(:func:`consistency`, :func:`seed_agreement`), the
choice of the latent dimension by the ELBO :func:`select_n_components`, and :func:`load`.
Causal discovery by unmixing nonstationary disturbances (NonSENS, the paper's application)
is :mod:`nica.causal`.

Each name is imported when first used (PEP 562), so that ``import nica`` and the command
line's ``nica --help`` do not import torch; :func:`load` imports the module of whichever
built-in estimator a saved model names (the registry, :mod:`nica.base.registry`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nica._version import __version__

#: public name -> the module it is imported from on first use
_EXPORTS = {
    "BetaTCVAE": "nica.ivae",
    "BetaVAE": "nica.ivae",
    "IFlow": "nica.flows",
    "IVAE": "nica.ivae",
    "IdentifiabilityWarning": "nica._validation",
    "LatentCausalVAE": "nica.latent_causal",
    "LatentSCMData": "nica.datasets",
    "MODELS": "nica.model_choice",
    "NonstationaryData": "nica.datasets",
    "NotFittedError": "nica.base",
    "PRESETS": "nica.presets",
    "SwitchingTemporalFlow": "nica.temporal",
    "TCL": "nica.tcl",
    "TemporalIVAE": "nica.temporal",
    "VAE": "nica.ivae",
    "choose_model": "nica.model_choice",
    "consistency": "nica.replication",
    "fit_model": "nica.model_choice",
    "load": "nica.persistence",
    "make_energy_landscape": "nica.datasets",
    "make_latent_scm": "nica.datasets",
    "make_nonstationary": "nica.datasets",
    "make_regimes": "nica.datasets",
    "make_switching": "nica.datasets",
    "make_temporal": "nica.datasets",
    "mean_corr_coef": "nica.metrics",
    "pairwise_mcc": "nica.metrics",
    "regime_accuracy": "nica.metrics",
    "seed_agreement": "nica.metrics",
    "select_n_components": "nica.model_selection",
    "weak_mean_corr_coef": "nica.metrics",
}

if TYPE_CHECKING:  # what static tools and IDEs see
    from nica._validation import IdentifiabilityWarning
    from nica.base import NotFittedError
    from nica.datasets import (LatentSCMData, NonstationaryData, make_energy_landscape, make_latent_scm,
                               make_nonstationary, make_regimes, make_switching, make_temporal)
    from nica.ivae import IVAE, VAE, BetaTCVAE, BetaVAE
    from nica.flows import IFlow
    from nica.latent_causal import LatentCausalVAE
    from nica.metrics import mean_corr_coef, pairwise_mcc, regime_accuracy, seed_agreement, weak_mean_corr_coef
    from nica.model_choice import MODELS, choose_model, fit_model
    from nica.model_selection import select_n_components
    from nica.persistence import load
    from nica.presets import PRESETS
    from nica.replication import consistency
    from nica.tcl import TCL
    from nica.temporal import SwitchingTemporalFlow, TemporalIVAE


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nica' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *sorted(_EXPORTS)]
