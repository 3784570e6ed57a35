"""Is the flow's shortfall at many latents the model or the optimiser? Start it at the answer.

Builds an ``IFlow``'s invertible MLP at the inverse of ``make_nonstationary``'s mixing
(three layers, two nonlinearities): its four linear maps are the mixing matrices'
inverses (the first one composed with the estimator's standardisation), its first two
element-wise layers are fitted by least squares to the inverse activation on the
generator's own pre-activations, the third is the identity; the prior is fitted with the
flow frozen. Then it trains the whole model as ``IFlow`` does (Adam on mini-batches of
256, cosine schedule) at each learning rate asked for, and prints the exact
log-likelihood (units of X) and the MCC at the start and along the way, beside the
generating model's own log-likelihood.

docs/tuning.md (round s4) has what it showed: at 50 latents the flow's family holds a
solution within 2 nats of the true model with MCC 0.98, and Adam at the default learning
rate leaves it within 1,000 steps. The training loop is written here rather than run
through ``IFlow.fit`` because the estimator always starts from its own initialisation.

    python benchmarks/flow_oracle.py --n 50 --segments 100 --per-segment 1000 --data-seed 8051 \
        --learning-rates 0.03 0.01 0.003 --steps 20000

Round s7 (``--matrix-lr 0.1 --out benchmarks/results/flow_oracle-s7.csv``): the same with
the square matrices on orthogonalised momentum steps (``IFlow``'s default since).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling import make_data, true_log_likelihood  # noqa: E402

import nica  # noqa: E402
from nica.datasets.nonstationary import _activate  # noqa: E402
from nica.flows.invertible_mlp import MonotoneTanhSum  # noqa: E402
from nica.training.optim import FlatAdam, cosine_factor  # noqa: E402

#: rows used to fit each element-wise layer to the inverse activation, and Adam steps
FIT_ROWS, FIT_STEPS = 20_000, 3_000
EVAL_ROWS = 20_000
BATCH = 256


def fit_inverse_activation(layer: MonotoneTanhSum, outputs: np.ndarray, inputs: np.ndarray, seed: int) -> float:
    """Least-squares fit of ``layer`` (one model) mapping the activation's outputs
    ``(N, n)`` back to its inputs ``(N, n)``; returns the final mean squared error."""
    rows = np.random.default_rng(seed).choice(len(outputs), min(FIT_ROWS, len(outputs)), replace=False)
    out = torch.tensor(outputs[rows].T[None], dtype=torch.float32)
    target = torch.tensor(inputs[rows].T[None], dtype=torch.float32)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.02)
    for _ in range(FIT_STEPS):
        optimiser.zero_grad()
        loss = ((layer(out)[0] - target) ** 2).mean()
        loss.backward()
        optimiser.step()
    return float(loss.detach())


def oracle_flow(data, x: np.ndarray, seed: int) -> nica.IFlow:
    """An ``IFlow`` (Gaussian prior, one restart) whose bijection is set to the inverse of
    ``data``'s mixing and whose prior is fitted with the bijection frozen."""
    if len(data.mixing) != 3:
        raise SystemExit("the oracle is built for the generator's 3-layer mixing (n_layers=3)")
    n = data.s.shape[1]
    model = nica.IFlow(n, n_restarts=1, prune_after=None, max_steps=1, prior="gaussian", random_state=seed)
    model.fit(x, data.u)
    projection, bijection = model.projection_, model.module_.bijection
    first, second, third = (np.asarray(a, dtype=np.float64) for a in data.mixing)
    inv_t = [np.linalg.inv(a.T) for a in (first, second, third)]
    s = data.s.astype(np.float64)
    h1 = s @ first
    r1 = _activate(h1, data.activation, data.slope)
    h2 = r1 @ second
    r2 = _activate(h2, data.activation, data.slope)
    with torch.no_grad():
        weight, bias = bijection.weight, bijection.bias
        weight[0, 0] = torch.tensor(inv_t[2] @ np.diag(projection.scale))
        bias[0, 0] = torch.tensor(inv_t[2] @ projection.mean)
        weight[0, 1], bias[0, 1] = torch.tensor(inv_t[1]), 0.0
        weight[0, 2], bias[0, 2] = torch.eye(n), 0.0
        weight[0, 3], bias[0, 3] = torch.tensor(inv_t[0]), 0.0
        identity = bijection.activations[2]
        identity.log_slope.zero_()
        identity.log_weight.fill_(-30.0)
    errors = (fit_inverse_activation(bijection.activations[0], r2, h2, seed),
              fit_inverse_activation(bijection.activations[1], r1, h1, seed))
    print(f"element-wise layers fitted to the inverse activation: mse {errors[0]:.2e}, {errors[1]:.2e}")
    return model


