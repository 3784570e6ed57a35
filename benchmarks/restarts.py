"""Restart selection: which rule, blind to the true sources, keeps a good restart?

    python benchmarks/restarts.py --settings 5-5 --restarts 16 --data-seeds 2001 ... 2010

For each data seed, one batched fit with ``--restarts`` K restarts. Every restart's true
MCC, training ELBO and agreement with the other restarts is written as a CSV row to
``--out`` (``benchmarks/results/restarts.csv``); ``--report`` prints, per rule, in how
many data seeds the selected restart beats the median restart, the mean rank of the
selected restart, and the median MCC of the selected restart beside a single fit's
(restart 0) and the aligned average of the restarts.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import SETTINGS  # noqa: E402

FIELDS = ["setting", "data_seed", "model_seed", "n_restarts", "restart", "mcc", "elbo",
          "agreement", "average_mcc", "seconds", "overrides"]
RULES = ("agreement", "elbo", "first")
#: rules scored by --report only (issue 20 looked for a better default among them)
CANDIDATE_RULES = ("agreement among the better half by ELBO", "sum of the agreement and ELBO ranks")


def aligned_average(latents: np.ndarray, reference: int) -> np.ndarray:
    """Average of the restarts' standardised latents after matching each to ``reference``."""
    from nica.metrics.mcc import mean_corr_coef

    std = (latents - latents.mean(1, keepdims=True)) / latents.std(1, keepdims=True)
    total = std[reference].copy()
    for k in range(len(std)):
        if k == reference:
            continue
        result = mean_corr_coef(std[reference], std[k], return_details=True)
        total += std[k][:, result.permutation] * np.sign(result.correlations)
    return total / len(std)


def run_seed(setting: str, data_seed: int, model_seed: int, k: int, overrides: dict) -> list[dict]:
    from nica import IVAE, make_nonstationary, mean_corr_coef

    data = make_nonstationary(**SETTINGS[setting], random_state=data_seed)
    model = IVAE(data.s.shape[1], n_restarts=k, random_state=model_seed, **overrides)
    start = time.perf_counter()
    model.fit(data.x, data.u)
    seconds = time.perf_counter() - start
    latents = model.transform_restarts(data.x, data.u)
    mcc = [mean_corr_coef(data.s, z) for z in latents]
    agreement = (model.restart_agreement_.sum(1) - 1) / max(k - 1, 1)
    chosen = int(np.argmax(agreement))
    average = mean_corr_coef(data.s, aligned_average(latents, chosen))
    return [
        dict(setting=setting, data_seed=data_seed, model_seed=model_seed, n_restarts=k, restart=i,
             mcc=round(mcc[i], 4), elbo=round(float(model.restart_elbo_[i]), 4),
             agreement=round(float(agreement[i]), 4), average_mcc=round(average, 4),
             seconds=round(seconds, 2), overrides=json.dumps(overrides, sort_keys=True))
        for i in range(k)
    ]


