"""Former home of TCL, now the package :mod:`nica.tcl` (kept so that
``from nica.baselines.tcl import TCL`` keeps working)."""

from nica.tcl import FEATURE_NONLINEARITIES, TCL, Maxout, TCLNetwork

__all__ = ["FEATURE_NONLINEARITIES", "Maxout", "TCL", "TCLNetwork"]
