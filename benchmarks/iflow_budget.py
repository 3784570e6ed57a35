"""Training budget of the identifiable flow on the iFlow protocol (tuning seeds only).

    OMP_NUM_THREADS=1 python benchmarks/iflow_budget.py --steps 5000 12500 --seeds 4001 4002 4003
    OMP_NUM_THREADS=1 python benchmarks/iflow_budget.py --steps 12500 --lr 2e-3 --seeds 4001

Data as ``nica reproduce iflow`` (n = d = 5, 40 x 1,000 points, uncentered), but on data
seeds apart from the reported 3001-3005; ``nica.IFlow`` with its defaults except
``max_steps`` (and ``learning_rate``), seeded with the data seed as in the experiment.
One fit at a time on one torch thread; each fit is appended to
``benchmarks/results/iflow_budget.csv`` as soon as it is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from nica.datasets import make_nonstationary
from nica.flows import IFlow
from nica.metrics import mean_corr_coef

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/iflow_budget.csv")
FIELDS = ["data_seed", "model_seed", "max_steps", "learning_rate", "mcc", "log_likelihood", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[5_000, 12_500])
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_nonstationary(5, n_segments=40, n_per_segment=1000, uncentered=True, random_state=seed)
        for lr in args.lr:
            for steps in args.steps:
                model = IFlow(5, max_steps=steps, learning_rate=lr, random_state=seed, device="cpu")
                start = time.perf_counter()
                model.fit(data.x, data.u)
                seconds = time.perf_counter() - start
                row = dict(data_seed=seed, model_seed=seed, max_steps=steps, learning_rate=lr,
                           mcc=round(mean_corr_coef(data.s, model.transform(data.x)), 6),
                           log_likelihood=round(model.score(data.x, data.u), 6), seconds=round(seconds, 1))
                append_row(args.out, FIELDS, row)
                print(row, flush=True)


if __name__ == "__main__":
    main()
