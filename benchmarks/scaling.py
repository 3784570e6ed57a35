"""The flow's MCC and time against the latent dimension n (issue 22).

    python benchmarks/scaling.py --n 5 10 20 30 50 --data-seeds 9001 9002 --configs flow
    python benchmarks/scaling.py --n 20 --data-seeds 8001 --configs 'flow:{"max_steps": 20000}'
    python benchmarks/scaling.py --plot                                  # figure from the CSV

Data: the paper's generator (:func:`nica.make_nonstationary`, REFERENCE §3) with n sources
mixed into d = n observations (``--obs`` for d > n), ``--segments`` segments (default
max(40, 2n): the theory needs at least 2n + 1 label values for a mean- and scale-modulated
prior) of ``--per-segment`` points. One fit at a time on one torch thread; each fit's wall
and process CPU time, its MCC, its exact training log-likelihood and, for d = n, the
log-likelihood of the true model on the same rows (how far the fit is from the truth)
are appended to ``--out`` as it finishes.

Configs: ``flow`` (``nica.IFlow`` with its defaults), ``auto`` (what ``nica fit`` runs,
:func:`nica.fit_model`), ``ivae`` (``nica.IVAE`` defaults), each optionally with JSON
overrides (``flow:{"batch_size": 1024}``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import append_row  # noqa: E402

OUT = Path("benchmarks/results/scaling.csv")
FIGURE = Path("docs/figures/flow-mcc-vs-n.png")
FIELDS = ["n", "d", "segments", "per_segment", "base_noise", "data_seed", "config", "model_seed", "model",
          "mcc", "log_likelihood", "true_log_likelihood", "steps", "stopped_early", "seconds", "cpu_seconds",
          "overrides"]


def true_log_likelihood(data) -> float:
    """Mean log p(x | u) per row under the generating model (d = n, noise-free, Gaussian or
    Laplace sources): log p(s | u) - log |det dx/ds|."""
    import numpy as np

    s = data.s.astype(np.float64)
    loc, scale = data.means[data.u], data.scales[data.u]
    if data.base_noise == "laplace":
        b = scale / np.sqrt(2.0)
        log_ps = (-np.log(2 * b) - np.abs(s - loc) / b).sum(1)
    else:
        log_ps = (-0.5 * np.log(2 * np.pi * scale**2) - 0.5 * ((s - loc) / scale) ** 2).sum(1)
    log_det, h = 0.0, s
    for layer, a in enumerate(data.mixing):
        log_det = log_det + np.linalg.slogdet(a)[1]
        h = h @ a
        if layer < len(data.mixing) - 1:
            if data.activation == "xtanh":
                log_det = log_det + np.log(1.0 - np.tanh(h) ** 2 + data.slope).sum(1)
                h = np.tanh(h) + data.slope * h
            else:
                raise ValueError("true_log_likelihood supports xtanh mixing")
    return float(np.mean(log_ps - log_det))


def make_data(n: int, d: int, segments: int, per_segment: int, base_noise: str, seed: int):
    from nica import make_nonstationary

    data = make_nonstationary(n, d, n_segments=segments, n_per_segment=per_segment, base_noise=base_noise,
                              random_state=seed)
    data.base_noise = base_noise
    return data


def fit_one(n: int, d: int, segments: int, per_segment: int, base_noise: str, seed: int, config: str,
            overrides: dict, model_seed: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from nica import IFlow, IVAE, mean_corr_coef
    from nica.model_choice import make_model

    data = make_data(n, d, segments, per_segment, base_noise, seed)
    name = config.split(":")[0]
    common = dict(random_state=model_seed, device="cpu", **overrides)
    model = (make_model("auto", n, data.x, **common) if name == "auto"
             else IVAE(n, **common) if name == "ivae" else IFlow(n, **common))
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data.x, data.u)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    z = model.transform(data.x)
    score = model.log_likelihood_ if hasattr(model, "log_likelihood_") else model.elbo_
    truth = true_log_likelihood(data) if d == n else float("nan")
    return dict(n=n, d=d, segments=segments, per_segment=per_segment, base_noise=base_noise, data_seed=seed,
                config=config, model_seed=model_seed, model=type(model).__name__,
                mcc=round(mean_corr_coef(data.s, z), 4), log_likelihood=round(score, 4),
                true_log_likelihood=round(truth, 4), steps=model.n_steps_,
                stopped_early=bool(model.history_.stopped_early), seconds=round(wall, 2),
                cpu_seconds=round(cpu, 2), overrides=json.dumps(overrides, sort_keys=True))


def plot(path: Path, figure: Path, configs: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if configs:
        rows = [r for r in rows if r["config"] in configs]
    fig, (ax_mcc, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
    for config in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == config and r["d"] == r["n"]]
        ns = sorted({int(r["n"]) for r in rs})
        if not ns:
            continue
        mcc = [[float(r["mcc"]) for r in rs if int(r["n"]) == n] for n in ns]
        cpu = [[float(r["cpu_seconds"]) for r in rs if int(r["n"]) == n] for n in ns]
        label = config.split(":")[0]
        ax_mcc.plot(ns, [np.median(m) for m in mcc], "o-", label=label)
        for n, m in zip(ns, mcc):
            ax_mcc.scatter([n] * len(m), m, s=8, color="grey", alpha=0.6)
        ax_time.plot(ns, [np.median(c) for c in cpu], "o-", label=label)
    ax_mcc.set(xlabel="latent dimension n (= observed d)", ylabel="MCC", title="recovery against n")
    ax_time.set(xlabel="latent dimension n", ylabel="CPU s per fit (one thread)", title="time against n")
    ax_mcc.grid(alpha=0.3)
    ax_time.grid(alpha=0.3)
    ax_mcc.legend()
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    print(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", nargs="+", type=int, default=[5, 10, 20, 30, 50])
    parser.add_argument("--obs", type=int, default=None, help="observed dimension d (default: n)")
    parser.add_argument("--segments", type=int, default=None, help="default max(40, 2n)")
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--base-noise", default="gauss")
    parser.add_argument("--data-seeds", nargs="+", type=int, default=[9001])
    parser.add_argument("--model-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--configs", nargs="+", default=["flow"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--plot", action="store_true", help="draw the figure from --out and exit")
    args = parser.parse_args()
    if args.plot:
        plot(args.out, FIGURE)
        return
    for n in args.n:
        segments = args.segments or max(40, 2 * n)
        for seed in args.data_seeds:
            for spec in args.configs:
                overrides = json.loads(spec.partition(":")[2]) if ":" in spec else {}
                for model_seed in args.model_seeds:
                    row = fit_one(n, args.obs or n, segments, args.per_segment, args.base_noise, seed, spec,
                                  overrides, model_seed)
                    append_row(args.out, FIELDS, row)
                    print({k: row[k] for k in ("n", "data_seed", "config", "model_seed", "mcc", "log_likelihood",
                                               "true_log_likelihood", "steps", "cpu_seconds")}, flush=True)


if __name__ == "__main__":
    main()
