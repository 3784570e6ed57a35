"""Identifiable normalising flows: the iVAE's conditional prior under an invertible map.

:class:`IFlow` is the estimator; :class:`IFlowModule` / :class:`IFlowConfig` the torch
core; :func:`make_flow_transform` builds the bijection from zuko transforms.
"""

from nica.flows.estimator import IFlow
from nica.flows.module import IFlowConfig, IFlowModule
from nica.flows.transforms import FLOW_STEPS, LULinear, make_flow_transform

__all__ = ["FLOW_STEPS", "IFlow", "IFlowConfig", "IFlowModule", "LULinear", "make_flow_transform"]
