"""The identifiable flow against iVAE on the uncentered benchmark (the iFlow paper's protocol).

Data: n = d = 5, 40 segments of 1,000 points, per-segment source means ~ U(-5, 5) on top of
the variance modulation (``make_nonstationary(uncentered=True)``); the iFlow paper (Li et
al. 2020) averaged 100 data seeds (``--seeds 100``). Methods: ``iFlow`` is
:class:`nica.IFlow` with iFlow's own flow (rational-quadratic spline autoregressive, one
Gaussian restart, learned prior mean and scale; in the full configuration 12,500 Adam
steps at batch 64, the iVAE protocol's 20 epochs); ``IFlow (nica default)`` is
:class:`nica.IFlow` with its defaults (invertible MLP, 4 restarts chosen by likelihood);
``iVAE`` is :class:`nica.IVAE` with a learned prior mean (what mean-shifted data need);
``iVAE (zero mean)`` is :class:`nica.IVAE` with the library's zero-mean prior, the prior
the iFlow paper's iVAE had.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE
from nica.experiments._core import Experiment, Task
from nica.experiments._fits import fit_and_score
from nica.experiments._plots import strip_by_method
from nica.flows import IFlow

METHODS = ("iFlow", "IFlow (nica default)", "iVAE", "iVAE (zero mean)")
#: iFlow's own flow (Li et al. 2020), trained as the iFlow paper did
IFLOW_PAPER = dict(flow="spline-autoregressive", n_flows=5, n_bins=8, prior="gaussian", batch_size=64,
                   learning_rate=1e-3, n_restarts=1)


@dataclass(frozen=True)
class IFlowConfig:
    """n = d sources, M x L points; step budgets of iFlow's flow and of the iVAEs (nica's
    default flow keeps its own budget unless ``default_flow`` overrides it)."""

    seeds: int
    n_sources: int
    n_segments: int
    n_per_segment: int
    flow_steps: int
    ivae_steps: int
    flow: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    default_flow: dict[str, Any] = field(default_factory=dict)


class IFlowExperiment(Experiment):
    name = "iflow"
    figure = "Li et al. 2020"
    title = "Identifiable flow vs iVAE, uncentered sources"
    setting = "n_sources"
    paper = ("iFlow paper (uncentered, n = d = 5, 100 data seeds): iFlow 0.724 ± 0.064, "
             "their iVAE (zero-mean prior) 0.496 ± 0.072")
    paper_values = {"iFlow": 0.724, "iVAE (zero mean)": 0.496}
    configs = {
        "full": IFlowConfig(seeds=5, n_sources=5, n_segments=40, n_per_segment=1000, flow_steps=12_500,
                            ivae_steps=10_000),
        "quick": IFlowConfig(seeds=2, n_sources=5, n_segments=20, n_per_segment=500, flow_steps=3_000,
                             ivae_steps=3_000),
        "smoke": IFlowConfig(seeds=1, n_sources=2, n_segments=6, n_per_segment=40, flow_steps=5, ivae_steps=5,
                             flow=dict(n_flows=1, hidden_dim=8), model=dict(hidden_dim=16, n_layers=2),
                             default_flow=dict(max_steps=5)),
    }

    def tasks(self, config: IFlowConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, METHODS, [config.n_sources])

    def run(self, task: Task, config: IFlowConfig) -> list[dict[str, Any]]:
        n = config.n_sources
        data = make_nonstationary(n, n_segments=config.n_segments, n_per_segment=config.n_per_segment,
                                  uncentered=True, random_state=task.data_seed)
        common = dict(random_state=task.model_seed, device="cpu")
        if task.method == "iFlow":
            model: Any = IFlow(n, max_steps=config.flow_steps, **common, **{**IFLOW_PAPER, **config.flow})
        elif task.method == "IFlow (nica default)":
            model = IFlow(n, **common, **config.default_flow)
        else:
            model = IVAE(n, prior_mean=task.method == "iVAE", max_steps=config.ivae_steps, **common,
                         **config.model)
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def plot(self, rows: list[dict[str, Any]], config: IFlowConfig, ax: Any) -> None:
        strip_by_method(ax, rows, paper=self.paper_values, paper_label="iFlow paper")


EXPERIMENT = IFlowExperiment()
