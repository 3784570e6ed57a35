"""Fig. 2a: MCC over training epochs for iVAE, VAE, beta-VAE and beta-TCVAE (n = d = 5).

Every method is fitted once per data seed; the posterior-mean MCC on the training data is
recorded at initialisation and after every epoch (:func:`nica.experiments._trace.fit_traced`,
the same fit as ``model.fit``). One row per fit and recorded epoch: ``value`` is the
epoch, ``step`` the optimiser steps so far, ``score`` the epoch's mean training ELBO per
sample on standardised X (the last row of a fit holds the final model's ELBO in the
units of X instead).

Methods: ``iVAE`` is :class:`nica.IVAE` with the library's defaults; ``VAE`` the textbook
VAE (:class:`nica.VAE` with the plain ELBO); ``beta-VAE`` :class:`nica.BetaVAE` (beta 4)
and ``beta-TCVAE`` :class:`nica.BetaTCVAE` (beta 6), the defaults of their authors. All
share the networks, batch size, learning rate and step budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.baselines import BetaTCVAE, BetaVAE
from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE, VAE
from nica.experiments._core import Experiment, Task, mean_sd, ordered
from nica.experiments._plots import lines_by_method
from nica.experiments._trace import fit_traced

METHODS = ("iVAE", "VAE", "beta-VAE", "beta-TCVAE")


def make_model(method: str, n: int, steps: int, seed: int, model: dict[str, Any]) -> IVAE:
    """The estimator behind a method name; ``model`` holds shared network/training settings."""
    common = dict(max_steps=steps, random_state=seed, device="cpu", **model)
    if method == "iVAE":
        return IVAE(n, **common)
    if method == "VAE":
        return VAE(n, objective="elbo", **common)
    if method == "beta-VAE":
        return BetaVAE(n, **common)
    if method == "beta-TCVAE":
        return BetaTCVAE(n, **common)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


@dataclass(frozen=True)
class DynamicsConfig:
    """n = d sources/observations, M segments of L points, ``steps`` Adam steps per fit,
    MCC recorded every ``every`` epochs; ``model`` overrides shared by every method."""

    seeds: int
    n_sources: int
    n_segments: int
    n_per_segment: int
    steps: int
    every: int = 1
    methods: tuple[str, ...] = METHODS
    model: dict[str, Any] = field(default_factory=dict)


def last_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last recorded epoch of every fit."""
    last: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["method"], r["data_seed"], r["model_seed"])
        if key not in last or int(r["value"]) > int(last[key]["value"]):
            last[key] = r
    return list(last.values())


class Dynamics(Experiment):
    name = "dynamics"
    figure = "Fig. 2a"
    title = "MCC over training"
    setting = "epoch"
    paper = ("paper (Fig. 2a, n = d = 5, 40 x 1000 points, after training): iVAE ~0.95, "
             "beta-TCVAE ~0.72, VAE ~0.68, beta-VAE ~0.67")
    paper_final = {"iVAE": 0.95, "beta-TCVAE": 0.72, "VAE": 0.68, "beta-VAE": 0.67}
    configs = {
        # the paper's protocol: 20 epochs of 40,000 points at batch 64
        "full": DynamicsConfig(seeds=5, n_sources=5, n_segments=40, n_per_segment=1000, steps=12_500),
        "quick": DynamicsConfig(seeds=2, n_sources=5, n_segments=20, n_per_segment=500, steps=6_000, every=2),
        "smoke": DynamicsConfig(seeds=1, n_sources=2, n_segments=6, n_per_segment=50, steps=12,
                                model=dict(hidden_dim=16, n_layers=2)),
    }

    def tasks(self, config: DynamicsConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, config.methods, ["all"])

    def run(self, task: Task, config: DynamicsConfig) -> list[dict[str, Any]]:
        data = make_nonstationary(config.n_sources, n_segments=config.n_segments,
                                  n_per_segment=config.n_per_segment, random_state=task.data_seed)
        model = make_model(task.method, config.n_sources, config.steps, task.model_seed, config.model)
        model, trace = fit_traced(model, data.x, data.u, data.s, every=config.every)
        rows = [task.row(value=epoch, step=step, mcc=mcc, score=elbo, score_name="epoch ELBO (standardised X)",
                         seconds=model.fit_time_) for epoch, step, mcc, elbo in trace]
        rows[-1].update(score=model.elbo_, score_name="ELBO")
        return rows

    def plot(self, rows: list[dict[str, Any]], config: DynamicsConfig, ax: Any) -> None:
        last_epoch = max((int(r["value"]) for r in rows), default=0)
        paper = {m: {last_epoch: v} for m, v in self.paper_final.items()}
        lines_by_method(ax, rows, xlabel="epoch", paper=paper)

    def table(self, rows: list[dict[str, Any]], config: DynamicsConfig) -> tuple[list[str], list[list[str]]]:
        """MCC at initialisation, a quarter, half and the end of training, per method."""
        epochs = sorted({int(r["value"]) for r in rows})
        if not epochs:
            return ["epoch"], []
        last = epochs[-1]
        shown = ordered([min(epochs, key=lambda e: abs(e - target)) for target in (0, last / 4, last / 2, last)])
        methods = ordered(r["method"] for r in rows)
        body = [[str(e), *(mean_sd(r["mcc"] for r in rows if r["method"] == m and int(r["value"]) == e)
                           for m in methods)] for e in shown]
        ends = last_rows(rows)
        seconds = [mean_sd((r["seconds"] for r in ends if r["method"] == m), 1) for m in methods]
        return ["epoch", *methods], [*body, ["s / fit", *seconds]]


EXPERIMENT = Dynamics()
