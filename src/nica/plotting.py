"""Figures: true sources against the matched recovered latents."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nica.datasets.io import atomic_write, refuse_existing
from nica.metrics import mean_corr_coef

MAX_POINTS = 3000


def plot_recovery(
    s: np.ndarray,
    latents: dict[str, np.ndarray],
    path: str | Path,
    *,
    random_state: int = 0,
    overwrite: bool = False,
) -> Path:
    """Scatter each true source against its matched latent, one row per model.

    s: ``(N, n)`` true sources; latents: model name -> ``(N, m)`` estimates (m >= n).
    Latents are matched and sign-aligned by MCC; the figure is written to ``path`` (PNG),
    atomically, replacing an existing file only with ``overwrite``.
    """
    refuse_existing(path, overwrite)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = s.shape[1]
    rng = np.random.default_rng(random_state)
    idx = rng.choice(len(s), size=min(MAX_POINTS, len(s)), replace=False)
    fig, axes = plt.subplots(len(latents), n, figsize=(2.4 * n, 2.4 * len(latents)), squeeze=False)
    for row, (name, z) in enumerate(latents.items()):
        res = mean_corr_coef(s, z, return_details=True)
        for i in range(n):
            ax = axes[row, i]
            zi = z[idx, res.permutation[i]] * np.sign(res.correlations[i] or 1.0)
            ax.scatter(s[idx, i], zi, s=2, alpha=0.3, color=f"C{row}", rasterized=True)
            ax.set_title(f"{name}: |r|={abs(res.correlations[i]):.2f}", fontsize=8)
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_ylabel(f"{name} (MCC {res.score:.2f})\nmatched latent", fontsize=8)
            if row == len(latents) - 1:
                ax.set_xlabel(f"true source {i}", fontsize=8)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), overwrite=overwrite)
    finally:
        plt.close(fig)
