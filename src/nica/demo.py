"""The main job: the paper's default benchmark, what ``nica fit`` fits by default (the
identifiable flow, for these d = n data) beside the iVAE and a plain VAE, in one run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nica.datasets import make_nonstationary
from nica.datasets.io import refuse_existing
from nica.ivae.estimator import IVAE, VAE
from nica.metrics import mean_corr_coef, weak_mean_corr_coef
from nica.model_choice import make_model
from nica.plotting import plot_recovery

FIGURE = "recovery.png"


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 2020,
    quick: bool = False,
    echo: Callable[[str], None] = print,
    overwrite: bool = False,
) -> dict[str, dict[str, float]]:
    """Simulate 5 -> 5 sources (40 segments x 1000 points), fit the default model of
    ``nica fit`` (``model="auto"``), the iVAE and a VAE, report.

    Returns model name -> {"mcc", "weak_mcc", "seconds"} and writes ``recovery.png`` in
    ``out_dir``; an existing figure is replaced only with ``overwrite`` (checked first).
    ``quick`` shrinks the problem and the training for smoke tests.
    """
    figure = Path(out_dir) / FIGURE
    refuse_existing(figure, overwrite)
    n_per_segment, steps = (100, 200) if quick else (1000, None)
    data = make_nonstationary(5, n_segments=40, n_per_segment=n_per_segment, random_state=seed)
    echo(f"data: {data.x.shape[0]} points, 5 sources -> 5 observations, 40 segments, "
         "3-layer xtanh mixing (the paper's default benchmark)")
    results: dict[str, dict[str, float]] = {}
    latents = {}
    models = {"nica fit (auto)": lambda: make_model("auto", 5, data.x, random_state=0, verbose=True),
              "iVAE": lambda: IVAE(5, random_state=0, verbose=True),
              "VAE": lambda: VAE(5, random_state=0, verbose=True)}
    for name, build in models.items():
        model = build()
        if steps is not None:
            model.set_params(max_steps=steps)
        echo(f"fitting {name}: {type(model).__name__} ...")
        z = model.fit(data.x, data.u).transform(data.x, data.u)
        latents[name] = z
        results[name] = {
            "mcc": mean_corr_coef(data.s, z),
            "weak_mcc": weak_mean_corr_coef(data.s, z),
            "seconds": model.fit_time_,
        }
    echo("")
    width = max(map(len, results))
    echo(f"{'model':<{width}} {'MCC':>6} {'weak MCC':>9} {'fit time':>9}")
    for name, r in results.items():
        echo(f"{name:<{width}} {r['mcc']:>6.3f} {r['weak_mcc']:>9.3f} {r['seconds']:>8.1f}s")
    echo("(one seeded fit each: another CPU's float rounding moves the iVAE's and the VAE's MCC as "
         "another seed would, the flow's far less; docs/reproducibility.md)")
    path = plot_recovery(data.s, latents, figure, overwrite=overwrite)
    echo(f"\nfigure: {path.resolve()}")
    return results
