"""Recovery benchmark: MCC of the latents and wall time per fit, over data seeds.

    python benchmarks/recovery.py --settings 5-5 --configs auto default authors --jobs 2

Each (setting, data seed, config, model seed) is one fit on ``--threads`` torch threads
(default 1); ``--jobs`` fits run side by side.  One CSV row per fit is appended to ``--out`` as fits finish;
a summary table (median / mean MCC, median seconds) is printed at the end.

Configs (optionally ``NAME:{"json": "overrides"}``):

- ``auto``: what ``nica fit`` runs, :func:`nica.fit_model` with ``model="auto"``;
- ``default`` / ``authors`` / ``paper-elbo``: :class:`nica.IVAE` with its defaults or a preset;
- ``ivae-0.1``: the iVAE defaults of nica 0.1 before the model was chosen from the data
  (``previous default`` in the README);
- ``flow``: :class:`nica.IFlow` with its defaults;
- ``iflow-2020``: :class:`nica.IFlow` as it was before the invertible MLP: iFlow's spline
  autoregressive flow, batch 64, Adam 1e-3, 12,500 steps, one Gaussian restart;
- ``vae``: :class:`nica.VAE`.
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

#: ``elbo`` is the iVAE's ELBO or the flow's exact log-likelihood, per sample in the units of X
FIELDS = ["setting", "data_seed", "config", "model_seed", "model", "mcc", "mcc_spearman", "weak_mcc",
          "elbo", "steps", "seconds", "overrides"]


#: the iVAE defaults of nica 0.1 (the g4 setting of docs/tuning.md at 10,000 steps)
IVAE_0_1 = dict(objective="reweighted", prior_mean=False, prior_net="table", shared_encoder=True,
                encoder_sees_u=False, decoder_var=0.1, hidden_dim="auto", batch_size=64, learning_rate=1e-2,
                max_steps=10_000, lr_schedule="cosine", standardize=True)
#: nica.IFlow's defaults before the invertible MLP (iFlow's own flow and budget)
IFLOW_2020 = dict(flow="spline-autoregressive", n_flows=5, n_bins=8, prior="gaussian", batch_size=64,
                  learning_rate=1e-3, max_steps=12_500, n_restarts=1)


def make_estimator(config: str, n: int, x, model_seed: int, overrides: dict):
    """The estimator a config names (module docstring), unfitted."""
    from nica import IFlow, IVAE, VAE
    from nica.model_choice import make_model

    name = config.split(":")[0]
    common = dict(random_state=model_seed, device="cpu")
    if name == "auto":
        return make_model("auto", n, x, **common, **overrides)
    if name == "flow":
        return IFlow(n, **common, **overrides)
    if name == "iflow-2020":
        return IFlow(n, **common, **{**IFLOW_2020, **overrides})
    if name == "ivae-0.1":
        return IVAE(n, **common, **{**IVAE_0_1, **overrides})
    cls = VAE if name.startswith("vae") else IVAE
    preset = name if name in ("authors", "paper-elbo") else "default"
    return cls.from_preset(preset, n, **common, **overrides)


def run_one(setting: str, data_seed: int, config: str, model_seed: int, overrides: dict,
            threads: int = 1) -> dict:
    import torch

    torch.set_num_threads(threads)
    from nica import make_nonstationary, mean_corr_coef, weak_mean_corr_coef

    data = make_nonstationary(**SETTINGS[setting], random_state=data_seed)
    model = make_estimator(config, data.s.shape[1], data.x, model_seed, overrides)
    if hasattr(model, "n_threads"):
        model.set_params(n_threads=threads)
    start = time.perf_counter()
    model.fit(data.x, data.u)
    seconds = time.perf_counter() - start
    z = model.transform(data.x, data.u)
    score = model.log_likelihood_ if hasattr(model, "log_likelihood_") else model.elbo_
    return dict(
        setting=setting, data_seed=data_seed, config=config, model_seed=model_seed,
        model=type(model).__name__,
        mcc=round(mean_corr_coef(data.s, z), 4),
        mcc_spearman=round(mean_corr_coef(data.s, z, "spearman"), 4),
        weak_mcc=round(weak_mean_corr_coef(data.s, z), 4),
        elbo=round(score, 4), steps=model.n_steps_, seconds=round(seconds, 2),
        overrides=json.dumps(overrides, sort_keys=True),
    )


def parse_config(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:{"json": "overrides"}``; the name picks the preset."""
    if ":" in spec:
        name, _, rest = spec.partition(":")
        return spec, json.loads(rest)
    return spec, {}


def summarise(rows: list[dict], markdown: bool = False) -> str:
    """Per (setting, config): data and model seeds, median MCC over every fit, the spread
    over data seeds (min-max of each data seed's median over model seeds), the spread over
    model seeds (median over data seeds of each one's max - min across model seeds, where a
    data seed has several), and the median seconds per fit."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["setting"], r["config"]), []).append(r)
    header = ["setting", "config", "data seeds", "model seeds", "median MCC", "data seeds: min-max",
              "model seeds: median range", "median s / fit"]
    lines = []
    for (setting, config), rs in sorted(groups.items()):
        by_data: dict[str, list[float]] = {}
        for r in rs:
            by_data.setdefault(str(r["data_seed"]), []).append(float(r["mcc"]))
        per_data = np.array([np.median(v) for v in by_data.values()])
        ranges = [max(v) - min(v) for v in by_data.values() if len(v) > 1]
        model_seeds = sorted({str(r["model_seed"]) for r in rs})
        mcc = np.array([float(r["mcc"]) for r in rs])
        sec = np.array([float(r["seconds"]) for r in rs])
        lines.append([setting, config, str(len(by_data)), ",".join(model_seeds), f"{np.median(mcc):.3f}",
                      f"{per_data.min():.3f}-{per_data.max():.3f}",
                      f"{np.median(ranges):.3f}" if ranges else "-", f"{np.median(sec):.1f}"])
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
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recovery-auto.csv"))
    parser.add_argument("--report", nargs="*", type=Path, default=None, metavar="CSV",
                        help="print a markdown summary of the rows already in these CSVs (default: --out) and exit")
    args = parser.parse_args()
    if args.report is not None:
        rows = []
        for path in args.report or [args.out]:
            with open(path, newline="") as fh:
                rows += list(csv.DictReader(fh))
        print(summarise(rows, markdown=True))
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
