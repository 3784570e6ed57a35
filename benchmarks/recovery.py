"""Recovery benchmark: posterior-mean MCC and wall time per fit, over data seeds.

    python benchmarks/recovery.py --settings 5-5 --configs default authors --jobs 2

Each (setting, data seed, config, model seed) is one fit on ``--threads`` torch threads
(default 1); ``--jobs`` fits run side by side.  One CSV row per fit is appended to ``--out`` as fits finish;
a summary table (median / mean MCC, median seconds) is printed at the end.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import DATA_SEEDS, SETTINGS  # noqa: E402

FIELDS = ["setting", "data_seed", "config", "model_seed", "mcc", "mcc_spearman", "weak_mcc",
          "elbo", "steps", "seconds", "overrides"]


def run_one(setting: str, data_seed: int, config: str, model_seed: int, overrides: dict,
            threads: int = 1) -> dict:
    import torch

    torch.set_num_threads(threads)
    from nica import IVAE, VAE, make_nonstationary, mean_corr_coef, weak_mean_corr_coef

    data = make_nonstationary(**SETTINGS[setting], random_state=data_seed)
    n = data.s.shape[1]
    cls = VAE if config.startswith("vae") else IVAE
    preset = config.split(":")[0] if config.split(":")[0] in ("authors", "paper-elbo") else "default"
    model = cls.from_preset(preset, n, random_state=model_seed, **overrides)
    start = time.perf_counter()
    model.fit(data.x, data.u)
    seconds = time.perf_counter() - start
    z = model.transform(data.x, data.u)
    return dict(
        setting=setting, data_seed=data_seed, config=config, model_seed=model_seed,
        mcc=round(mean_corr_coef(data.s, z), 4),
        mcc_spearman=round(mean_corr_coef(data.s, z, "spearman"), 4),
        weak_mcc=round(weak_mean_corr_coef(data.s, z), 4),
        elbo=round(model.elbo_, 4), steps=model.n_steps_, seconds=round(seconds, 2),
        overrides=json.dumps(overrides, sort_keys=True),
    )


def parse_config(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:{"json": "overrides"}``; the name picks the preset."""
    if ":" in spec:
        name, _, rest = spec.partition(":")
        return spec, json.loads(rest)
    return spec, {}


def summarise(rows: list[dict], markdown: bool = False) -> str:
    """Median / mean / min MCC and median seconds per (setting, config)."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["config"]), []).append(r)
    header = ["setting", "config", "fits", "median MCC", "mean MCC", "min MCC", "median s / fit"]
    lines = []
    for (setting, config), rs in sorted(groups.items()):
        mcc = np.array([float(r["mcc"]) for r in rs])
        sec = np.array([float(r["seconds"]) for r in rs])
        lines.append([setting, config, str(len(rs)), f"{np.median(mcc):.3f}", f"{mcc.mean():.3f}",
                      f"{mcc.min():.3f}", f"{np.median(sec):.1f}"])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*line) for line in lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["5-5"], choices=sorted(SETTINGS))
    parser.add_argument("--configs", nargs="+", default=["default", "authors"],
                        help='preset names, optionally with JSON overrides: default:{"max_steps": 3000}')
    parser.add_argument("--data-seeds", nargs="+", type=int, default=list(DATA_SEEDS))
    parser.add_argument("--model-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="fits side by side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fit")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recovery.csv"))
    parser.add_argument("--report", action="store_true",
                        help="print a markdown summary of the rows already in --out and exit")
    args = parser.parse_args()
    if args.report:
        with open(args.out, newline="") as fh:
            print(summarise(list(csv.DictReader(fh)), markdown=True))
        return

    configs = [parse_config(c) for c in args.configs]
    runs = list(itertools.product(args.settings, args.data_seeds, configs, args.model_seeds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not args.out.exists()
    rows = []
    with open(args.out, "a", newline="") as fh, ProcessPoolExecutor(args.jobs) as pool:
        writer = csv.DictWriter(fh, FIELDS)
        if new_file:
            writer.writeheader()
        futures = [pool.submit(run_one, s, d, name, m, ov, args.threads) for s, d, (name, ov), m in runs]
        for i, fut in enumerate(as_completed(futures), 1):
            row = fut.result()
            rows.append(row)
            writer.writerow(row)
            fh.flush()
            print(f"[{i}/{len(runs)}] {row['setting']} seed={row['data_seed']} {row['config'][:40]} "
                  f"mcc={row['mcc']:.3f} {row['seconds']:.1f}s", flush=True)
    print(summarise(rows))


if __name__ == "__main__":
    main()
