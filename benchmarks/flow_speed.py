"""The identifiable flow's MCC against time: step budgets of today's ``nica.IFlow`` beside
the flow it replaced (iFlow's spline autoregressive flow at 12,500 steps).

    python benchmarks/flow_speed.py --seeds 4001 4002 4003 --steps 1000 2000 3000 5000 8000
    python benchmarks/flow_speed.py --seeds 4001 --iflow-2020          # the old flow (~5 min a fit)
    python benchmarks/flow_speed.py --plot                              # figure from the CSV

Data: the paper's default benchmark (5 -> 5, 40 x 1,000 points, ``--setting`` for other
shapes). One fit at a time on one torch thread; each fit's wall time and CPU time (of this
process: robust to other work on the machine) are appended to ``--out`` as it finishes.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recovery import IFLOW_2020  # noqa: E402
from settings import SETTINGS, append_row  # noqa: E402

OUT = Path("benchmarks/results/flow_speed.csv")
FIGURE = Path("docs/figures/flow-mcc-vs-time.png")
FIELDS = ["setting", "data_seed", "model_seed", "flow", "max_steps", "n_restarts", "mcc", "log_likelihood",
          "seconds", "cpu_seconds"]


def fit_one(setting: str, seed: int, model_seed: int, params: dict) -> dict:
    from nica import IFlow, make_nonstationary, mean_corr_coef

    data = make_nonstationary(**SETTINGS[setting], random_state=seed)
    model = IFlow(data.s.shape[1], random_state=model_seed, device="cpu", **params)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data.x, data.u)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(setting=setting, data_seed=seed, model_seed=model_seed, flow=model.flow,
                max_steps=model.n_steps_, n_restarts=model.n_restarts,
                mcc=round(mean_corr_coef(data.s, model.transform(data.x)), 4),
                log_likelihood=round(model.log_likelihood_, 4), seconds=round(wall, 2), cpu_seconds=round(cpu, 2))


def plot(path: Path, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    fig, ax = plt.subplots(figsize=(6, 4))
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["flow"], r["max_steps"]), []).append(r)
    for flow, marker in (("invertible-mlp", "o"), ("spline-autoregressive", "s")):
        keys = sorted((k for k in groups if k[0] == flow), key=lambda k: int(k[1]))
        if not keys:
            continue
        sec = [np.median([float(r["cpu_seconds"]) for r in groups[k]]) for k in keys]
        mcc = [np.median([float(r["mcc"]) for r in groups[k]]) for k in keys]
        for k in keys:
            ax.scatter([float(r["cpu_seconds"]) for r in groups[k]], [float(r["mcc"]) for r in groups[k]],
                       marker=marker, alpha=0.3, color="C0" if flow == "invertible-mlp" else "C3")
        label = "IFlow (invertible MLP, 4 restarts)" if flow == "invertible-mlp" else "IFlow before (spline AR)"
        ax.plot(sec, mcc, marker=marker, color="C0" if flow == "invertible-mlp" else "C3", label=label)
        for s, m, k in zip(sec, mcc, keys):
            ax.annotate(f"{int(k[1]):,}", (s, m), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("CPU seconds per fit (one thread)")
    ax.set_ylabel("MCC")
    ax.set_title("Identifiable flow: MCC against time (labels: steps)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    print(f"wrote {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default="5-5", choices=sorted(SETTINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[4001, 4002, 4003])
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[1000, 2000, 3000, 5000, 8000])
    parser.add_argument("--iflow-2020", action="store_true", help="also fit the flow IFlow used before")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", action="store_true", help="only draw the figure from --out")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    if args.plot:
        plot(args.out, args.figure)
        return
    torch.set_num_threads(1)
    budgets = [dict(max_steps=s) for s in args.steps] + ([dict(IFLOW_2020)] if args.iflow_2020 else [])
    for seed in args.seeds:
        for model_seed in args.model_seeds:
            for params in budgets:
                row = fit_one(args.setting, seed, model_seed, params)
                append_row(args.out, FIELDS, row)
                print(row, flush=True)


if __name__ == "__main__":
    main()
