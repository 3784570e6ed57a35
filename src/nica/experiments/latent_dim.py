"""Fig. 2b: MCC against the latent dimension n = 2..5, with d = 5 observed dimensions.

Data: n sources mixed into d = 5 observations (:func:`nica.make_nonstationary`, the
first mixing matrix n x d); both models are given the true n. ``iVAE`` is
:class:`nica.IVAE` with the library's defaults, ``VAE`` the textbook VAE
(:class:`nica.VAE` with the plain ELBO), same networks and budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nica.datasets import make_nonstationary
from nica.ivae.estimator import IVAE, VAE
from nica.experiments._core import Experiment, Task
from nica.experiments._fits import fit_and_score
from nica.experiments._plots import lines_by_method


@dataclass(frozen=True)
class LatentDimConfig:
    """Latent dimensions ``dims`` of data with ``n_obs`` features; M x L points; ``steps`` per fit."""

    seeds: int
    dims: tuple[int, ...]
    n_obs: int
    n_segments: int
    n_per_segment: int
    steps: int
    model: dict[str, Any] = field(default_factory=dict)


class LatentDim(Experiment):
    name = "latent-dim"
    figure = "Fig. 2b"
    title = "MCC against the latent dimension (d = 5)"
    setting = "n_sources"
    paper = "paper (Fig. 2b, n = 2/3/4/5, d = 5): iVAE ~0.93-0.96 throughout; VAE 0.87/0.94/0.83/0.68"
    configs = {
        "full": LatentDimConfig(seeds=5, dims=(2, 3, 4, 5), n_obs=5, n_segments=40, n_per_segment=1000,
                                steps=10_000),
        "quick": LatentDimConfig(seeds=2, dims=(2, 3, 4, 5), n_obs=5, n_segments=20, n_per_segment=500,
                                 steps=3_000),
        "smoke": LatentDimConfig(seeds=1, dims=(2, 3), n_obs=3, n_segments=8, n_per_segment=40, steps=10,
                                 model=dict(hidden_dim=16, n_layers=2)),
    }

    def tasks(self, config: LatentDimConfig, seeds: Sequence[int], size: str) -> list[Task]:
        return self.grid(size, seeds, ("iVAE", "VAE"), config.dims)

    def run(self, task: Task, config: LatentDimConfig) -> list[dict[str, Any]]:
        n = int(task.value)
        data = make_nonstationary(n, config.n_obs, config.n_segments, config.n_per_segment,
                                  random_state=task.data_seed)
        common = dict(max_steps=config.steps, random_state=task.model_seed, device="cpu", **config.model)
        model = IVAE(n, **common) if task.method == "iVAE" else VAE(n, objective="elbo", **common)
        return [fit_and_score(task, model, data.x, data.u, data.s)]

    def plot(self, rows: list[dict[str, Any]], config: LatentDimConfig, ax: Any) -> None:
        ax.axhspan(0.93, 0.96, color="C0", alpha=0.12, label="iVAE (paper, range)")
        lines_by_method(ax, rows, xlabel=f"latent dimension n (d = {config.n_obs})",
                        paper={"VAE": {2: 0.87, 3: 0.94, 4: 0.83, 5: 0.68}})


EXPERIMENT = LatentDim()
