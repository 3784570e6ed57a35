"""Fig. 3a: iVAE against time-contrastive learning (TCL) over the number of segments.

Data: the benchmark with n = d = 5 and M = 10..50 segments of L points. ``iVAE`` is
:class:`nica.IVAE` with the library's defaults; ``TCL`` is :class:`nica.TCL` with its
defaults (the authors' maxout network, batch 512), scored against |s| as the TCL paper
(its features estimate |s_i|; see :mod:`nica.experiments._fits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.baselines import TCL
from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE
from nica.experiments._core import Experiment, Task
from nica.experiments._fits import fit_and_score
from nica.experiments._plots import lines_by_method


@dataclass(frozen=True)
class SegmentsConfig:
    """Numbers of segments ``segments`` of L points, n = d sources; step budgets per method.

    ``restart_segments``: numbers of segments at which iVAE is also fitted with
    ``restarts`` batched restarts, one kept by the agreement rule (a departure from the
    paper's single fit; method ``"iVAE (K restarts)"``)."""

    seeds: int
    segments: tuple[int, ...]
    n_sources: int
    n_per_segment: int
    ivae_steps: int
    tcl_steps: int
    model: dict[str, Any] = field(default_factory=dict)
    tcl: dict[str, Any] = field(default_factory=dict)
    restarts: int = 16
    restart_segments: tuple[int, ...] = ()

    @property
    def restart_method(self) -> str:
        return f"iVAE ({self.restarts} restarts)"


class Segments(Experiment):
    name = "segments"
    figure = "Fig. 3a"
    title = "iVAE vs TCL against the number of segments"
    setting = "n_segments"
    paper = ("paper (Fig. 3a, 10/20/30/40/50 segments): iVAE 0.69/0.72/0.88/0.91/0.88, "
             "TCL 0.68/0.69/0.81/0.79/0.75")
    paper_values = {"iVAE": dict(zip((10, 20, 30, 40, 50), (0.69, 0.72, 0.88, 0.91, 0.88))),
                    "TCL": dict(zip((10, 20, 30, 40, 50), (0.68, 0.69, 0.81, 0.79, 0.75)))}
    configs = {
        "full": SegmentsConfig(seeds=5, segments=(10, 20, 30, 40, 50), n_sources=5, n_per_segment=1000,
                               ivae_steps=10_000, tcl_steps=10_000, restart_segments=(10, 20, 30, 40, 50)),
        "quick": SegmentsConfig(seeds=2, segments=(10, 30, 50), n_sources=5, n_per_segment=500,
                                ivae_steps=3_000, tcl_steps=3_000),
        "smoke": SegmentsConfig(seeds=1, segments=(6, 10), n_sources=2, n_per_segment=30, ivae_steps=10,
                                tcl_steps=10, model=dict(hidden_dim=16, n_layers=2), tcl=dict(batch_size=64),
                                restarts=2, restart_segments=(10,)),
    }

    def tasks(self, config: SegmentsConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return (self.grid(size, seeds, ("iVAE", "TCL"), config.segments)
                + self.grid(size, seeds, (config.restart_method,), config.restart_segments))

    def run(self, task: Task, config: SegmentsConfig) -> list[dict[str, Any]]:
        n = config.n_sources
        data = make_nonstationary(n, n_segments=int(task.value), n_per_segment=config.n_per_segment,
                                  random_state=task.data_seed)
        if task.method in ("iVAE", config.restart_method):
            restarts = config.restarts if task.method == config.restart_method else 1
            model: Any = IVAE(n, max_steps=config.ivae_steps, n_restarts=restarts, random_state=task.model_seed,
                              device="cpu", **config.model)
        else:
            model = TCL(n, max_steps=config.tcl_steps, random_state=task.model_seed, device="cpu", **config.tcl)
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def plot(self, rows: list[dict[str, Any]], config: SegmentsConfig, ax: Any) -> None:
        lines_by_method(ax, rows, xlabel=f"number of segments ({config.n_per_segment} points each)",
                        paper=self.paper_values)


EXPERIMENT = Segments()
