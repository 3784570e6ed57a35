"""Tuning runs of the dependent-latents experiment, on tuning data seeds (4001, ...).

    python benchmarks/dependent_latents_tuning.py --graphs sparse dense --seeds 4001 4002 4003 \\
        --configs ivae 'lcvae:{"weight_penalty": 3.0}' --jobs 2

Data: ``nica.make_latent_scm(5, graph=G, n_per_segment=L, random_state=seed)`` (40
segments); every fit has ``max_steps=--steps`` and ``random_state=seed``. A config is
``ivae`` (:class:`nica.IVAE`), ``lcvae`` (:class:`nica.LatentCausalVAE`) or ``warm`` (an
``IVAE(prior_mean=True)`` fit of ``--steps`` steps, then the latent causal prior, its
weights starting at 0, trained from that solution for ``--warm-steps`` more steps), each
optionally followed by ``:`` and a JSON dict of estimator parameters (for ``warm``, those
of the second stage's ``LatentCausalVAE``). One CSV row per fit
is appended to ``--out`` as fits finish (MCC and weak MCC against the true latents z,
MCC against the true noise n); ``--report`` prints the mean ± sd per graph and config.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

FIELDS = ["graph", "data_seed", "config", "n_per_segment", "steps", "mcc", "weak_mcc", "mcc_noise",
          "mcc_before_warm_start", "seconds"]
OUT = Path(__file__).resolve().parent / "results" / "dependent-latents-tuning.csv"


def warm_start(data, params: dict, steps: int, warm_steps: int, seed: int):
    """An IVAE(prior_mean=True) fit, then its networks under the latent causal prior; returns
    (latents after, latents before)."""
    import numpy as np
    import torch

    import nica
    from nica.models import IVAEModule
    from nica.training.trainer import train

    ivae = nica.IVAE(5, prior_mean=True, max_steps=steps, random_state=seed, device="cpu")
    before = ivae.fit(data.x, data.u).transform(data.x, data.u)
    torch.manual_seed(seed)
    module = IVAEModule(replace(ivae.config_, prior="latent_causal"))
    state = module.state_dict()
    for key, value in ivae.module_.state_dict().items():
        if key == "prior.net.weight":  # the table's mean and log-variance rows; the weights' rows at 0
            state[key] = torch.zeros_like(state[key])
            state[key][:, : value.shape[1]] = value
        else:
            state[key] = value
    module.load_state_dict(state)
    causal = nica.LatentCausalVAE(5, max_steps=warm_steps, device="cpu", **params)
    config = causal._train_config()
    module.objective, module.analytic_gradients = causal._objective(), bool(causal.analytic_gradients)
    x = torch.from_numpy(((data.x - ivae.x_mean_) / ivae.x_scale_).astype(np.float32))
    u = torch.eye(data.means.shape[0])[torch.from_numpy(data.u)]
    train(module, x, u, config, generator=torch.Generator().manual_seed(seed + 7))
    with torch.no_grad():
        return module.eval().inference(x, u)[0][0].numpy(), before


def run_one(graph: str, seed: int, config: str, n_per_segment: int, steps: int, warm_steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    import nica

    kind, _, extra = config.partition(":")
    params = json.loads(extra) if extra else {}
    data = nica.make_latent_scm(5, graph=graph, n_per_segment=n_per_segment, random_state=seed)
    start = time.perf_counter()
    before = None
    if kind == "warm":
        z, before = warm_start(data, params, steps, warm_steps, seed)
    else:
        cls = {"ivae": nica.IVAE, "lcvae": nica.LatentCausalVAE}[kind]
        model = cls(5, max_steps=steps, random_state=seed, device="cpu", **params).fit(data.x, data.u)
        z = model.transform(data.x, data.u)
    return {"graph": graph, "data_seed": seed, "config": config, "n_per_segment": n_per_segment,
            "steps": steps if kind != "warm" else f"{steps}+{warm_steps}",
            "mcc": round(nica.mean_corr_coef(data.z, z), 4), "weak_mcc": round(nica.weak_mean_corr_coef(data.z, z), 4),
            "mcc_noise": round(nica.mean_corr_coef(data.noise, z), 4),
            "mcc_before_warm_start": "" if before is None else round(nica.mean_corr_coef(data.z, before), 4),
            "seconds": round(time.perf_counter() - start, 1)}


def report(path: Path) -> None:
    import numpy as np

    groups: dict[tuple, list[dict]] = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            groups[(row["graph"], row["config"], row["steps"])].append(row)
    for (graph, config, steps), rows in sorted(groups.items()):
        mcc = np.array([float(r["mcc"]) for r in rows])
        weak = np.array([float(r["weak_mcc"]) for r in rows])
        seeds = " ".join(f"{r['data_seed']}:{float(r['mcc']):.3f}" for r in rows)
        print(f"{graph:11s} {config:55s} {steps:>9s} MCC {mcc.mean():.3f} ± {mcc.std(ddof=1) if len(mcc) > 1 else 0:.3f} "
              f"weak {weak.mean():.3f} (n={len(rows)}; {seeds})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", nargs="+", default=["independent", "sparse", "dense"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[4001, 4002, 4003])
    parser.add_argument("--configs", nargs="+", default=["ivae", "lcvae"])
    parser.add_argument("--n-per-segment", type=int, default=500)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--warm-steps", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report", action="store_true", help="print the summary of --out and stop")
    args = parser.parse_args()
    if args.report:
        report(args.out)
        return
    jobs = [(g, s, c, args.n_per_segment, args.steps, args.warm_steps)
            for g in args.graphs for c in args.configs for s in args.seeds]
    new = not args.out.exists()
    with open(args.out, "a", newline="") as fh, ProcessPoolExecutor(args.jobs) as pool:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for future in as_completed([pool.submit(run_one, *job) for job in jobs]):
            row = future.result()
            writer.writerow(row)
            fh.flush()
            os.fsync(fh.fileno())
            print(json.dumps(row), flush=True)
    report(args.out)


if __name__ == "__main__":
    main()
