"""Time-contrastive learning (TCL; Hyvärinen & Morioka 2016): the estimator :class:`TCL`
and its network :class:`TCLNetwork`."""

from nica.tcl.estimator import TCL
from nica.tcl.network import FEATURE_NONLINEARITIES, Maxout, TCLNetwork

__all__ = ["FEATURE_NONLINEARITIES", "Maxout", "TCL", "TCLNetwork"]
