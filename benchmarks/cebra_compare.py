"""nica's iVAE beside CEBRA on the paper's synthetic benchmark: same data, same u.

    OMP_NUM_THREADS=1 python benchmarks/cebra_compare.py --seeds 4001 4002 \\
        --methods cebra-user cebra-mse cebra-t0.1 --out benchmarks/results/cebra-tuning.csv
    OMP_NUM_THREADS=1 python benchmarks/cebra_compare.py --seeds 3001 3002 3003 3004 3005 \\
        --methods ivae cebra-user cebra-mse --out benchmarks/results/cebra.csv

Data: ``make_nonstationary(5, n_segments=40, n_per_segment=1000)`` (the README's 5 -> 5
setting) with the data seed. u is the segment label: nica's default iVAE takes it as its
categorical u; CEBRA as its discrete label (positive pairs drawn from the same segment).
CEBRA runs as a user would (``offset1-model``: one time point in, as the iVAE's encoder;
5,000 iterations, batch 512, 5 output dimensions) and in the variants the tuning seeds
(4001-4002, never the reported 3001-3005) compare. Scores on the fitted rows, as the
paper's protocol: MCC and weak (CCA) MCC against the sources s, and the same against s²
(features of the segment's variance, what a contrastive model of variance-modulated
segments may learn instead of s). One fit at a time on one torch thread; each fit is
appended to --out when done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nica import IVAE, make_nonstationary, mean_corr_coef, weak_mean_corr_coef

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import record_row  # noqa: E402

FIELDS = ["data_seed", "method", "mcc", "weak_mcc", "mcc_s2", "weak_mcc_s2", "seconds"]
#: CEBRA settings by name: the user's run and the variants compared on the tuning seeds
CEBRA = {
    "cebra-user": dict(model_architecture="offset1-model", distance="cosine", temperature=1.0),
    "cebra-mse": dict(model_architecture="offset1-model-mse", distance="euclidean", temperature=1.0),
    "cebra-t0.1": dict(model_architecture="offset1-model", distance="cosine", temperature=0.1),
}
COMMON = dict(output_dimension=5, batch_size=512, max_iterations=5_000, device="cpu", verbose=False)


def fit(method: str, x: np.ndarray, u: np.ndarray, seed: int) -> np.ndarray:
    """Latents of the fitted rows ``(N, 5)``."""
    if method == "ivae":
        return IVAE(5, random_state=seed, device="cpu").fit(x, u).transform(x)
    import cebra

    torch.manual_seed(seed)  # CEBRA draws initial weights and batches from the global RNGs
    np.random.seed(seed)
    model = cebra.CEBRA(**{**COMMON, **CEBRA[method]})
    return model.fit(x, u).transform(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", default=["ivae", "cebra-user"], choices=["ivae", *CEBRA])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_nonstationary(5, n_segments=40, n_per_segment=1_000, random_state=seed)
        squares = data.s ** 2
        for method in args.methods:
            start = time.perf_counter()
            z = fit(method, data.x, data.u, seed)
            seconds = time.perf_counter() - start
            row = {"data_seed": seed, "method": method, "mcc": mean_corr_coef(data.s, z),
                   "weak_mcc": weak_mean_corr_coef(data.s, z), "mcc_s2": mean_corr_coef(squares, z),
                   "weak_mcc_s2": weak_mean_corr_coef(squares, z), "seconds": seconds}
            record_row(args.out, FIELDS, row)


if __name__ == "__main__":
    main()
