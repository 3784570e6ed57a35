"""Fig. 3b: iVAE against TCL on 2-D data whose segments are easy to classify.

Data: :func:`nica.datasets.easy.make_easy_to_classify`: source 0's mean rises by
``mean_step`` from segment to segment on top of every source's variance modulation, so a
classifier of u needs source 0 alone (the authors' script: 10 segments of 500 points,
3 mixing layers). The x axis is the training budget: every point is a complete fit
with that many Adam steps (a fit's cosine schedule depends on its budget, so these are
not points of one trajectory).

``iVAE`` is :class:`nica.IVAE` with a learned u-dependent prior mean (the data are
mean-modulated), the plain ELBO and a learned decoder variance: in a probe on data seeds
1001-1003 (not among the reported seeds) the library's default reweighted objective with
a fixed decoder variance recovered source 0 but not source 1 (MCC 0.55-0.62, seeds
1001-1002) while this setting reached 0.72-0.93 at 2,000 steps. ``TCL`` is
:class:`nica.TCL` with its defaults, scored against |s| as the TCL paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.baselines import TCL
from nica.datasets.easy import make_easy_to_classify
from nica.ivae.estimator import IVAE
from nica.experiments._core import Experiment, Task
from nica.experiments._fits import fit_and_score
from nica.experiments._plots import lines_by_method

#: iVAE for mean-modulated data: learned prior mean, the paper's objective, learned decoder variance
IVAE_SETTINGS: dict[str, Any] = dict(prior_mean=True, objective="elbo", decoder_var="learned")


@dataclass(frozen=True)
class EasyConfig:
    """M x L points of 2 sources, mean staircase ``mean_step``; training budgets ``steps``."""

    seeds: int
    steps: tuple[int, ...]
    n_segments: int = 10
    n_per_segment: int = 500
    mean_step: float = 4.0
    model: dict[str, Any] = field(default_factory=dict)
    tcl: dict[str, Any] = field(default_factory=dict)


class Easy(Experiment):
    name = "easy"
    figure = "Fig. 3b"
    title = "iVAE vs TCL on easy-to-classify 2-D data"
    setting = "max_steps"
    paper = "paper (Fig. 3b, 2-D, one source's mean shifts with u): iVAE 0.86 -> 0.99, TCL ~0.4"
    configs = {
        "full": EasyConfig(seeds=5, steps=(500, 1_000, 2_000, 4_000, 8_000)),
        "quick": EasyConfig(seeds=2, steps=(250, 1_000, 4_000)),
        "smoke": EasyConfig(seeds=1, steps=(5, 10), n_segments=6, n_per_segment=40,
                            model=dict(hidden_dim=16, n_layers=2), tcl=dict(batch_size=64)),
    }

    def tasks(self, config: EasyConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, ("iVAE", "TCL"), config.steps)

    def run(self, task: Task, config: EasyConfig) -> list[dict[str, Any]]:
        data = make_easy_to_classify(config.n_segments, config.n_per_segment, mean_step=config.mean_step,
                                     random_state=task.data_seed)
        common = dict(max_steps=int(task.value), random_state=task.model_seed, device="cpu")
        if task.method == "iVAE":
            model: Any = IVAE(2, **IVAE_SETTINGS, **common, **config.model)
        else:
            model = TCL(2, **common, **config.tcl)
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def plot(self, rows: list[dict[str, Any]], config: EasyConfig, ax: Any) -> None:
        ax.axhline(0.4, color="C1", linestyle="--", alpha=0.6, label="TCL (paper, ~0.4)")
        ax.axhspan(0.86, 0.99, color="C0", alpha=0.12, label="iVAE (paper, 0.86-0.99)")
        lines_by_method(ax, rows, xlabel="training budget (Adam steps)")
        ax.set_xscale("log")
        ax.set_xticks(config.steps, [f"{s:,}" for s in config.steps])  # after lines_by_method's
        ax.minorticks_off()


EXPERIMENT = Easy()
