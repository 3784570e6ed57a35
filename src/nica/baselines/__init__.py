"""Baselines the iVAE paper compares against, behind the same ``fit(X, u)`` interface.

- :class:`BetaVAE`, :class:`BetaTCVAE`: unconditional VAEs with a reweighted objective
  (subclasses of :class:`nica.VAE`, in the iVAE family: :mod:`nica.ivae.beta`);
- :class:`TCL`: time-contrastive learning (segment classification + linear ICA; the
  family :mod:`nica.tcl`);
- :class:`LinearICA`, :class:`PCA`: linear floors (u ignored).

The identifiable flow lives in :mod:`nica.flows`. The families' classes are imported on
first use (PEP 562), so that TCL can build on :mod:`nica.baselines.linear`.
"""

from __future__ import annotations

import importlib
from typing import Any

from nica.baselines.linear import PCA, LinearICA

#: public name -> the module it is imported from on first use
_FAMILIES = {"BetaTCVAE": "nica.ivae.beta", "BetaVAE": "nica.ivae.beta", "TCL": "nica.tcl.estimator",
             "TCLNetwork": "nica.tcl.network"}


def __getattr__(name: str) -> Any:
    if name not in _FAMILIES:
        raise AttributeError(f"module 'nica.baselines' has no attribute {name!r}")
    return getattr(importlib.import_module(_FAMILIES[name]), name)


__all__ = ["BetaTCVAE", "BetaVAE", "LinearICA", "PCA", "TCL", "TCLNetwork"]
