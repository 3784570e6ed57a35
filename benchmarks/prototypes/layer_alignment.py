"""How far each hidden layer of a fitted ``IFlow`` is from the generator's: is the flow's
wrong maximum at 50 latents a wrong first layer or a wrong inner one?

``make_nonstationary(n, n)`` with its default three-matrix xtanh mixing computes
h0 = s A, h1 = xtanh(h0) A, x = xtanh(h1) A. The exact inverse flow therefore has, after
its first linear map, xtanh(h1) = x A^-1 (up to permutation and scale), after its second
xtanh(h0) and at its output s. This script fits one restart for ``--steps`` steps
(everything else default; ``--steps 0``: the default fit itself, 16 restarts pruned to one
over 100,000 steps at 50 latents) and prints the mean matched absolute correlation (MCC) of the
flow's pre-activations after each linear map with each of the generator's states
(x A^-1, h1, xtanh(h0), h0, s), one JSON row:

    python benchmarks/prototypes/layer_alignment.py --data-seed 8052

``--fastica`` fits no flow: it prints how well a linear ICA by non-Gaussianity
(scikit-learn's FastICA, log-cosh contrast) finds the first layer's target x A^-1.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import nica
from nica.datasets import make_nonstationary
from nica.datasets.nonstationary import NonstationaryData


def xtanh(h: np.ndarray, slope: float) -> np.ndarray:
    return np.tanh(h) + slope * h


def generator_states(data: NonstationaryData) -> dict[str, np.ndarray]:
    """The generator's states ``(N, n)`` each, by name: s, h0, xtanh(h0), h1, xtanh(h1)
    (= x A^-1, the exact inverse's first linear map)."""
    a = data.mixing[0]  # the generator's one matrix, reused by every layer
    h0 = data.s.astype(np.float64) @ a
    h1 = xtanh(h0, data.slope) @ a
    return {"s": data.s, "h0": h0, "xtanh(h0)": xtanh(h0, data.slope), "h1": h1, "xtanh(h1)": xtanh(h1, data.slope)}


def layer_alignment(model: nica.IFlow, x: np.ndarray, states: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """MCC of the pre-activations after each of the kept restart's linear maps with each
    generator state, on 20,000 rows of ``x``: ``{"linear k": {state: mcc}}``."""
    bijection = model.module_.bijection
    rows = np.random.default_rng(0).choice(len(x), min(20_000, len(x)), replace=False)
    h = torch.from_numpy(model.projection_.apply(x[rows])).T.unsqueeze(0)  # (1, n, rows)
    layers = {}
    with torch.no_grad():
        for layer in range(bijection.weight.shape[1]):
            h = torch.baddbmm(bijection.bias[:1, layer].unsqueeze(-1), bijection.weight[:1, layer], h)
            pre = h[0].T.double().numpy()
            layers[f"linear {layer + 1}"] = {name: round(float(nica.mean_corr_coef(state[rows], pre)), 4)
                                             for name, state in states.items()}
            if layer < len(bijection.activations):
                h, _ = bijection.activations[layer](h)
    return layers


def probe_parser(description: str) -> argparse.ArgumentParser:
    """``--n``, ``--data-seed``, ``--seed`` (the model's) and ``--steps`` of a probe fit."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--data-seed", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20_000)
    return parser


def probe_data(args: argparse.Namespace) -> NonstationaryData:
    """``make_nonstationary(n, n)``, 100 segments x 1,000, of the data seed; one torch thread."""
    torch.set_num_threads(1)
    return make_nonstationary(args.n, args.n, 100, 1000, random_state=args.data_seed)


def main() -> None:
    parser = probe_parser(__doc__)
    parser.add_argument("--n-flows", type=int, default=3, help="the flow's element-wise layers")
    parser.add_argument("--fastica", action="store_true")
    args = parser.parse_args()
    data = probe_data(args)
    states = generator_states(data)
    single = dict(n_restarts=1, prune_after=None, max_steps=args.steps) if args.steps else {}
    if args.fastica:
        from sklearn.decomposition import FastICA

        ica = FastICA(args.n, fun="logcosh", whiten="unit-variance", random_state=0, max_iter=1000, tol=1e-5)
        y = ica.fit(data.x[::2]).transform(data.x)
        print(json.dumps(dict(data_seed=args.data_seed, fastica={
            "xtanh(h1)": round(float(nica.mean_corr_coef(states["xtanh(h1)"], y)), 4),
            "s": round(float(nica.mean_corr_coef(data.s, y)), 4)})))
        return
    model = nica.IFlow(args.n, n_flows=args.n_flows, random_state=args.seed, **single).fit(data.x, data.u)
    print(json.dumps(dict(data_seed=args.data_seed, seed=args.seed, steps=model.n_steps_, n_flows=args.n_flows, n=args.n,
                          mcc=round(float(nica.mean_corr_coef(data.s, model.transform(data.x))), 4),
                          layers=layer_alignment(model, data.x, states))))


if __name__ == "__main__":
    main()
