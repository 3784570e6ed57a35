"""Data simulators and file readers."""

from nica.datasets.latent_scm import LatentSCMData, make_latent_scm
from nica.datasets.nonstationary import NonstationaryData, make_nonstationary, mixing_matrix
from nica.datasets.regimes import RegimeData, make_regimes
from nica.datasets.temporal import TemporalData, make_temporal

__all__ = ["LatentSCMData", "NonstationaryData", "RegimeData", "TemporalData", "make_latent_scm", "make_nonstationary",
           "make_regimes", "make_temporal", "mixing_matrix"]
