"""The figure of :func:`nica.consistency`: each latent's agreement across seeds, the model
beside the references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nica.datasets.io import atomic_write, refuse_existing

#: how the references are named in the figure and in the text of the result
REFERENCE_LABELS = {"shuffled-u": "same model, u shuffled", "vae": "VAE (no u)"}


def plot_consistency(result: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """``result`` (a :class:`nica.replication.ConsistencyResult`) as bars: the agreement
    across seeds of each latent, for the model and for every reference (each group's
    latents ordered from most to least consistent, since the latents of different models
    do not correspond); dashed lines: each group's MCC between
    seeds; dotted: the threshold below which a component is said not to replicate. The
    model's bars are labelled with its latents' names. Written to ``path`` (PNG),
    atomically."""
    refuse_existing(path, overwrite)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {f"{result.model} (u as given)": result.agreement,
              **{REFERENCE_LABELS.get(name, name): a for name, a in result.references.items()}}
    n = result.n_components
    width = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.7 * n * len(groups) ** 0.5), 4.4))
    rank = np.arange(n)
    model_order = np.argsort(-result.per_component, kind="stable")
    for g, (label, agreement) in enumerate(groups.items()):
        values = np.sort(agreement.per_component)[::-1]
        colour = f"C{g}"
        offset = (g - (len(groups) - 1) / 2) * width
        ax.bar(rank + offset, values, width=width * 0.95, color=colour, alpha=0.9 if g == 0 else 0.55,
               label=f"{label}: MCC {agreement.mcc:.3f}")
        ax.axhline(agreement.mcc, color=colour, ls="--", lw=1)
    ax.axhline(result.chance_mcc, color="grey", ls="-.", lw=1,
               label=f"chance (latents fixed up to a rotation): {result.chance_mcc:.3f}")
    ax.axhline(result.threshold, color="black", ls=":", lw=1, label=f"threshold {result.threshold:.2f}")
    ax.set_xticks(rank)
    ax.set_xticklabels([f"z{i + 1}" for i in model_order])
    ax.set_xlabel("latent (the model's, most to least consistent; references' bars in their own order)", fontsize=8)
    ax.set_ylabel("agreement across seeds\n(|corr| with its match)")
    ax.set_ylim(0, 1.05)
    seeds = len(result.seeds)
    rows = (f"{result.n_eval_rows} new rows" if result.new_rows else
            f"{result.n_eval_rows} held-out rows" if result.holdout else f"{result.n_eval_rows} rows")
    ax.set_title(f"Consistency over {seeds} seeds, {rows}" + (", rotated inputs" if result.rotated else ""),
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), overwrite=overwrite)
    finally:
        plt.close(fig)


__all__ = ["plot_consistency"]
