"""Does a right first layer leave only the one-layer problem? Start the flow's first
linear map at a given matrix, the rest at ``IFlow``'s own initialisation, and train as
``IFlow`` does.

Round s8 located the 50-latent shortfall in the flow's first linear map: where the fit
meets the target it outputs the generator's outer hidden units xtanh(h1) = x A^-1, where it
does not it mixes them. This probe starts the first map (every restart's) at

- ``oracle``: x A^-1 itself (composed with the estimator's standardisation, each output
  scaled to unit variance), the answer, to ask whether the flow then finds the rest and
  keeps the first layer;
- ``fastica``: scikit-learn's FastICA unmixing of x (log-cosh), a start a user could
  compute (0.82 of the way to x A^-1 on the tuning seeds);
- ``default``: ``IFlow``'s own start, the baseline,

then prints one JSON row: the MCC, the steps, and the alignment of every linear map with
the generator's states (:func:`layer_alignment.layer_alignment`):

    python benchmarks/prototypes/first_layer_start.py --data-seed 8052 --start oracle

``--tail-units T`` gives the flow T tail units per element-wise function
(``IFlow(n_tail_units=T)``); ``--first-step f`` scales the first map's steps by f (0: held
where it started); ``--steps`` (default 20,000, one restart) as in round s8's single-restart variants;
``--steps 0``: the default fit (its restarts, pruning and budget).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layer_alignment import generator_states, layer_alignment, probe_data, probe_parser  # noqa: E402

import nica  # noqa: E402
from nica.training.optim import FlatAdam  # noqa: E402


def slow_first_layer(factor: float) -> None:
    """Scale every orthogonalised step of the first linear map by ``factor`` (0: held at
    its start): patches :meth:`FlatAdam._matrix_update` for this process."""
    update = FlatAdam._matrix_update

    def scaled_update(self, grad):
        before = [p.data[:, 0].clone() for p in self.matrices]
        update(self, grad)
        for p, old in zip(self.matrices, before):
            p.data[:, 0] = old + factor * (p.data[:, 0] - old)

    FlatAdam._matrix_update = scaled_update


def first_map(start: str, data) -> tuple[np.ndarray, np.ndarray] | None:
    """``(M, c)`` with the first layer's target ``x M + c`` ``(N, n)``, or None for the default."""
    x = data.x.astype(np.float64)
    if start == "default":
        return None
    if start == "oracle":
        unmix = np.linalg.inv(data.mixing[-1])
        return unmix, np.zeros(unmix.shape[1])
    if start == "fastica":
        from sklearn.decomposition import FastICA

        ica = FastICA(x.shape[1], fun="logcosh", whiten="unit-variance", random_state=0, max_iter=1000, tol=1e-5)
        ica.fit(x[::2])
        return ica.components_.T, -ica.mean_ @ ica.components_.T
    raise SystemExit(f"unknown start {start!r}")


class FirstLayerStart(nica.IFlow):
    """``IFlow`` whose restarts' first linear maps start at ``x M + c`` (through the
    estimator's standardisation, outputs at unit variance on ``x``)."""

    def __init__(self, *args, first=None, x_reference=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.first, self.x_reference = first, x_reference

    def _train_module(self, plan, data, seed, device, **kwargs):
        if self.first is None:
            return super()._train_module(plan, data, seed, device, **kwargs)
        projection = data.state["projection"]
        m, c = self.first
        # y = (x - mean) / scale, so x M + c = y diag(scale) M + (mean M + c)
        weight = np.diag(projection.scale) @ m
        bias = projection.mean @ m + c
        sd = (self.x_reference @ m + c).std(0)
        weight, bias = weight / sd, bias / sd
        build = plan.build_module

        def build_at_start():
            module = build()
            with torch.no_grad():
                module.bijection.weight[:, 0] = torch.tensor(weight.T, dtype=module.bijection.weight.dtype)
                module.bijection.bias[:, 0] = torch.tensor(bias, dtype=module.bijection.bias.dtype)
            return module

        return super()._train_module(dataclasses.replace(plan, build_module=build_at_start), data, seed, device,
                                     **kwargs)


def main() -> None:
    parser = probe_parser(__doc__)
    parser.add_argument("--start", choices=("oracle", "fastica", "default"), default="oracle")
    parser.add_argument("--first-step", type=float, default=1.0,
                        help="the first linear map's steps scaled by this (0: held at its start)")
    parser.add_argument("--tail-units", type=int, default=0, help="IFlow's n_tail_units")
    parser.add_argument("--settings", default="{}", help="IFlow keyword arguments as JSON, on top")
    args = parser.parse_args()
    data = probe_data(args)
    if args.first_step != 1.0:
        slow_first_layer(args.first_step)
    single = dict(n_restarts=1, prune_after=None, max_steps=args.steps) if args.steps else {}
    model = FirstLayerStart(args.n, random_state=args.seed, first=first_map(args.start, data),
                            x_reference=data.x.astype(np.float64), n_tail_units=args.tail_units,
                            **single, **json.loads(args.settings))
    model.fit(data.x, data.u)
    print(json.dumps(dict(data_seed=args.data_seed, seed=args.seed, start=args.start,
                          first_step=args.first_step, tail_units=args.tail_units, steps=model.n_steps_,
                          settings=json.loads(args.settings), n=args.n,
                          mcc=round(float(nica.mean_corr_coef(data.s, model.transform(data.x))), 4),
                          layers=layer_alignment(model, data.x, generator_states(data)))))


if __name__ == "__main__":
    main()
