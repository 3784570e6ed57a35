"""Causal discovery by unmixing nonstationary disturbances: NonSENS (Monti, Zhang &
Hyvärinen, UAI 2019), the application of the iVAE paper (Sec. 5.2, App. I.2).

- :class:`NonSENS`: the method (unmix with :class:`nica.IVAE`, :class:`nica.IFlow` or :class:`nica.TCL`, test
  every observed variable against every recovered disturbance with HSIC, read the causal
  order and, for two variables, the direction);
- :func:`make_causal`: its simulation (Laplace disturbances, lower-triangular MLP mixing);
- :func:`hsic_test` / :func:`hsic_matrix`: the HSIC independence test, pooled or given u;
- :func:`causal_order` / :func:`adjust_pvalues`: from tests to an order.
"""

from nica.causal.hsic import HSICMatrix, HSICResult, hsic_matrix, hsic_test
from nica.causal.nonsens import NonSENS
from nica.causal.ordering import CausalOrdering, adjust_pvalues, causal_order
from nica.causal.simulate import CausalData, make_causal

__all__ = ["CausalData", "CausalOrdering", "HSICMatrix", "HSICResult", "NonSENS", "adjust_pvalues",
           "causal_order", "hsic_matrix", "hsic_test", "make_causal"]
