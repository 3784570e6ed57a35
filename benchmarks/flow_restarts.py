"""Every restart of one ``IFlow`` fit at the moment it was pruned: its score under the
selection rule and its MCC with the true sources, which restart was kept, and the final
MCC, log-likelihood and CPU time; one JSON line per fit.

Used for docs/tuning.md round s8 (which restarts at 50 latents find the good basin):

    python benchmarks/flow_restarts.py --data-seed 8052 --settings '{"n_restarts": 32}'

``--settings`` holds ``IFlow`` parameters as JSON (the fit is the default one, so pruning
happens beyond 10 latents); ``--seed`` is the model seed. ``"max_steps"`` one above
``"prune_after"`` gives the restarts at the pruning point cheaply.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import add_data_arguments, load_data  # noqa: E402

import nica  # noqa: E402
from nica.base.params import chunks  # noqa: E402
from nica.flows._fitting import inference_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "tuning" / "s8-restarts.jsonl")
    args = parser.parse_args()
    settings = json.loads(args.settings)
    _, x, u, s = load_data(args)
    torch.set_num_threads(1)
    start = time.process_time()
    model = nica.IFlow(args.n, random_state=args.seed, **settings).fit(x, u)
    cpu = time.process_time() - start
    if getattr(model, "restarts_module_", None) is None:
        raise SystemExit("this fit did not prune its restarts: nothing to report")
    restarts = model.restarts_module_.eval()
    with torch.no_grad():  # a block of rows at a time, as IFlow's own inference does
        latents = np.concatenate([
            restarts.encode(torch.from_numpy(model.projection_.apply(x[rows])))[0].numpy()
            for rows in chunks(len(x), inference_rows(restarts))], axis=1)  # (K, N, n)
    row = dict(n=args.n, segments=args.segments, per_segment=args.per_segment, data_seed=args.data_seed,
               seed=args.seed, settings=settings,
               scores=[round(float(v), 3) for v in model.restart_scores_],
               restart_mcc=[round(float(nica.mean_corr_coef(s, z)), 4) for z in latents],
               kept=int(model.selected_restart_),
               mcc=round(float(nica.mean_corr_coef(s, model.transform(x))), 4),
               log_likelihood=round(float(model.score_), 3), steps=model.n_steps_, cpu_s=round(cpu, 1))
    print(json.dumps(row), flush=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
