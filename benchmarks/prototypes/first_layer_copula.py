"""Can the flow's first layer be found on its own? A one-layer flow with a full-covariance
prior per segment, and how well its linear map finds the generator's outer hidden units.

The benchmark's mixing computes h0 = s A, h1 = xtanh(h0) A, x = xtanh(h1) A. Within a
segment h1 is a sum of n dependent terms, close to a Gaussian vector with a full,
segment-dependent covariance, so x is close to a linear mixture of an element-wise
transform of a correlated Gaussian (a Gaussian copula): the model

    y = f(W x + b),   y | u ~ N(mu_u, (L_u^T L_u)^-1),   L_u lower triangular,

with f a bank of increasing functions (:class:`MonotoneTanhSum`), is nearly well
specified for the exact inverse's first layer (W = A^-1, f = xtanh^-1), where the
factorised prior of a one-layer ``IFlow`` is not. This script fits it by exact maximum
likelihood (W takes the orthogonalised steps of ``IFlow``, the rest Adam at 3e-2, batch
256, cosine schedule) and prints the matched correlation of W x + b with the exact first
layer's output x A^-1 = xtanh(h1), and of ``IFlow``'s own first layer for comparison
(``benchmarks/prototypes/layer_alignment.py``):

    python benchmarks/prototypes/first_layer_copula.py --data-seed 8052

(its rows, with ``"copula": true``, are in ``benchmarks/results/tuning/s8-layer-alignment.jsonl``;
round s8 of docs/tuning.md: 0.35-0.37 at 50 latents, where ``IFlow``'s first layer gives
0.84-0.90: the full covariance absorbs the linear mixing, so the model does not pin W down.)
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import nica
from nica.flows.invertible_mlp import MonotoneTanhSum
from nica.training.optim import FlatAdam, cosine_factor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layer_alignment import probe_data, probe_parser  # noqa: E402


class CopulaLayer(nn.Module):
    """y = f(W x + b) with y | u ~ N(mu_u, (L_u^T L_u)^-1) for n features and k segments."""

    def __init__(self, n: int, k: int, n_units: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(n) + 0.1 * torch.randn(n, n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.activation = MonotoneTanhSum(n, n_units)
        self.mean = nn.Parameter(torch.zeros(k, n))
        self.log_diag = nn.Parameter(torch.zeros(k, n))
        self.lower = nn.Parameter(torch.zeros(k, n, n))

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias

    def log_prob(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Exact log p(x | u) per row ``(batch,)`` for x ``(batch, n)``, u ``(batch,)`` labels."""
        a = self.pre_activation(x)
        y, log_slope = self.activation(a.T.unsqueeze(0))  # (1, n, batch)
        y, log_slope = y[0].T, log_slope[0].T
        precision_root = torch.tril(self.lower, -1) + torch.diag_embed(self.log_diag.exp())  # (k, n, n)
        z = torch.bmm(precision_root[u], (y - self.mean[u]).unsqueeze(-1)).squeeze(-1)
        n = x.shape[1]
        return (-0.5 * (z * z).sum(-1) - 0.5 * n * math.log(2 * math.pi) + self.log_diag[u].sum(-1)
                + log_slope.sum(-1) + torch.linalg.slogdet(self.weight)[1])


def main() -> None:
    args = probe_parser(__doc__).parse_args()
    data = probe_data(args)
    torch.manual_seed(args.seed)
    target = data.x.astype(np.float64) @ np.linalg.inv(data.mixing[-1])  # xtanh(h1)
    x = torch.from_numpy(((data.x - data.x.mean(0)) / data.x.std(0)).astype(np.float32))
    u = torch.from_numpy(data.u).long()
    model = CopulaLayer(args.n, int(u.max()) + 1)
    optimiser = FlatAdam(model.parameters(), 3e-2, matrices=[model.weight], matrix_lr_ratio=0.1 / 3e-2)
    factor = cosine_factor(args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.process_time()
    for step in range(args.steps):
        rows = torch.randint(len(x), (256,), generator=generator)
        optimiser.zero_grad()
        loss = -model.log_prob(x[rows], u[rows]).mean()
        loss.backward()
        optimiser.step()
        optimiser.lr = 3e-2 * factor(step + 1)
        if (step + 1) % 5000 == 0:
            with torch.no_grad():
                a = model.pre_activation(x).double().numpy()
            print(f"step {step + 1}: loss {loss.item():.2f}, first layer vs x A^-1 "
                  f"{float(nica.mean_corr_coef(target, a)):.4f}", flush=True)
    with torch.no_grad():
        a = model.pre_activation(x).double().numpy()
    print(json.dumps(dict(data_seed=args.data_seed, seed=args.seed, steps=args.steps,
                          first_layer=round(float(nica.mean_corr_coef(target, a)), 4),
                          cpu_s=round(time.process_time() - start, 1))), flush=True)


if __name__ == "__main__":
    main()
