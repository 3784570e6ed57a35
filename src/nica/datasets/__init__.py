"""Data simulators and file readers."""

from nica.datasets.latent_scm import LatentSCMData, make_latent_scm
from nica.datasets.nonstationary import NonstationaryData, make_nonstationary, mixing_matrix

__all__ = ["LatentSCMData", "NonstationaryData", "make_latent_scm", "make_nonstationary", "mixing_matrix"]
