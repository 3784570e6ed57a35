"""Temporal nonlinear ICA (the TDRL / LEAP protocol): the temporal model against iVAE.

Data: :func:`nica.datasets.temporal.make_temporal`, n = d = 8 latents with 2 lags of a
random leaky-ReLU transition, Laplace innovations whose scale changes across 20 domains
(``nonstationary``, the full configuration) or is fixed (``fixed``, also in the quick
one), a 2-matrix leaky-ReLU mixing; one training series of 20 x 2,000 steps and a
held-out series of 20 x 500 steps of the same process.
MCC of z_t is computed on the held-out series (steps t >= L), as the published
protocol scores a test split. Methods (:mod:`nica.experiments._series`):
``TemporalIVAE`` (:class:`nica.TemporalIVAE`, its defaults, u = domain) and iVAE
(:class:`nica.IVAE`, its defaults) with u built from the time structure: the domain
index, a time window of 500 steps, or the past observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.datasets.temporal import make_temporal
from nica.experiments._core import Experiment, Task
from nica.experiments._plots import groups_by_method
from nica.experiments._series import SERIES_METHODS, fit_series_method
from nica.metrics import mean_corr_coef


@dataclass(frozen=True)
class TemporalConfig:
    """n = d latents, L lags, ``n_domains`` x ``n_per_domain`` training steps; the settings
    (innovations) compared; the methods' step budgets and extra settings."""

    seeds: int
    n_sources: int
    lags: int
    n_domains: int
    n_per_domain: int
    settings: tuple[str, ...] = ("nonstationary", "fixed")
    methods: tuple[str, ...] = SERIES_METHODS
    window: int = 500
    temporal_steps: int = 3_000
    ivae_steps: int = 10_000
    temporal: dict[str, Any] = field(default_factory=dict)
    ivae: dict[str, Any] = field(default_factory=dict)


class TemporalExperiment(Experiment):
    name = "temporal"
    figure = "TDRL / LEAP"
    title = "Temporal nonlinear ICA: TemporalIVAE vs iVAE, u from the time structure"
    setting = "innovations"
    paper = "published (benchmark page of the TDRL paper, its own protocol): iVAE z_t MCC 0.816"
    paper_values = {"iVAE (u = domain)": {"nonstationary": 0.816}}
    configs = {
        # the setting the issue asks for (8 latents, nonstationary innovations) only: the
        # fixed-scale one would double the cost (--quick runs both, at 4 latents)
        "full": TemporalConfig(seeds=5, n_sources=8, lags=2, n_domains=20, n_per_domain=2000,
                               settings=("nonstationary",)),
        "quick": TemporalConfig(seeds=2, n_sources=4, lags=2, n_domains=10, n_per_domain=1000, window=250,
                                temporal_steps=1_500, ivae_steps=3_000),
        "smoke": TemporalConfig(seeds=1, n_sources=2, lags=1, n_domains=3, n_per_domain=60, window=30,
                                temporal_steps=5, ivae_steps=5,
                                temporal=dict(n_flows=1, flow_hidden=8, transition_hidden=8),
                                ivae=dict(hidden_dim=16, n_layers=2)),
    }

    def tasks(self, config: TemporalConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, config.methods, config.settings)

    def run(self, task: Task, config: TemporalConfig) -> list[dict[str, Any]]:
        n, lags = config.n_sources, config.lags
        data = make_temporal(n, lags=lags, n_domains=config.n_domains, n_per_domain=config.n_per_domain,
                             innovations=str(task.value), random_state=task.data_seed)
        fit = fit_series_method(task.method, n, lags, data.x, data.u, data.x_test, data.u_test,
                                seed=task.model_seed, window=config.window,
                                temporal=dict(max_steps=config.temporal_steps, **config.temporal),
                                ivae=dict(max_steps=config.ivae_steps, **config.ivae))
        mcc = mean_corr_coef(data.s_test[lags:], fit.z_test)
        return [task.row(mcc=mcc, score=fit.score, score_name=fit.score_name, seconds=fit.seconds,
                         step=fit.n_steps)]

    def plot(self, rows: list[dict[str, Any]], config: TemporalConfig, ax: Any) -> None:
        groups_by_method(ax, rows, xlabel="innovations", paper=self.paper_values,
                         paper_label="published iVAE (TDRL page)")


EXPERIMENT = TemporalExperiment()
