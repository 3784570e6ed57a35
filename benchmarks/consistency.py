"""Does ``nica consistency`` tell identifiable data from data that are not?

    python benchmarks/consistency.py --seeds 7101 7102 7103 --kinds identifiable stationary --rotate both  # tuning
    python benchmarks/consistency.py --seeds 8001 8002 8003 8004 8005                               # report

Data: the README's 5 -> 5 setting (40 segments x 1,000 points, u = segment, xtanh mixing
of 3 layers) with the data seed ("identifiable"), and the same generator with the
sources' scales fixed at 1 in every segment ("stationary": stationary Gaussian sources
under the same kind of mixing; the segment labels u are then random labels that say
nothing about the sources, and nothing is identifiable). For each data set,
``nica.consistency`` with 3 model seeds (0, 1, 2), the default model (the flow) and both
references (u shuffled, the VAE); with ``--rotate both`` also without the rotated inputs
(seeds then share the flow's start near the identity). Besides the agreement between
seeds, each fit's latents are scored against the true sources (MCC), which a user does
not have. Two fits at a time, one torch thread each; each row is appended to --out as
soon as its data set is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from nica import consistency, make_nonstationary, mean_corr_coef

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import record_row  # noqa: E402

OUT = Path("benchmarks/results/consistency.csv")
FIELDS = ["kind", "data_seed", "rotated", "holdout", "mcc", "mcc_std", "weak_mcc", "min_component",
          "shuffled_u_mcc", "vae_mcc", "true_mcc", "true_mcc_min", "not_replicating", "seconds_per_fit_cpu",
          "wall_seconds"]
KINDS = {"identifiable": {}, "stationary": {"scale_bounds": (1.0, 1.0)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="data seeds")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=sorted(KINDS))
    parser.add_argument("--rotate", choices=["auto", "both"], default="auto",
                        help="auto: as nica consistency does; both: also with rotate=False")
    parser.add_argument("--model-seeds", type=int, default=3)
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for seed in args.seeds:
        for kind in args.kinds:
            data = make_nonstationary(5, random_state=seed, **KINDS[kind])
            for rotate in (["auto", False] if args.rotate == "both" else ["auto"]):
                start = time.perf_counter()
                refs = ("shuffled-u", "vae") if rotate == "auto" else ()
                result = consistency(data.x, data.u, 5, seeds=args.model_seeds, reference=refs, rotate=rotate,
                                     holdout=args.holdout, n_jobs=args.jobs, random_state=seed)
                rows = _eval_rows(len(data.x), args.holdout, seed)
                true = [mean_corr_coef(data.s[rows], z) for z in result.latents] if rows is not None else [np.nan]
                record_row(args.out, FIELDS, {
                    "kind": kind, "data_seed": seed, "rotated": result.rotated, "holdout": args.holdout,
                    "mcc": result.mcc, "mcc_std": result.agreement.mcc_std, "weak_mcc": result.weak_mcc,
                    "min_component": float(result.per_component.min()),
                    "shuffled_u_mcc": result.references["shuffled-u"].mcc if refs else np.nan,
                    "vae_mcc": result.references["vae"].mcc if refs else np.nan,
                    "true_mcc": float(np.mean(true)), "true_mcc_min": float(np.min(true)),
                    "not_replicating": " ".join(f"z{i + 1}" for i in result.not_replicating()),
                    "seconds_per_fit_cpu": float(np.mean(result.cpu_seconds["model"])),
                    "wall_seconds": time.perf_counter() - start,
                })


def _eval_rows(n_rows: int, holdout: float, seed: int) -> np.ndarray | None:
    """The rows ``consistency`` measured on (all of them without a holdout); None when they
    cannot be rebuilt here (with a holdout the split is drawn inside)."""
    return np.arange(n_rows) if holdout == 0 else None


if __name__ == "__main__":
    main()
