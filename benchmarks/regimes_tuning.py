"""Tuning runs of SwitchingTemporalFlow on the ported generators (tuning seeds 40xx, never
the reported 300x): one fit, its held-out MCC (and regime accuracy for CtrlNS), the MCC
before the rotation step, process CPU time.

    python benchmarks/regimes_tuning.py switching 4001 --steps 3000 --regimes 5
    python benchmarks/regimes_tuning.py energy-landscape 4001 --steps 3000 --regimes 2 [--given]

Rows are appended to benchmarks/results/regimes_tuning.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

from nica.datasets.energy_landscape import make_energy_landscape
from nica.datasets.switching import make_switching
from nica.metrics import mean_corr_coef
from nica.metrics.regimes import matched_accuracy
from nica.temporal import SwitchingTemporalFlow

OUT = Path(__file__).parent / "results" / "regimes_tuning.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", choices=["switching", "energy-landscape"])
    parser.add_argument("seed", type=int)
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--regimes", type=int, default=5)
    parser.add_argument("--given", action="store_true", help="energy-landscape: the well as u")
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--settings", default="{}", help="other SwitchingTemporalFlow settings, JSON")
    args = parser.parse_args()
    settings = json.loads(args.settings)
    if args.data == "switching":
        data = make_switching(random_state=args.seed)
        n, u, score = 8, None, lambda z: mean_corr_coef(data.s_test[:, 1:].reshape(-1, 8), z[:, 1:].reshape(-1, 8))
    else:
        data = make_energy_landscape(random_state=args.seed, n_test_trajectories=1)
        n, u = 6, (data.regimes if args.given else None)
        score = lambda z: mean_corr_coef(data.s_test[0, :5000], z[0, :5000])  # noqa: E731
    start = time.process_time()
    model = SwitchingTemporalFlow(n, n_regimes=args.regimes, max_steps=args.steps, random_state=args.model_seed,
                                  device="cpu", **settings).fit(data.x, u)
    cpu = time.process_time() - start
    mcc = score(model.transform(data.x_test))
    accuracy = float("nan")
    if args.data == "switching":
        accuracy = matched_accuracy(data.regimes_test[:, 1:].ravel(), model.predict_regime(data.x_test)[:, 1:].ravel())
    readout = model.module_.readout.clone()
    model.module_.readout = torch.eye(n)
    unrotated = score(model.transform(data.x_test))
    model.module_.readout = readout
    row = dict(data=args.data, seed=args.seed, model_seed=args.model_seed, steps=args.steps, regimes=args.regimes,
               given=args.given, settings=json.dumps(settings), rotation=model.rotation_rule_, mcc=round(mcc, 4),
               mcc_unrotated=round(unrotated, 4), regime_accuracy=round(accuracy, 4), cpu_seconds=round(cpu, 1))
    new = not OUT.exists()
    with open(OUT, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
