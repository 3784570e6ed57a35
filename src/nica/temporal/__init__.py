"""Nonlinear ICA of time series: :class:`TemporalIVAE`, a learned transition prior
p(z_t | z_{t-1..t-L}, u) over a flow or a VAE (TDRL / LEAP, Yao et al. 2021, 2022), and
:class:`SwitchingTemporalFlow`, transitions that switch with a hidden Markov regime
(CtrlNS, Song et al. 2024), fitted by exact likelihood (:mod:`nica.temporal.hmm`).

:class:`TemporalIVAEModule` / :class:`TemporalIVAEConfig` are the torch core and
:class:`InverseTransition` the learned inverse transition with its log-Jacobian;
:mod:`nica.temporal.series` reads series and builds the inputs of iVAE on a series
(u from the past observations, :func:`lagged_aux`, or time windows, :func:`time_windows`).
"""

from nica.temporal.estimator import TemporalIVAE
from nica.temporal.switching_estimator import SwitchingTemporalFlow
from nica.temporal.module import INFERENCE, TRANSITIONS, InverseTransition, TemporalIVAEConfig, TemporalIVAEModule
from nica.temporal.series import check_series, lagged_aux, time_windows

__all__ = ["INFERENCE", "TRANSITIONS", "InverseTransition", "SwitchingTemporalFlow", "TemporalIVAE", "TemporalIVAEConfig",
           "TemporalIVAEModule", "check_series", "lagged_aux", "time_windows"]
