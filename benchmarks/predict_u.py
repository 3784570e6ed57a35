"""Which segment a new point belongs to: ``IVAE.predict_u`` on held-out rows of the benchmark.

    OMP_NUM_THREADS=1 python benchmarks/predict_u.py --seeds 3001 3002 3003 3004 3005

Data: the README's 5 -> 5 setting (40 segments x 1,000 points, u = segment) with the data
seed; a fifth of each segment's rows is held out (seeded by the data seed). nica's default
iVAE and the flow ``nica fit`` picks (model seed 0) are fitted on the other rows, then
``predict_u`` labels the held-out rows from x alone (their u is not given): the posterior
over the 40 fitted segments from the ELBO under each (iVAE) or the exact likelihood (flow). Beside it: chance (1/40), classifiers trained on x directly with the
labels of the same training rows (quadratic discriminant analysis: one Gaussian per
segment; multinomial logistic regression; an MLP), and the Bayes rule on the true sources
with the true segment means and scales (a ceiling no model of x can pass). One fit at a
time on one torch thread; each data seed's row is appended to
``benchmarks/results/predict_u.csv`` as soon as it is done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nica import IFlow, IVAE, make_nonstationary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import record_row  # noqa: E402

OUT = Path("benchmarks/results/predict_u.csv")
FIELDS = ["data_seed", "chance", "ivae", "flow", "qda", "logistic", "mlp", "oracle", "ivae_seconds", "flow_seconds"]


def held_out(u: np.ndarray, seed: int, fraction: float = 0.2) -> np.ndarray:
    """A mask of ``fraction`` of each segment's rows."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(u), bool)
    for label in np.unique(u):
        rows = np.flatnonzero(u == label)
        mask[rng.choice(rows, int(round(fraction * len(rows))), replace=False)] = True
    return mask


def oracle(data, rows: np.ndarray) -> float:
    """Segment accuracy of the Bayes rule on the true sources (true means and scales)."""
    s = data.s[rows][:, None, :]
    log_p = (-np.log(data.scales) - 0.5 * ((s - data.means) / data.scales) ** 2).sum(-1)
    return float(np.mean(log_p.argmax(1) == data.u[rows]))


def main() -> None:
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        data = make_nonstationary(5, n_segments=40, n_per_segment=1_000, random_state=seed)
        test = held_out(data.u, seed)
        x_train, u_train, x_test, u_test = data.x[~test], data.u[~test], data.x[test], data.u[test]
        start = time.perf_counter()
        model = IVAE(5, random_state=0, device="cpu").fit(x_train, u_train)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        flow = IFlow(5, random_state=0, device="cpu").fit(x_train, u_train)
        flow_seconds = time.perf_counter() - start
        classifiers = {
            "qda": QuadraticDiscriminantAnalysis(),
            "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000)),
            "mlp": make_pipeline(StandardScaler(), MLPClassifier((100, 100), max_iter=200, random_state=0)),
        }
        row = {"data_seed": seed, "chance": 1 / 40,
               "ivae": float(np.mean(model.predict_u(x_test) == u_test)),
               "flow": float(np.mean(flow.predict_u(x_test) == u_test)),
               **{name: float(c.fit(x_train, u_train).score(x_test, u_test)) for name, c in classifiers.items()},
               "oracle": oracle(data, test), "ivae_seconds": seconds,
               "flow_seconds": flow_seconds}
        record_row(args.out, FIELDS, row)


if __name__ == "__main__":
    main()
