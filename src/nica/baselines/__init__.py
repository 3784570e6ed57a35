"""Baselines the iVAE paper compares against, behind the same ``fit(X, u)`` interface.

- :class:`BetaVAE`, :class:`BetaTCVAE`: unconditional VAEs with a reweighted objective
  (subclasses of :class:`nica.VAE`: same networks, objective code and trainer);
- :class:`TCL`: time-contrastive learning (segment classification + linear ICA);
- :class:`LinearICA`, :class:`PCA`: linear floors (u ignored).

The identifiable flow lives in :mod:`nica.flows`.
"""

from nica.baselines.linear import PCA, LinearICA
from nica.baselines.tcl import TCL, TCLNetwork
from nica.baselines.vae import BetaTCVAE, BetaVAE

__all__ = ["BetaTCVAE", "BetaVAE", "LinearICA", "PCA", "TCL", "TCLNetwork"]
