"""Decoder variance for choosing n by the ELBO: fixed 0.1 against learned (tuning seeds only).

    OMP_NUM_THREADS=1 python benchmarks/select_dim_tuning.py --decoder-var learned --seeds 4001 4002 4003
    OMP_NUM_THREADS=1 python benchmarks/select_dim_tuning.py --decoder-var 0.1 --seeds 4001 4002 4003
    OMP_NUM_THREADS=1 python benchmarks/select_dim_tuning.py --decoder-var learned --noise 0.1

Data as ``nica reproduce select-dim`` (5 sources in 10 observations, 40 x 1,000 points;
``--noise`` adds Gaussian noise of that std to x), on data seeds apart from the reported
3001-3015. 20% of the rows (a fixed random split) are held out; ``nica.IVAE`` with
n_components in ``--dims`` is fitted on the rest with the plain ELBO, model seed 1, and
scored by its ELBO per sample on both parts. Each fit is appended to
``benchmarks/results/select-dim-tuning.csv`` as soon as it is done; the last lines print
each seed's knee and argmax choice.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nica import IVAE
from nica.datasets import make_nonstationary
from nica.metrics import mean_corr_coef
from nica.model_selection import select_argmax, select_knee

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/select-dim-tuning.csv")
FIELDS = ["data_seed", "noise_std", "decoder_var", "n_components", "train_elbo", "heldout_elbo",
          "heldout_elbo_se", "mcc", "seconds"]
TRUE_N, N_OBS = 5, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder-var", default="learned", help="'learned' or a fixed variance")
    parser.add_argument("--dims", type=int, nargs="+", default=[3, 4, 5, 6, 7, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003, 4004, 4005, 4006])
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    decoder_var = args.decoder_var if args.decoder_var == "learned" else float(args.decoder_var)
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_nonstationary(TRUE_N, N_OBS, 40, 1000, noise_std=args.noise, random_state=seed)
        held_out = np.random.default_rng(0).random(len(data.x)) < 0.2
        curve = []
        for n in args.dims:
            model = IVAE(n, objective="elbo", decoder_var=decoder_var, random_state=1, device="cpu")
            start = time.perf_counter()
            model.fit(data.x[~held_out], data.u[~held_out])
            seconds = time.perf_counter() - start
            z = model.transform(data.x, data.u)
            mcc = mean_corr_coef(data.s, z) if n >= TRUE_N else mean_corr_coef(z, data.s)
            test = model.score_samples(data.x[held_out], data.u[held_out])
            row = dict(data_seed=seed, noise_std=args.noise, decoder_var=args.decoder_var, n_components=n,
                       train_elbo=round(model.score(data.x[~held_out], data.u[~held_out]), 6),
                       heldout_elbo=round(float(test.mean()), 6),
                       heldout_elbo_se=round(float(test.std() / np.sqrt(len(test))), 6),
                       mcc=round(mcc, 6), seconds=round(seconds, 1))
            curve.append(row["train_elbo"])
            append_row(args.out, FIELDS, row)
            print(row, flush=True)
        print(f"data seed {seed}: knee {select_knee(args.dims, curve)}, argmax {select_argmax(args.dims, curve)}",
              flush=True)


if __name__ == "__main__":
    main()
