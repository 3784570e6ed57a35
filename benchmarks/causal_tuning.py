"""NonSENS on pairs: which unmixing settings recover the direction (tuning seeds only).

    OMP_NUM_THREADS=1 python benchmarks/causal_tuning.py --variants ivae tcl --seeds 4001 4002 4003
    OMP_NUM_THREADS=1 python benchmarks/causal_tuning.py --variants ivae-restarts4 --cache /tmp/causal-cache

Data as the pairs of ``nica reproduce causal`` at 48 segments of 500 points (layers
``1 + seed % 5``), on data seeds apart from the reported 3001-...; each unmixing is fitted
directly with ``random_state`` = the data seed, then every variable is tested against
every recovered component (HSIC given the segment, the default budget, test seed 0) and
the order read as :class:`nica.causal.NonSENS` reads it. ``--cache DIR`` keeps each fit's
latents (``DIR/VARIANT-MODULATION-SEED.npz``) and reuses them, so the tests can be re-read
without refitting. One row per fit is appended to ``benchmarks/results/causal_tuning.csv``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica import IVAE, TCL
from nica.causal import adjust_pvalues, causal_order, hsic_matrix, make_causal
from nica.metrics import mean_corr_coef

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/causal_tuning.csv")
FIELDS = ["variant", "modulation", "data_seed", "layers", "mcc", "correct", "strict", "decided", "seconds"]
#: variant name -> (estimator class, its arguments besides n and random_state)
VARIANTS: dict[str, tuple[type, dict[str, Any]]] = {
    "ivae": (IVAE, {}),
    "ivae-restarts4": (IVAE, {"n_restarts": 4}),
    "ivae-laplace": (IVAE, {"prior": "laplace"}),
    "ivae-decoder-var-0.01": (IVAE, {"decoder_var": 0.01}),
    "ivae-decoder-var-learned": (IVAE, {"decoder_var": "learned"}),
    "tcl": (TCL, {}),
}
#: file-name tags of the cache (the names the first runs used)
CACHE_TAGS = {"ivae": "ivae", "ivae-restarts4": "ivaer4", "ivae-laplace": "ivaelap",
              "ivae-decoder-var-0.01": "ivaedv001", "ivae-decoder-var-learned": "ivaedvl", "tcl": "tcl"}


def latents(variant: str, modulation: str, seed: int, data: Any, cache: Path | None) -> tuple[np.ndarray, float]:
    path = None if cache is None else cache / f"{CACHE_TAGS[variant]}-{modulation}-{seed}.npz"
    if path is not None and path.exists():
        return np.load(path)["z"], float("nan")
    cls, params = VARIANTS[variant]
    if cls is IVAE and modulation == "mean":
        params = {**params, "prior_mean": True}
    model = cls(2, random_state=seed, device="cpu", **params)
    start = time.perf_counter()
    model.fit(data.x, data.u)
    seconds = time.perf_counter() - start
    z = model.transform(data.x, data.u)
    if path is not None:
        np.savez(path, x=data.x, u=data.u, s=data.s, z=z, order=data.order)
    return z, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["ivae", "tcl"])
    parser.add_argument("--modulations", nargs="+", choices=["variance", "mean"], default=["variance"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003])
    parser.add_argument("--cache", type=Path, help="keep / reuse each fit's latents here")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for modulation in args.modulations:
        for seed in args.seeds:
            layers = 1 + seed % 5
            data = make_causal(2, n_segments=48, n_per_segment=500, n_layers=layers, modulation=modulation,
                               random_state=seed)
            for variant in args.variants:
                z, seconds = latents(variant, modulation, seed, data, args.cache)
                tests = hsic_matrix(data.x, z, groups=data.u, random_state=0)
                result = causal_order(tests.log_pvalue, adjust_pvalues(tests.pvalue), normalized=tests.normalized)
                target = np.abs(data.s) if variant == "tcl" else data.s
                row = dict(variant=variant, modulation=modulation, data_seed=seed, layers=layers,
                           mcc=round(mean_corr_coef(target, z), 4),
                           correct=int(tuple(int(i) for i in result.order) == data.direction),
                           strict=int(result.direction == data.direction), decided=int(result.decided),
                           seconds=round(seconds, 1))
                append_row(args.out, FIELDS, row)
                print(row, flush=True)


if __name__ == "__main__":
    main()
