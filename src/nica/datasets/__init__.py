"""Data simulators and file readers."""

from nica.datasets.energy_landscape import EnergyLandscapeData, make_energy_landscape
from nica.datasets.latent_scm import LatentSCMData, make_latent_scm
from nica.datasets.nonstationary import NonstationaryData, make_nonstationary, mixing_matrix
from nica.datasets.regimes import RegimeData, make_regimes
from nica.datasets.switching import SwitchingData, make_switching
from nica.datasets.temporal import TemporalData, make_temporal

__all__ = ["EnergyLandscapeData", "LatentSCMData", "NonstationaryData", "RegimeData", "SwitchingData", "TemporalData",
           "make_energy_landscape", "make_latent_scm", "make_nonstationary", "make_regimes", "make_switching",
           "make_temporal", "mixing_matrix"]
