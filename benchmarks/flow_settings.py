"""One ``IFlow`` fit of ``make_nonstationary(n, n)`` with given settings: MCC, its spread
over latents, the exact log-likelihood and CPU time, as a row of a CSV.

Used for docs/tuning.md round s4 (50 latents, single restarts of 20,000 steps):

    python benchmarks/flow_settings.py --data-seed 8051 --tag lr0.01 \
        --settings '{"n_restarts": 1, "prune_after": null, "max_steps": 20000, "learning_rate": 0.01}'

Three settings are not ``IFlow`` parameters: ``"relative_gradient": true`` (below), ``"whiten": true`` fits the flow to x whitened
by its full covariance (a linear, invertible change of the input, so the MCC is
comparable; the log-likelihood is then in the whitened units), and
``"matrix_step_scale": c`` multiplies Adam's step on the invertible MLP's square matrices
by c (the rest of the parameters keep the learning rate) by patching nica's Adam for this
process only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import write_data  # noqa: E402

import nica  # noqa: E402
from nica.training import optim  # noqa: E402


def scale_matrix_steps(factor: float) -> None:
    """Patch :class:`nica.training.optim.FlatAdam` so that square-matrix parameters
    ``(K, L, d, d)`` step ``factor`` times the learning rate."""
    original_update = optim.FlatAdam._update

    def update(self):
        if not hasattr(self, "step_scale"):
            self.step_scale = torch.cat([
                torch.full((p.numel(),), factor if p.dim() == 4 and p.shape[-1] == p.shape[-2] else 1.0)
                for p in self.params])
        before = self.flat.clone()
        original_update(self)
        self.flat.copy_(before + self.step_scale * (self.flat - before))

    optim.FlatAdam._update = update


def relative_matrix_gradients() -> None:
    """Patch :class:`nica.training.optim.FlatAdam` so that each square matrix W
    ``(K, L, d, d)`` gets Amari's relative (natural) gradient G W^T W in place of its
    gradient G before Adam's moments (the ICA remedy for an ill-conditioned unmixing)."""
    original = optim.FlatAdam.flat_grad

    def flat_grad(self):
        for p in self.params:
            if p.grad is not None and p.dim() == 4 and p.shape[-1] == p.shape[-2]:
                p.grad = p.grad @ p.data.transpose(-1, -2) @ p.data
        return original(self)

    optim.FlatAdam.flat_grad = flat_grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--settings", default="{}", help="IFlow parameters as JSON (and the two above)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "tuning" / "s4-50-latents.csv")
    args = parser.parse_args()
    settings = json.loads(args.settings)
    whiten = bool(settings.pop("whiten", False))
    if settings.pop("relative_gradient", False):
        relative_matrix_gradients()
    if "matrix_step_scale" in settings:
        scale_matrix_steps(float(settings.pop("matrix_step_scale")))
    folder = Path("/tmp/nica-targets") / f"n{args.n}-{args.segments}-{args.per_segment}-{args.data_seed}"
    write_data(folder, args.n, args.segments, args.per_segment, args.data_seed)
    x, u, s = (np.load(folder / f"{name}.npy") for name in ("x", "u", "s"))
    if whiten:
        values, vectors = np.linalg.eigh(np.cov(x.T))
        x = ((x - x.mean(0)) @ vectors / np.sqrt(values)).astype(np.float32)
    start = time.process_time()
    model = nica.IFlow(args.n, random_state=args.seed, **settings).fit(x, u)
    cpu = time.process_time() - start
    mcc = float(nica.mean_corr_coef(s, model.transform(x)))
    row = dict(tag=args.tag, n=args.n, segments=args.segments, per_segment=args.per_segment,
               data_seed=args.data_seed, seed=args.seed, settings=json.dumps(json.loads(args.settings)),
               mcc=round(mcc, 4), log_likelihood=round(float(model.score_), 3), steps=model.n_steps_,
               cpu_s=round(cpu, 1))
    print(row)
    new = not args.out.exists()
    with args.out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
