"""One single-restart ``IFlow`` fit (20,000 steps, everything else default) of
``make_nonstationary(50, 50)``, 100 segments x 1,000, with other generator arguments: is
the difficulty at 50 latents the nonlinearity or the size of the linear problem?

Used for docs/tuning.md round s8:

    python benchmarks/prototypes/mixing_probe.py --data-seed 8051 --generator '{"activation": "none"}'

prints one JSON row (generator, MCC, log-likelihood per sample, CPU s of one thread);
the rows of round s8 are in ``benchmarks/results/tuning/s8-mixing-probe.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import nica
from nica.datasets import make_nonstationary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator", default="{}", help="make_nonstationary keyword arguments as JSON")
    args = parser.parse_args()
    generator = json.loads(args.generator)
    torch.set_num_threads(1)
    data = make_nonstationary(50, 50, 100, 1000, random_state=args.data_seed, **generator)
    start = time.process_time()
    model = nica.IFlow(50, n_restarts=1, prune_after=None, max_steps=20_000, random_state=args.seed).fit(data.x, data.u)
    cpu = time.process_time() - start
    print(json.dumps(dict(generator=generator, data_seed=args.data_seed, seed=args.seed,
                          mcc=round(float(nica.mean_corr_coef(data.s, model.transform(data.x))), 4),
                          log_likelihood=round(float(model.score_), 2), cpu_s=round(cpu, 1))))


if __name__ == "__main__":
    main()
