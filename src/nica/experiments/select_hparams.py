"""Fig. 6c: choosing hyperparameters by the ELBO.

:class:`nica.IVAE` is fitted with every combination of a grid of hidden widths and
learning rates on the benchmark (n = d = 5) under the settings in which fits are compared
by their ELBO (:data:`nica.model_selection.ELBO_SELECTION_SETTINGS`: the plain ELBO, the
criterion that then chooses among the fits, and a learned decoder variance), with the
library's defaults otherwise. For each data
seed the combination with the highest ELBO per sample on the data (``model.score``) is
"chosen" without looking at the sources; its MCC is set beside the best and the median
MCC of the grid, and the Spearman rank correlation between ELBO and MCC over the grid
says how well the ELBO tracks recovery.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE
from nica.experiments._core import Experiment, Task, final_rows, ordered
from nica.experiments._fits import fit_and_score
from nica.model_selection import ELBO_SELECTION_SETTINGS


def grid_label(hidden_dim: int, learning_rate: float) -> str:
    return f"hidden_dim={hidden_dim} lr={learning_rate:g}"


@dataclass(frozen=True)
class SelectHparamsConfig:
    """Grid ``hidden_dims`` x ``learning_rates`` on n = d sources, M x L points, ``steps`` per fit."""

    seeds: int
    hidden_dims: tuple[int, ...]
    learning_rates: tuple[float, ...]
    n_sources: int
    n_segments: int
    n_per_segment: int
    steps: int
    model: dict[str, Any] = field(default_factory=dict)

    def grid(self) -> dict[str, dict[str, Any]]:
        """Label -> estimator settings of every grid point."""
        return {grid_label(h, lr): dict(hidden_dim=h, learning_rate=lr)
                for h, lr in itertools.product(self.hidden_dims, self.learning_rates)}


@dataclass
class Choice:
    """One data seed's outcome: the ELBO-chosen grid point and the grid's MCC statistics."""

    data_seed: int
    chosen: str
    chosen_mcc: float
    best_mcc: float
    median_mcc: float
    spearman: float


def choices(rows: list[dict[str, Any]]) -> list[Choice]:
    """Per data seed, the grid point with the highest ELBO and how its MCC compares."""
    out = []
    for seed in ordered(r["data_seed"] for r in rows):
        mine = [r for r in rows if r["data_seed"] == seed and np.isfinite(r["score"])]
        if not mine:
            continue
        elbo = np.array([r["score"] for r in mine])
        mcc = np.array([r["mcc"] for r in mine])
        pick = int(np.argmax(elbo))
        rho = float(spearmanr(elbo, mcc).statistic) if len(mine) > 2 else float("nan")
        out.append(Choice(seed, str(mine[pick]["value"]), float(mcc[pick]), float(mcc.max()),
                          float(np.median(mcc)), rho))
    return out


class SelectHparams(Experiment):
    name = "select-hparams"
    figure = "Fig. 6c"
    title = "Hyperparameters chosen by the ELBO"
    setting = "hparams"
    paper = "paper (Fig. 6c): across hyperparameters MCC ranged 0.52-0.89 and the ELBO correlated with MCC"
    configs = {
        "full": SelectHparamsConfig(seeds=5, hidden_dims=(20, 50, 100, 200), learning_rates=(1e-3, 3e-3, 1e-2),
                                    n_sources=5, n_segments=40, n_per_segment=1000, steps=10_000),
        "quick": SelectHparamsConfig(seeds=2, hidden_dims=(16, 32, 64), learning_rates=(1e-3, 3e-3, 1e-2),
                                     n_sources=5, n_segments=20, n_per_segment=500, steps=3_000),
        "smoke": SelectHparamsConfig(seeds=1, hidden_dims=(8, 16), learning_rates=(1e-3, 1e-2), n_sources=2,
                                     n_segments=8, n_per_segment=40, steps=10, model=dict(n_layers=2)),
    }

    def tasks(self, config: SelectHparamsConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, ("iVAE",), list(config.grid()))

    def run(self, task: Task, config: SelectHparamsConfig) -> list[dict[str, Any]]:
        data = make_nonstationary(config.n_sources, n_segments=config.n_segments,
                                  n_per_segment=config.n_per_segment, random_state=task.data_seed)
        settings = config.grid()[str(task.value)]
        model = IVAE(config.n_sources, max_steps=config.steps, random_state=task.model_seed, device="cpu",
                     **{**ELBO_SELECTION_SETTINGS, "prior_net": "table", **config.model, **settings})
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def table(self, rows: list[dict[str, Any]], config: SelectHparamsConfig) -> tuple[list[str], list[list[str]]]:
        found = choices(final_rows(rows))
        body = [[str(c.data_seed), c.chosen, f"{c.chosen_mcc:.3f}", f"{c.best_mcc:.3f}", f"{c.median_mcc:.3f}",
                 f"{c.spearman:+.2f}"] for c in found]
        if len(found) > 1:
            body.append(["mean", "", *(f"{np.mean([getattr(c, k) for c in found]):.3f}"
                                       for k in ("chosen_mcc", "best_mcc", "median_mcc")),
                         f"{np.nanmean([c.spearman for c in found]):+.2f}"])
        return ["data seed", "chosen by ELBO", "its MCC", "best MCC", "median MCC", "Spearman(ELBO, MCC)"], body

    def plot(self, rows: list[dict[str, Any]], config: SelectHparamsConfig, ax: Any) -> None:
        rows = final_rows(rows)
        found = {c.data_seed: c for c in choices(rows)}
        for i, seed in enumerate(ordered(r["data_seed"] for r in rows)):
            mine = [r for r in rows if r["data_seed"] == seed]
            ax.scatter([r["score"] for r in mine], [r["mcc"] for r in mine], s=16, color=f"C{i}",
                       label=f"data seed {seed}")
            if seed in found:
                pick = next(r for r in mine if r["value"] == found[seed].chosen)
                ax.scatter([pick["score"]], [pick["mcc"]], s=120, marker="*", color=f"C{i}", edgecolors="k")
        ax.set_xlabel("ELBO per sample (star: the highest, i.e. chosen)")
        ax.set_ylabel("MCC")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


EXPERIMENT = SelectHparams()
