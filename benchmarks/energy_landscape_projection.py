"""Does the flow's input hold every latent? MOSAIC's energy landscape, per data seed.

``SwitchingTemporalFlow(6)`` on MOSAIC's 30 observations sees the top 6 principal
components of x. A latent whose mixing terms are small next to the others' nonlinear
harmonics can fall outside that subspace, and then no model on top can recover it. For
each data seed this prints, for every true latent, the R^2 of its best polynomial (degree
3) of the top k principal components, k = 6, 8, 10, 12, and of a quadratic of all 30
standardised features, on 100,000 training frames (docs/results.md, energy-landscape).

    python benchmarks/energy_landscape_projection.py 3002 3005 4007 3001 4001

With ``--exponents``, it prints instead, per data seed, the R^2 of the weakest latent from
the top 6 components after each feature is divided by sd**p (``SwitchingTemporalFlow``'s
``feature_scaling``: p = 0 ``"none"``, 1/2 ``"sqrt-std"``, 1 ``"std"``), one column per p
(docs/results.md, energy-landscape; tuning seeds only):

    python benchmarks/energy_landscape_projection.py 4001 4002 ... 4016 --exponents 0 0.25 0.5 0.75 1

With ``--subspaces``, it prints per data seed the R^2 of every latent from the 6
components of ``InputProjection.fit(x, 6, feature_scaling="sqrt-std", subspace=S)``, S =
``"principal"`` and ``"deflation"`` (``SwitchingTemporalFlow``'s ``subspace``; issue 21's
fourth round, tuning seeds only):

    python benchmarks/energy_landscape_projection.py 4001 4002 ... 4016 --subspaces
"""

from __future__ import annotations

import argparse

import numpy as np

from nica.datasets.energy_landscape import LATENT_NAMES
from nica.experiments.energy_landscape import _data
from nica.flows.deflation import monomials
from nica.flows.projection import SUBSPACES, InputProjection

ROWS = 100_000
COMPONENTS = (6, 8, 10, 12)


def r_squared(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """R^2 of the least-squares fit of each target column on ``features``."""
    coef = np.linalg.lstsq(features, targets, rcond=None)[0]
    return 1 - ((targets - features @ coef) ** 2).mean(0) / targets.var(0)


def weakest_by_scaling(x: np.ndarray, s: np.ndarray, exponents: list[float], k: int = 6) -> list[float]:
    """For each exponent p, the smallest R^2 over the latents s ``(N, n)`` of a cubic of the
    top k principal components of the centred x ``(N, d)`` divided feature-wise by sd**p."""
    weakest = []
    for power in exponents:
        y = x / x.std(0) ** power
        _, vectors = np.linalg.eigh(np.cov(y.T))
        pcs = y @ vectors[:, ::-1][:, :k]
        weakest.append(float(r_squared(monomials(pcs / pcs.std(0), 3), s).min()))
    return weakest


def latents_by_subspace(x: np.ndarray, s: np.ndarray, k: int = 6) -> dict[str, np.ndarray]:
    """For each ``subspace`` of :class:`InputProjection`, the R^2 ``(n,)`` of every latent of
    s ``(N, n)`` from a cubic of the flow's input (k components of x ``(N, d)``, features
    divided by sd**0.5 first, as ``SwitchingTemporalFlow`` does by default)."""
    found = {}
    for subspace in SUBSPACES:
        y = InputProjection.fit(x, k, feature_scaling="sqrt-std", subspace=subspace).apply(x).astype(np.float64)
        found[subspace] = r_squared(monomials(y, 3), s)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--exponents", type=float, nargs="+",
                        help="print the weakest latent's R^2 from the top 6 components per feature scaling sd**p")
    parser.add_argument("--subspaces", action="store_true",
                        help="print every latent's R^2 from the 6 components of each subspace rule")
    args = parser.parse_args()
    if args.subspaces:
        print("seed  subspace    " + "  ".join(f"{name:>5}" for name in LATENT_NAMES) + "  weakest")
    elif args.exponents:
        print("seed  " + "  ".join(f"p={p:<4g}" for p in args.exponents))
    else:
        print("seed  k   " + "  ".join(f"{name:>5}" for name in LATENT_NAMES))
    for seed in args.seeds:
        data = _data(seed, 9, 2_000_000)
        x = data.x.reshape(-1, data.x.shape[-1]).astype(np.float64)
        s = data.s.reshape(-1, data.s.shape[-1]).astype(np.float64)
        rows = np.random.default_rng(0).choice(len(x), min(ROWS, len(x)), replace=False)
        x, s = x[rows] - x[rows].mean(0), s[rows]
        if args.subspaces:
            for subspace, r2 in latents_by_subspace(x, s).items():
                print(f"{seed}  {subspace:<10}  " + "  ".join(f"{v:5.3f}" for v in r2) + f"  {r2.min():5.3f}",
                      flush=True)
            continue
        if args.exponents:
            print(f"{seed}  " + "  ".join(f"{v:6.3f}" for v in weakest_by_scaling(x, s, args.exponents)), flush=True)
            continue
        _, vectors = np.linalg.eigh(np.cov(x.T))
        vectors = vectors[:, ::-1]
        for k in COMPONENTS:
            pcs = x @ vectors[:, :k]
            r2 = r_squared(monomials(pcs / pcs.std(0), 3), s)
            print(f"{seed}  {k:>2}  " + "  ".join(f"{v:5.3f}" for v in r2))
        r2 = r_squared(monomials(x / x.std(0), 2), s)
        print(f"{seed} all  " + "  ".join(f"{v:5.3f}" for v in r2) + "  (quadratic of all features)", flush=True)


if __name__ == "__main__":
    main()
