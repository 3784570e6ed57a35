"""NonSENS on pairs: how the decision depends on the HSIC test's sample (tuning seeds only).

    OMP_NUM_THREADS=1 python benchmarks/causal_tests.py --seeds 4001 4002 --cache /tmp/causal-cache

The fits of ``benchmarks/causal_tuning.py`` (same data, same unmixings, its ``--cache``),
each tested given the segment at several test budgets ``max_test_samples`` (the rows of a
pooled test of that cost, spread over the segments): does the iVAE's unmixing pass
NonSENS's rule (x_cause ⊥ s_effect, x_effect not ⊥ s_cause, Bonferroni over the 4 tests
at alpha = 0.05) on a smaller test, and does TCL's? One row per fit and budget is appended
to ``benchmarks/results/causal_tests.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from nica.causal import adjust_pvalues, causal_order, hsic_matrix, make_causal
from nica.metrics import mean_corr_coef

sys.path.insert(0, str(Path(__file__).resolve().parent))
from causal_tuning import VARIANTS, latents  # noqa: E402
from settings import record_row  # noqa: E402

OUT = Path("benchmarks/results/causal_tests.csv")
FIELDS = ["variant", "modulation", "data_seed", "layers", "mcc", "max_test_samples", "n_test_samples", "correct",
          "strict", "decided", "min_cross_pvalue", "max_cross_pvalue"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["ivae", "tcl"])
    parser.add_argument("--modulations", nargs="+", choices=["variance", "mean"], default=["variance"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(4001, 4011)))
    parser.add_argument("--budgets", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--cache", type=Path, help="keep / reuse each fit's latents here")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    for modulation in args.modulations:
        for seed in args.seeds:
            layers = 1 + seed % 5
            data = make_causal(2, n_segments=48, n_per_segment=500, n_layers=layers, modulation=modulation,
                               random_state=seed)
            for variant in args.variants:
                z, _ = latents(variant, modulation, seed, data, args.cache)
                target = np.abs(data.s) if variant == "tcl" else data.s
                mcc = mean_corr_coef(target, z)
                for budget in args.budgets:
                    tests = hsic_matrix(data.x, z, groups=data.u, max_samples=budget, random_state=0)
                    result = causal_order(tests.log_pvalue, adjust_pvalues(tests.pvalue),
                                          normalized=tests.normalized)
                    # the tests of each variable against the component not matched to it
                    cross = [tests.pvalue[i, j] for i in range(2) for j in range(2) if j != result.disturbance[i]]
                    record_row(args.out, FIELDS, dict(
                        variant=variant, modulation=modulation, data_seed=seed, layers=layers, mcc=mcc,
                        max_test_samples=budget, n_test_samples=tests.n_samples,
                        correct=int(tuple(int(i) for i in result.order) == data.direction),
                        strict=int(result.direction == data.direction), decided=int(result.decided),
                        min_cross_pvalue=float(min(cross)), max_cross_pvalue=float(max(cross))), digits=6)


if __name__ == "__main__":
    main()
