"""Fig. 6b: choosing the latent dimension by the ELBO.

Data with a known number of sources (``true_n``) mixed into d > true_n observations;
:class:`nica.IVAE` is fitted with every ``n_components`` in ``dims`` (at most d) and
scored by its ELBO per sample on the data (``model.score``, units of X), under the
settings of :func:`nica.model_selection.select_n_components`
(:data:`~nica.model_selection.ELBO_SELECTION_SETTINGS`): the plain ELBO, the paper's
objective (the library's default reweighted objective is not the ELBO: in a first quick
run every extra latent cost about 2.3 nats under it and the ELBO chose n = 2 for a true n
of 3), and a learned decoder variance (a fixed one makes leaving out a weak source
almost free; see that module).

Two rules that never see the sources pick n from the ELBO curve of each data seed, the
same as ``select_n_components``: ``argmax`` (the highest ELBO) and ``knee`` (the
smallest n that reaches 95% of the ELBO gain from the smallest n to the best: beyond the
true n extra latents add little, so the curve flattens rather than falls). MCC is
reported beside (over the latents' matched sources when n_components < true_n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE
from nica.experiments._core import Experiment, Task, final_rows, mean_sd, ordered
from nica.experiments._fits import fit_and_score
from nica.model_selection import ELBO_SELECTION_SETTINGS, KNEE_FRACTION, select_argmax, select_knee


#: up to this many data seeds each curve is coloured and named in the figure's legend
LEGEND_SEEDS = 6


@dataclass(frozen=True)
class SelectDimConfig:
    """``true_n`` sources in ``n_obs`` observations, M x L points; candidate ``dims``; ``steps`` per fit."""

    seeds: int
    true_n: int
    n_obs: int
    dims: tuple[int, ...]
    n_segments: int
    n_per_segment: int
    steps: int
    model: dict[str, Any] = field(default_factory=dict)


class SelectDim(Experiment):
    name = "select-dim"
    figure = "Fig. 6b"
    title = "Latent dimension chosen by the ELBO"
    setting = "n_components"
    paper = ("paper (Fig. 6b): the ELBO is proposed to choose the latent dimension n "
             "(no number to compare with is recorded in REFERENCE.md)")
    configs = {
        "full": SelectDimConfig(seeds=15, true_n=5, n_obs=10, dims=(2, 3, 4, 5, 6, 7, 8), n_segments=40,
                                n_per_segment=1000, steps=10_000),
        "quick": SelectDimConfig(seeds=2, true_n=3, n_obs=8, dims=(2, 3, 4, 5, 6), n_segments=20,
                                 n_per_segment=500, steps=3_000),
        "smoke": SelectDimConfig(seeds=1, true_n=2, n_obs=4, dims=(1, 2, 3), n_segments=8, n_per_segment=40,
                                 steps=10, model=dict(hidden_dim=16, n_layers=2)),
    }

    def tasks(self, config: SelectDimConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, ("iVAE",), config.dims)

    def run(self, task: Task, config: SelectDimConfig) -> list[dict[str, Any]]:
        data = make_nonstationary(config.true_n, config.n_obs, config.n_segments, config.n_per_segment,
                                  random_state=task.data_seed)
        model = IVAE(int(task.value), max_steps=config.steps, random_state=task.model_seed, device="cpu",
                     **{**ELBO_SELECTION_SETTINGS, "prior_net": "table", **config.model})
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def selections(self, rows: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
        """Per data seed: (argmax n, knee n) from that seed's ELBO curve."""
        out = {}
        for seed in ordered(r["data_seed"] for r in rows):
            mine = sorted((int(r["value"]), r["score"]) for r in rows if r["data_seed"] == seed)
            dims, elbo = zip(*mine)
            out[seed] = (select_argmax(dims, elbo), select_knee(dims, elbo))
        return out

    def table(self, rows: list[dict[str, Any]], config: SelectDimConfig) -> tuple[list[str], list[list[str]]]:
        rows = final_rows(rows)
        dims = sorted({int(r["value"]) for r in rows})
        body = [[f"{n}{' (true)' if n == config.true_n else ''}",
                 mean_sd((r["score"] for r in rows if int(r["value"]) == n), 2),
                 mean_sd(r["mcc"] for r in rows if int(r["value"]) == n)] for n in dims]
        chosen = self.selections(rows)
        body.append(["chosen, argmax ELBO", ", ".join(str(a) for a, _ in chosen.values()), "per seed"])
        body.append([f"chosen, knee ({KNEE_FRACTION:.0%} of gain)", ", ".join(str(k) for _, k in chosen.values()),
                     "per seed"])
        return ["n_components", "ELBO per sample", "MCC"], body

    def plot(self, rows: list[dict[str, Any]], config: SelectDimConfig, ax: Any) -> None:
        """Each seed's ELBO curve (named in the legend up to ``LEGEND_SEEDS`` seeds), the
        mean curve, each seed's knee choice (x) and the true n."""
        rows = final_rows(rows)
        seeds = ordered(r["data_seed"] for r in rows)
        named = len(seeds) <= LEGEND_SEEDS
        chosen = self.selections(rows)
        for i, seed in enumerate(seeds):
            dims, elbo = zip(*sorted((int(r["value"]), r["score"]) for r in rows if r["data_seed"] == seed))
            color = f"C{i % 10}" if named else "0.6"
            ax.plot(dims, elbo, "o-", color=color, markersize=3, linewidth=1, alpha=1.0 if named else 0.7,
                    label=f"data seed {seed}" if named else None)
            knee = chosen[seed][1]
            ax.plot(knee, elbo[dims.index(knee)], "x", color="C3", markersize=7, mew=1.5,
                    label="knee choice" if i == 0 else None)
        dims = sorted({int(r["value"]) for r in rows})
        mean = [np.mean([r["score"] for r in rows if int(r["value"]) == n]) for n in dims]
        ax.plot(dims, mean, "-", color="k", linewidth=2.2, label=f"mean over {len(seeds)} seeds")
        ax.axvline(config.true_n, color="k", linestyle="--", linewidth=1, label=f"true n = {config.true_n}")
        ax.set_xticks(dims)
        ax.set_xlabel(f"n_components (d = {config.n_obs})")
        ax.set_ylabel("ELBO per sample")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")


EXPERIMENT = SelectDim()
