"""Data simulators and file readers."""

from nica.datasets.nonstationary import NonstationaryData, make_nonstationary, mixing_matrix
from nica.datasets.regimes import RegimeData, make_regimes
from nica.datasets.temporal import TemporalData, make_temporal

__all__ = ["NonstationaryData", "RegimeData", "TemporalData", "make_nonstationary", "make_regimes", "make_temporal",
           "mixing_matrix"]
