"""Data simulators and file readers."""

from nica.datasets.nonstationary import NonstationaryData, make_nonstationary, mixing_matrix

__all__ = ["NonstationaryData", "make_nonstationary", "mixing_matrix"]
