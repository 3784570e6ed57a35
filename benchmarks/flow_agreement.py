"""Do single restarts of the flow err independently? K fits of ``make_nonstationary(n, n)``
that differ only in the model seed: each fit's MCC, the agreement between every pair of
fits (mean matched |correlation| of their rank-Gaussianised latents), and the MCC of
their ensemble (every fit's latents matched to the first fit's by the Hungarian
algorithm, sign-aligned and averaged). Independent errors would make the fits agree with
each other less than with the truth and the ensemble of K climb towards 1; a shared
error (the same wrong maximum) makes them agree more than with the truth and the
ensemble gain little (docs/tuning.md, round s6).

    python benchmarks/flow_agreement.py --n 50 --segments 100 --per-segment 1000 --data-seed 8051 --fits 4

Each fit is ``IFlow(n, n_restarts=1, prune_after=None, max_steps=--steps,
random_state=seed)``, one torch thread; its latents on the training rows are kept under
``--cache`` (reused when present, so that the analysis can be re-run without the fits).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import norm, rankdata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import add_data_arguments, load_data  # noqa: E402

import nica  # noqa: E402


def gaussianised(z: np.ndarray) -> np.ndarray:
    """Each column of z ``(N, n)`` replaced by the normal scores of its ranks."""
    return norm.ppf((np.apply_along_axis(rankdata, 0, z) - 0.5) / len(z))


def matched(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, float]:
    """``other`` ``(N, n)`` with its columns permuted and signed to match ``reference``'s,
    and the mean matched |correlation|."""
    n = reference.shape[1]
    c = np.corrcoef(reference.T, other.T)[:n, n:]
    rows, cols = linear_sum_assignment(-np.abs(c))
    return other[:, cols] * np.sign(c[rows, cols]), float(np.abs(c[rows, cols]).mean())


def ensemble(latents: list[np.ndarray]) -> np.ndarray:
    """The mean of the fits' latents ``(N, n)`` after matching each to the first."""
    return np.mean([latents[0]] + [matched(latents[0], z)[0] for z in latents[1:]], axis=0)


def fit_latents(x: np.ndarray, u: np.ndarray, n: int, seed: int, steps: int, path: Path) -> np.ndarray:
    """The latents ``(N, n)`` of one single-restart fit (cached at ``path``)."""
    if path.exists():
        return np.load(path)
    start = time.process_time()
    model = nica.IFlow(n, n_restarts=1, prune_after=None, max_steps=steps, random_state=seed).fit(x, u)
    latents = model.transform(x)
    np.save(path, latents)
    print(f"model seed {seed}: fitted in {time.process_time() - start:.0f} CPU s", flush=True)
    return latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--fits", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nica-agreement"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    name, x, u, s = load_data(args)
    args.cache.mkdir(parents=True, exist_ok=True)
    latents = [gaussianised(fit_latents(x, u, args.n, seed, args.steps,
                                        args.cache / f"{name}-{args.steps}-seed{seed}.npy"))
               for seed in range(args.fits)]
    for seed, z in enumerate(latents):
        print(f"model seed {seed}: MCC {float(nica.mean_corr_coef(s, z)):.4f}")
    for a, b in itertools.combinations(range(args.fits), 2):
        print(f"fits {a} and {b} agree: {matched(latents[a], latents[b])[1]:.3f}")
    for k in range(2, args.fits + 1):
        scores = [float(nica.mean_corr_coef(s, ensemble([latents[i] for i in subset])))
                  for subset in itertools.combinations(range(args.fits), k)]
        print(f"ensemble of {k}: MCC {np.mean(scores):.4f} (range {min(scores):.4f}-{max(scores):.4f})")


if __name__ == "__main__":
    main()