def report(rows: list[dict]) -> str:
    """Markdown table: per rule, over the (data seed, model seed) fits, how often the kept
    restart is at least the median restart, its largest shortfall below that median, its
    mean rank, the median and mean MCC, and how often one fit alone (a random restart)
    would have beaten it."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["n_restarts"], r["overrides"], r["data_seed"], r["model_seed"]),
                          []).append(r)
    by_setting: dict[tuple, dict[str, list]] = {}
    for (setting, k, overrides, _, _), rs in groups.items():
        if int(k) < 2:
            continue
        mcc = np.array([float(r["mcc"]) for r in rs])
        stats = by_setting.setdefault((setting, k, overrides), {"median": [], "best": [], "average": [], "mean": [],
                                                                **{rule: [] for rule in RULES + CANDIDATE_RULES}})
        stats["median"].append(np.median(mcc))
        stats["mean"].append(mcc.mean())
        stats["best"].append(mcc.max())
        stats["average"].append(float(rs[0]["average_mcc"]))
        agreement = np.array([float(r["agreement"]) for r in rs])
        elbo = np.array([float(r["elbo"]) for r in rs])
        for rule in RULES + CANDIDATE_RULES:
            score = {"agreement": agreement, "elbo": elbo,
                     "first": np.array([float(int(r["restart"]) == 0) for r in rs]),
                     # candidates studied in issue 20 (docs/performance.md), not offered by nica
                     "agreement among the better half by ELBO": np.where(elbo >= np.median(elbo), agreement, -np.inf),
                     "sum of the agreement and ELBO ranks": np.argsort(np.argsort(agreement))
                     + np.argsort(np.argsort(elbo)) + 1e-6 * agreement}[rule]
            chosen = int(np.argmax(score))
            rank = 1 + int((mcc > mcc[chosen]).sum())
            stats[rule].append((mcc[chosen], rank, mcc[chosen] >= np.median(mcc), mcc[chosen] - np.median(mcc),
                                float((mcc > mcc[chosen]).mean())))
    lines = ["| setting | K | overrides | fits | rule | >= median restart | worst shortfall | mean rank | "
             "median MCC | mean MCC | one fit beats it |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (setting, k, overrides), st in sorted(by_setting.items()):
        n = len(st["median"])
        for rule in RULES + CANDIDATE_RULES:
            mcc, rank, wins, gap, beaten = zip(*st[rule])
            lines.append(f"| {setting} | {k} | {overrides} | {n} | {rule} | {sum(wins)}/{n} | {min(gap):+.3f} | "
                         f"{np.mean(rank):.1f} | {np.median(mcc):.3f} | {np.mean(mcc):.3f} | {np.mean(beaten):.0%} |")
        lines.append(f"| {setting} | {k} | {overrides} | {n} | aligned average (agreement) | | | | "
                     f"{np.median(st['average']):.3f} | {np.mean(st['average']):.3f} | |")
        lines.append(f"| {setting} | {k} | {overrides} | {n} | median restart | | | | {np.median(st['median']):.3f} | "
                     f"{np.mean(st['median']):.3f} | |")
        lines.append(f"| {setting} | {k} | {overrides} | {n} | a single fit (mean restart) | | | | "
                     f"{np.median(st['mean']):.3f} | {np.mean(st['mean']):.3f} | |")
        lines.append(f"| {setting} | {k} | {overrides} | {n} | best restart (oracle) | | | 1.0 | "
                     f"{np.median(st['best']):.3f} | {np.mean(st['best']):.3f} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["5-5"], choices=sorted(SETTINGS))
    parser.add_argument("--data-seeds", nargs="+", type=int, default=list(range(2001, 2011)))
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--restarts", type=int, default=16)
    parser.add_argument("--overrides", default="{}", help='JSON estimator overrides, e.g. {"max_steps": 5000}')
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/restarts.csv"))
    parser.add_argument("--report", nargs="*", type=Path, metavar="CSV",
                        help="print the summary of these tables (default: --out) and exit")
    args = parser.parse_args()
    if args.report is not None:
        rows = []
        for path in args.report or [args.out]:
            with open(path, newline="") as fh:
                rows += list(csv.DictReader(fh))
        print(report(rows))
        return
    import torch

    torch.set_num_threads(args.threads)
    overrides = json.loads(args.overrides)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists()
    rows: list[dict] = []
    with open(args.out, "a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new_file:
            writer.writeheader()
        for setting in args.settings:
            for seed in args.data_seeds:
                seed_rows = run_seed(setting, seed, args.model_seed, args.restarts, overrides)
                writer.writerows(seed_rows)
                fh.flush()
                rows += seed_rows
                mcc = [r["mcc"] for r in seed_rows]
                print(f"{setting} seed={seed} K={args.restarts} {seed_rows[0]['seconds']:.0f}s "
                      f"mcc median={np.median(mcc):.3f} max={max(mcc):.3f} avg={seed_rows[0]['average_mcc']:.3f}",
                      flush=True)
    print(report([{k: str(v) for k, v in r.items()} for r in rows]))


if __name__ == "__main__":
    main()
