"""CtrlNS's switching dynamics (:func:`nica.datasets.make_switching`, its generator's
defaults): latent MCC and regime accuracy on held-out sequences, regimes not given.

Protocol (from the CtrlNS code; :mod:`nica.datasets.switching` has the facts): 8
latents, 5 regimes following hidden Markov chains, a sparse-Jacobian MLP transition per
regime, Gaussian innovations of variance 0.1, leaky-ReLU then orthogonal mixing; 32,000
training sequences of 16 steps and 3,200 held-out ones from the same system. Scored on
the held-out sequences at steps t >= 1: MCC of z_t (Pearson, Hungarian) and the regime
accuracy after the Hungarian matching of regime labels (CtrlNS's ``compute_acc``). The
baselines (iVAE, TCL) are given the true regime of every step as u; ours is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from nica.datasets.switching import SwitchingData, make_switching
from nica.experiments._core import Experiment, Task, mean_sd, ordered
from nica.experiments._plots import groups_by_method
from nica.experiments._regime_methods import IVAE_REGIME, OURS_HIDDEN, PCA_METHOD, TCL_REGIME, fit_regime_method
from nica.metrics import mean_corr_coef
from nica.metrics.regimes import matched_accuracy

ACCURACY = "regime accuracy"
#: offsets of the model seeds of our method from the data seed (3 fits per data set)
MODEL_SEED_OFFSETS = (0, 100, 200)


@dataclass(frozen=True)
class SwitchingConfig:
    """Generator sizes, methods, model seeds of our method, step budgets and settings."""

    seeds: int
    n_paths: int = 1_000
    n_test_paths: int = 100
    n_sources: int = 8
    n_regimes: int = 5
    methods: tuple[str, ...] = (OURS_HIDDEN, IVAE_REGIME, TCL_REGIME, PCA_METHOD)
    model_seeds: int = 3
    ours: dict[str, Any] = field(default_factory=lambda: {"max_steps": 3_000})
    baseline: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _data(seed: int, n_paths: int, n_test_paths: int, n_sources: int, n_regimes: int) -> SwitchingData:
    return make_switching(n_sources, n_regimes, n_paths=n_paths, n_test_paths=n_test_paths, random_state=seed)


class SwitchingExperiment(Experiment):
    name = "switching"
    figure = "CtrlNS"
    title = "CtrlNS switching dynamics: z_t MCC and regime accuracy, regimes hidden"
    setting = "generator"
    paper = ("published (CtrlNS paper's table, their data): iVAE z_t MCC 0.816; CtrlNS reports its own "
             "model above it")
    paper_values = {IVAE_REGIME: {"MCC": 0.816}}
    configs = {
        "full": SwitchingConfig(seeds=5),
        "quick": SwitchingConfig(seeds=2, n_paths=300, n_test_paths=30, model_seeds=1,
                                 ours={"max_steps": 1_500}, baseline={"max_steps": 3_000}),
        "smoke": SwitchingConfig(seeds=1, n_paths=8, n_test_paths=2, n_sources=3, n_regimes=2, model_seeds=1,
                                 ours=dict(max_steps=3, n_flows=1, flow_hidden=8, transition_hidden=8,
                                           rotation="none"),
                                 baseline=dict(max_steps=3, hidden_dim=8, n_layers=2)),
    }

    def tasks(self, config: SwitchingConfig, seeds: Sequence[int], size: str) -> list[Task]:
        tasks = []
        for seed in seeds:
            for method in config.methods:
                offsets = MODEL_SEED_OFFSETS[: config.model_seeds] if method == OURS_HIDDEN else (0,)
                tasks += [Task(self.name, size, method, self.setting, "CtrlNS", seed, seed + o) for o in offsets]
        return tasks

    def run(self, task: Task, config: SwitchingConfig) -> list[dict[str, Any]]:
        data = _data(task.data_seed, config.n_paths, config.n_test_paths, config.n_sources, config.n_regimes)
        n = config.n_sources
        fit = fit_regime_method(task.method, n, 1, data.x, data.regimes, data.x_test, n_regimes=config.n_regimes,
                                seed=task.model_seed, ours=config.ours, baseline=config.baseline)
        mcc = mean_corr_coef(data.s_test[:, 1:].reshape(-1, n), fit.z_test[:, 1:].reshape(-1, n))
        accuracy = math.nan if fit.regimes_test is None else matched_accuracy(
            data.regimes_test[:, 1:].ravel(), fit.regimes_test[:, 1:].ravel())
        return [task.row(mcc=mcc, score=accuracy, score_name=ACCURACY, seconds=fit.cpu_seconds, step=fit.n_steps)]

    def table(self, rows: list[dict[str, Any]], config: SwitchingConfig) -> tuple[list[str], list[list[str]]]:
        """Methods as rows: MCC, regime accuracy and CPU seconds, mean ± sd (n fits)."""
        body = [[m, mean_sd(r["mcc"] for r in rows if r["method"] == m),
                 mean_sd(r["score"] for r in rows if r["method"] == m),
                 mean_sd((r["seconds"] for r in rows if r["method"] == m), 0)]
                for m in ordered(r["method"] for r in rows)]
        return ["method", "MCC of z_t (held-out)", ACCURACY, "fit CPU s"], body

    def plot(self, rows: list[dict[str, Any]], config: SwitchingConfig, ax: Any) -> None:
        metrics = [{**r, "value": "MCC"} for r in rows]
        metrics += [{**r, "value": ACCURACY, "mcc": r["score"]} for r in rows]
        groups_by_method(ax, metrics, xlabel="", ylabel="MCC / regime accuracy", paper=self.paper_values,
                         paper_label="published iVAE")


EXPERIMENT = SwitchingExperiment()