def evaluate(model: nica.IFlow, y: torch.Tensor, u: torch.Tensor, s: np.ndarray) -> tuple[float, float]:
    """Exact mean log p(x | u) in the units of X, and the MCC of the latents against s."""
    module = model.module_
    with torch.no_grad():
        log_px = torch.cat([module.log_prob(y[i:i + EVAL_ROWS], u[i:i + EVAL_ROWS])[0]
                            for i in range(0, len(y), EVAL_ROWS)]).mean().item()
        z = torch.cat([module.latents(y[i:i + EVAL_ROWS])[0] for i in range(0, len(y), EVAL_ROWS)]).numpy()
    return log_px - float(np.log(model.projection_.scale).sum()), float(nica.mean_corr_coef(s, z))


def train(model: nica.IFlow, y: torch.Tensor, u: torch.Tensor, params, lr: float, steps: int, seed: int,
          report=(), on_report=None, warmup: int = 0, matrix_lr: float | None = None) -> None:
    """Adam (nica's) on mini-batches of :data:`BATCH` rows, cosine schedule over ``steps``,
    after a linear warm-up over the first ``warmup`` steps (Adam's first steps move every
    weight by about the learning rate whatever its gradient, which alone can throw a
    model out of a sharp optimum). With ``matrix_lr`` the square matrices take
    orthogonalised momentum steps of that size, as ``IFlow``'s default does since round s7."""
    matrices = model.module_.square_matrices() if matrix_lr is not None else []
    optimiser = FlatAdam(params, lr=lr, matrices=matrices, matrix_lr_ratio=matrix_lr / lr if matrices else 1.0)
    factor = cosine_factor(steps)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        rows = torch.randint(0, len(y), (BATCH,), generator=generator)
        optimiser.zero_grad()
        (-model.module_.log_prob(y[rows], u[rows]).mean()).backward()
        optimiser.lr = lr * factor(step - 1) * min(1.0, step / warmup if warmup else 1.0)
        optimiser.step()
        if step in report and on_report is not None:
            on_report(step)
    optimiser.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--per-segment", type=int, default=1000)
    parser.add_argument("--data-seed", type=int, default=8051)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.03, 0.01, 0.003])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=0, help="steps of linear learning-rate warm-up")
    parser.add_argument("--matrix-lr", type=float, default=None,
                        help="orthogonalised momentum steps of this size for the square matrices "
                             "(IFlow's matrix_learning_rate); default: Adam on every parameter")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "flow_oracle.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = make_data(args.n, args.n, args.segments, args.per_segment, "gauss", args.data_seed)
    truth = true_log_likelihood(data)
    x = data.x.astype(np.float32)
    rows = []
    for lr in args.learning_rates:
        torch.manual_seed(args.seed)
        model = oracle_flow(data, x, args.seed)
        y = torch.tensor(model.projection_.apply(x), dtype=torch.float32)
        u = torch.nn.functional.one_hot(torch.as_tensor(data.u, dtype=torch.long)).float()
        prior = [p for name, p in model.module_.named_parameters() if not name.startswith("bijection")]
        train(model, y, u, prior, 0.05, 2_000, args.seed)
        start = time.process_time()

        def record(step: int) -> None:
            log_px, mcc = evaluate(model, y, u, data.s)
            row = dict(n=args.n, segments=args.segments, per_segment=args.per_segment, data_seed=args.data_seed,
                       seed=args.seed, learning_rate=lr, matrix_learning_rate=args.matrix_lr, warmup=args.warmup,
                       step=step, log_likelihood=round(log_px, 3),
                       true_log_likelihood=round(truth, 3), mcc=round(mcc, 4),
                       cpu_s=round(time.process_time() - start, 1))
            rows.append(row)
            print(row, flush=True)

        record(0)
        checkpoints = sorted({1_000, 5_000, args.steps} & set(range(1, args.steps + 1)))
        train(model, y, u, list(model.module_.parameters()), lr, args.steps, args.seed + 1, checkpoints, record,
              args.warmup, args.matrix_lr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with args.out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"rows appended to {args.out}")


if __name__ == "__main__":
    main()
