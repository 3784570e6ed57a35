"""MOSAIC's energy landscape (:func:`nica.datasets.make_energy_landscape`, its settings,
monotone mixing): MCC of the 6 latents from 30 observations, with and without the well.

Protocol (from the MOSAIC code; :mod:`nica.datasets.energy_landscape` has the facts):
overdamped Langevin dynamics of 6 coupled latents on a landscape of Gaussian wells, 30
observations by sparse additive monotone functions plus noise of sd 0.05; 9 training
trajectories of 50,000 frames. MOSAIC scores the first 5,000 frames of trajectory 1 (a training
trajectory); we score the first 5,000 frames of a held-out trajectory of the same system
and mixing (started in state A, as their trajectory 1). The regime is the well of the reaction coordinate x (0 left,
1 right, -1 within 0.1 of the barrier); methods "given the well" read it as u.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from nica.datasets.energy_landscape import EnergyLandscapeData, make_energy_landscape
from nica.experiments._core import Experiment, Task, mean_sd, ordered
from nica.experiments._plots import groups_by_method
from nica.experiments._regime_methods import (IVAE_REGIME, OURS_GIVEN, OURS_HIDDEN, PCA_METHOD, TCL_REGIME,
                                              fit_regime_method)
from nica.experiments.switching import MODEL_SEED_OFFSETS
from nica.metrics import mean_corr_coef

#: MOSAIC scores the first 5,000 frames of trajectory 1
SCORED_FRAMES = 5_000


@dataclass(frozen=True)
class EnergyLandscapeConfig:
    """Generator sizes, methods, model seeds of our methods, step budgets and settings."""

    seeds: int
    n_trajectories: int = 9
    n_steps: int = 2_000_000
    lags: int = 1
    n_regimes: int = 2
    methods: tuple[str, ...] = (OURS_HIDDEN, OURS_GIVEN, IVAE_REGIME, TCL_REGIME, PCA_METHOD)
    model_seeds: int = 3
    ours: dict[str, Any] = field(default_factory=lambda: {"max_steps": 3_000})
    baseline: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _data(seed: int, n_trajectories: int, n_steps: int) -> EnergyLandscapeData:
    return make_energy_landscape(n_trajectories, n_steps, n_test_trajectories=1, random_state=seed)


class EnergyLandscapeExperiment(Experiment):
    name = "energy-landscape"
    figure = "MOSAIC"
    title = "MOSAIC energy landscape: MCC of 6 latents from 30 observations"
    setting = "generator"
    paper = ("published (MOSAIC paper's table, their data): iVAE MCC 0.821 (u = the binary regime); "
             "PCA 0.829 on the issue's draw of their generator")
    paper_values = {IVAE_REGIME: {"MOSAIC": 0.821}}
    configs = {
        "full": EnergyLandscapeConfig(seeds=5),
        "quick": EnergyLandscapeConfig(seeds=2, n_trajectories=3, n_steps=800_000, model_seeds=1,
                                       ours={"max_steps": 1_500}, baseline={"max_steps": 3_000}),
        "smoke": EnergyLandscapeConfig(seeds=1, n_trajectories=4, n_steps=8_000, model_seeds=1,
                                       ours=dict(max_steps=3, n_flows=1, flow_hidden=8, transition_hidden=8),
                                       baseline=dict(max_steps=3, hidden_dim=8, n_layers=2)),
    }

    def tasks(self, config: EnergyLandscapeConfig, seeds: Sequence[int], size: str) -> list[Task]:
        tasks = []
        for seed in seeds:
            for method in config.methods:
                offsets = MODEL_SEED_OFFSETS[: config.model_seeds] if method in (OURS_HIDDEN, OURS_GIVEN) else (0,)
                tasks += [Task(self.name, size, method, self.setting, "MOSAIC", seed, seed + o) for o in offsets]
        return tasks

    def run(self, task: Task, config: EnergyLandscapeConfig) -> list[dict[str, Any]]:
        data = _data(task.data_seed, config.n_trajectories, config.n_steps)
        fit = fit_regime_method(task.method, 6, config.lags, data.x, data.regimes, data.x_test,
                                n_regimes=config.n_regimes, seed=task.model_seed, ours=config.ours,
                                baseline=config.baseline)
        frames = min(SCORED_FRAMES, data.s_test.shape[1])
        mcc = mean_corr_coef(data.s_test[0, :frames], fit.z_test[0, :frames])
        return [task.row(mcc=mcc, seconds=fit.cpu_seconds, step=fit.n_steps)]

    def table(self, rows: list[dict[str, Any]], config: EnergyLandscapeConfig) -> tuple[list[str], list[list[str]]]:
        """Methods as rows: MCC and CPU seconds, mean ± sd (n fits)."""
        body = [[m, mean_sd(r["mcc"] for r in rows if r["method"] == m),
                 mean_sd((r["seconds"] for r in rows if r["method"] == m), 0)]
                for m in ordered(r["method"] for r in rows)]
        return ["method", "MCC (held-out trajectory 1, first 5,000 frames)", "fit CPU s"], body

    def plot(self, rows: list[dict[str, Any]], config: EnergyLandscapeConfig, ax: Any) -> None:
        groups_by_method(ax, rows, xlabel="", paper=self.paper_values, paper_label="published iVAE")


EXPERIMENT = EnergyLandscapeExperiment()
