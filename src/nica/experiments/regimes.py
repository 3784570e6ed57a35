"""Regimes: latents of Langevin dynamics on a multi-well energy landscape, and the regimes.

The protocol is ours (:mod:`nica.datasets.regimes`; the published energy-landscape and
molecular-dynamics benchmarks that report iVAE numbers do not publish theirs): n = d = 3
latents, 4 wells with per-well widths and diffusion, a component-wise monotone
nonlinearity then a 2-matrix MLP mixing; a training series of 20,000 recorded steps
and a held-out series of 10,000. On the held-out steps t >= L each method is scored by
the MCC of its latents with the true ones and by the regime accuracy of its latents
(:func:`nica.metrics.regime_accuracy`: a Gaussian mixture with as many components as
wells, clusters matched to wells by the Hungarian algorithm). No domain labels exist:
``TemporalIVAE`` has no u (Gaussian innovations, 1 lag); iVAE gets u from the time
structure (windows of 100 steps, or the past observations). Two references without a
model: the observations x themselves and the true latents (what the clustering reaches on
the true latents; not a ceiling on every seed: when the held-out series barely visits a
well, as on data seed 3001, the clusters split a populous one instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.datasets.regimes import make_regimes
from nica.experiments._core import Experiment, Task, mean_sd, ordered
from nica.experiments._plots import groups_by_method
from nica.experiments._series import IVAE_PAST, IVAE_WINDOW, TEMPORAL, fit_series_method
from nica.metrics import mean_corr_coef, regime_accuracy

OBSERVATIONS, TRUE_LATENTS = "observations x (no model)", "true latents (reference)"
REFERENCES = (OBSERVATIONS, TRUE_LATENTS)
ACCURACY = "regime accuracy"


@dataclass(frozen=True)
class RegimesConfig:
    """n = d latents, K wells, steps of the training series; methods and their settings."""

    seeds: int
    n_sources: int
    n_wells: int
    n_steps: int
    lags: int = 1
    window: int = 100
    methods: tuple[str, ...] = (TEMPORAL, IVAE_WINDOW, IVAE_PAST) + REFERENCES
    temporal_steps: int = 3_000
    ivae_steps: int = 10_000
    temporal: dict[str, Any] = field(default_factory=lambda: {"innovation": "gaussian"})
    ivae: dict[str, Any] = field(default_factory=dict)


class RegimesExperiment(Experiment):
    name = "regimes"
    figure = "ours"
    title = "Regimes of latent Langevin dynamics: latent MCC and regime accuracy"
    setting = "n_wells"
    paper = ("published (other protocols, not public): iVAE MCC 0.82 on an energy-landscape system with "
             "monotonic nonlinear mixing; iVAE regime accuracy 93% on molecular dynamics")
    paper_values = {"iVAE (u = time window)": {"MCC": 0.82, ACCURACY: 0.93}}
    configs = {
        "full": RegimesConfig(seeds=5, n_sources=3, n_wells=4, n_steps=20_000),
        "quick": RegimesConfig(seeds=2, n_sources=2, n_wells=3, n_steps=6_000, window=50, temporal_steps=1_500,
                               ivae_steps=3_000),
        "smoke": RegimesConfig(seeds=1, n_sources=2, n_wells=2, n_steps=300, window=30, temporal_steps=5,
                               ivae_steps=5, temporal=dict(innovation="gaussian", n_flows=1, flow_hidden=8,
                                                            transition_hidden=8),
                               ivae=dict(hidden_dim=16, n_layers=2)),
    }

    def tasks(self, config: RegimesConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, config.methods, [config.n_wells])

    def run(self, task: Task, config: RegimesConfig) -> list[dict[str, Any]]:
        n, lags = config.n_sources, config.lags
        data = make_regimes(n, n_wells=int(task.value), n_steps=config.n_steps, random_state=task.data_seed)
        s_test, regimes = data.s_test[lags:], data.regimes_test[lags:]
        if task.method in REFERENCES:
            z = data.x_test[lags:] if task.method == OBSERVATIONS else s_test
            mcc = mean_corr_coef(s_test, z) if z.shape[1] == n else math.nan
            return [task.row(mcc=mcc, score=regime_accuracy(regimes, z, int(task.value), random_state=task.model_seed),
                             score_name=ACCURACY, seconds=0.0)]
        fit = fit_series_method(task.method, n, lags, data.x, None, data.x_test, None, seed=task.model_seed,
                                window=config.window, temporal=dict(max_steps=config.temporal_steps, **config.temporal),
                                ivae=dict(max_steps=config.ivae_steps, **config.ivae))
        accuracy = regime_accuracy(regimes, fit.z_test, int(task.value), random_state=task.model_seed)
        return [task.row(mcc=mean_corr_coef(s_test, fit.z_test), score=accuracy, score_name=ACCURACY,
                         seconds=fit.seconds, step=fit.n_steps)]

    def table(self, rows: list[dict[str, Any]], config: RegimesConfig) -> tuple[list[str], list[list[str]]]:
        """Methods as rows: MCC and regime accuracy, mean ± sd (n seeds)."""
        body = [[m, mean_sd(r["mcc"] for r in rows if r["method"] == m),
                 mean_sd(r["score"] for r in rows if r["method"] == m)] for m in ordered(r["method"] for r in rows)]
        return ["method", "MCC (held-out)", ACCURACY], body

    def plot(self, rows: list[dict[str, Any]], config: RegimesConfig, ax: Any) -> None:
        metrics = [{**r, "value": "MCC", "mcc": r["mcc"]} for r in rows]
        metrics += [{**r, "value": ACCURACY, "mcc": r["score"]} for r in rows]
        groups_by_method(ax, metrics, xlabel="", ylabel="MCC / regime accuracy", paper=self.paper_values,
                         paper_label="published iVAE (other protocols)")


EXPERIMENT = RegimesExperiment()
