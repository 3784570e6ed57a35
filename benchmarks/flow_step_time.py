"""CPU time of one training step of the flow against the latent dimension n and the
number of stacked restarts K (issue 22: time per step at most linear in n).

    python benchmarks/flow_step_time.py --n 20 50 --restarts 1 8 16

One torch thread; ``--steps`` steps of :func:`nica.training.train` at batch 256 on random
input (the step's cost does not depend on the values), max(40, 2n) segments; prints the
process CPU milliseconds per step (``time.process_time``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", nargs="+", type=int, default=[5, 10, 20, 50])
    parser.add_argument("--restarts", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from nica._base import seeded_init
    from nica.flows.module import IFlowConfig, IFlowModule
    from nica.training.trainer import TrainConfig, train

    for n in args.n:
        segments = max(40, 2 * n)
        y = torch.randn(20_000, n)
        u = torch.from_numpy(np.eye(segments, dtype=np.float32)[np.random.default_rng(0).integers(0, segments, 20_000)])
        for k in args.restarts:
            module = seeded_init(lambda: IFlowModule(IFlowConfig(n, segments, n_models=k)), 0)
            start = time.process_time()
            train(module, y, u, TrainConfig(max_steps=args.steps), generator=torch.Generator().manual_seed(0))
            print(f"n={n} restarts={k}: {(time.process_time() - start) / args.steps * 1000:.1f} ms CPU per step",
                  flush=True)


if __name__ == "__main__":
    main()
