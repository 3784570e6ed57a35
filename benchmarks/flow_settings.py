"""One ``IFlow`` fit of ``make_nonstationary(n, n)`` with given settings: MCC, its spread
over latents, the exact log-likelihood and CPU time, as a row of a CSV.

Used for docs/tuning.md round s4 (50 latents, single restarts of 20,000 steps):

    python benchmarks/flow_settings.py --data-seed 8051 --tag lr0.01 \
        --settings '{"n_restarts": 1, "prune_after": null, "max_steps": 20000, "learning_rate": 0.01}'

Some settings are experiments, not ``IFlow`` parameters: ``"relative_gradient": true``
(below), ``"whiten": true`` fits the flow to x whitened by its full covariance (a linear,
invertible change of the input, so the MCC is comparable; the log-likelihood is then in
the whitened units), and ``"matrix_step_scale": c`` multiplies Adam's step on the
invertible MLP's square matrices by c (the rest of the parameters keep the learning rate)
by patching nica's Adam for this process only. Round s5 (docs/tuning.md) added:

- ``"linear_start": true``: the first square matrix starts at the linear ICA of the flow's
  input (:func:`linear_ica`), scaled to unit-variance outputs, instead of the identity;
- ``"data_noise": [sigma, steps]``: Gaussian noise of sd sigma (in the flow's
  standardised input units) is added to every training batch, decaying linearly to 0
  over the first ``steps`` steps (a continuation: the noisy likelihood is smoother);
- ``"lbfgs_rounds": R``: after the fit, R rounds of 50 L-BFGS iterations on 10,000
  random training rows each; the MCC and the log-likelihood (of the flow's input, first
  20,000 rows) after each round go to the printed output (is the fit at a maximum?);
- every row also reports ``posthoc_linear``: the MCC after :func:`linear_ica` of the
  fitted latents (what a linear unmixing of the result would still gain).

Since round s7 the square matrices take orthogonalised momentum steps by default
(``IFlow(matrix_learning_rate="auto")``); the rows of rounds s4-s6 were made with Adam on
every parameter, which ``"matrix_learning_rate": null`` restores (the two Adam patches
above act on Adam's steps only). Round s7 compared the two:

    python benchmarks/flow_settings.py --n 20 --segments 40 --per-segment 1000 --data-seed 8020 \
        --tag adam --settings '{"matrix_learning_rate": null}'

Round s8 (the orthogonalised steps' variants at 50 latents) added, each a patch of nica's
optimiser for this process only:

- ``"matrix_momentum": beta``: the square matrices' momentum decays at beta (default 0.95);
- ``"newton_schulz": k``: the polar factor by k iterations of Muon's quintic
  Newton-Schulz iteration instead of the exact SVD;
- ``"relative_polar": true`` or ``"traceless"``: relative (multiplicative) orthogonalised
  steps W <- (I - lr_W Q) W, Q the polar factor of the momentum of G W^T
  (:func:`relative_polar_steps`);

and ``--history FILE`` writes the fit's training log-likelihood per epoch (JSON).
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
from targets import add_data_arguments, load_data  # noqa: E402

import nica  # noqa: E402
from nica.base.estimator import aux_rows  # noqa: E402
from nica.flows import invertible_mlp  # noqa: E402
from nica.flows.module import IFlowModule  # noqa: E402
from nica.flows.projection import InputProjection  # noqa: E402
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


def set_matrix_momentum(beta: float) -> None:
    """Patch :class:`nica.training.optim.FlatAdam` so that the square matrices' momentum
    decays at ``beta`` (default 0.95)."""
    original = optim.FlatAdam.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.matrix_momentum = beta

    optim.FlatAdam.__init__ = init


def newton_schulz_steps(iterations: int) -> None:
    """Patch :func:`nica.training.optim.polar_factor` to Muon's quintic Newton-Schulz
    iteration (coefficients 3.4445, -4.7750, 2.0315; the input scaled to Frobenius norm 1):
    an approximate polar factor whose singular values land in about [0.7, 1.2], the small
    ones of the gradient raised less than by the exact factor."""
    def polar(m: torch.Tensor) -> torch.Tensor:
        a, b, c = 3.4445, -4.7750, 2.0315
        x = m / (m.flatten(-2).norm(dim=-1)[..., None, None] + 1e-7)
        for _ in range(iterations):
            gram = x @ x.transpose(-1, -2)
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x

    optim.polar_factor = polar


def relative_polar_steps(traceless: bool = False) -> None:
    """Patch :class:`nica.training.optim.FlatAdam` so that each square matrix takes an
    orthogonalised step in relative coordinates: with H = G W^T (the relative gradient,
    Cardoso and Laheld's equivariant update), momentum on H and W <- (I - lr_W Q) W for Q
    the polar factor of H's Nesterov look-ahead, so a step is a multiplicative change of
    operator norm lr_W whatever W's conditioning. ``traceless``: the identity's share is
    taken out of H and of Q, so that a step keeps |det W| to first order (the direction
    along which an inner layer's scale trades against its element-wise function's, where
    the likelihood is flat and multiplicative steps drift without bound)."""
    def centred(m: torch.Tensor) -> torch.Tensor:
        if not traceless:
            return m
        trace = m.diagonal(dim1=-2, dim2=-1).mean(-1)
        return m - trace[..., None, None] * torch.eye(m.shape[-1], dtype=m.dtype)

    def update(self, grad: torch.Tensor) -> None:
        step = self.lr * self.matrix_lr_ratio
        offset = 0
        relative = []
        for p in self.matrices:
            g = grad[offset: offset + p.numel()].view_as(p)
            relative.append(centred(g @ p.data.transpose(-1, -2)).reshape(-1))
            offset += p.numel()
        relative = torch.cat(relative)
        self.momentum.mul_(self.matrix_momentum).add_(relative)
        look_ahead = relative.add(self.momentum, alpha=self.matrix_momentum)
        offset = 0
        for p in self.matrices:
            direction = look_ahead[offset: offset + p.numel()].view_as(p)
            if bool(torch.isfinite(direction).all()):
                p.data.sub_(centred(optim.polar_factor(direction)) @ p.data, alpha=step)
            else:
                p.data.sub_(direction, alpha=step)
            offset += p.numel()

    optim.FlatAdam._matrix_update = update


def linear_ica(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Linear ICA of nonstationary Gaussian sources (Pham and Cardoso's block-Gaussian
    likelihood): the unmixing W ``(d, d)`` maximising
    log |det W| - 1/2 sum_segments (n_s / N) sum_i log(w_i C_s w_i^T), with C_s the
    covariance of segment s of the standardised y ``(N, d)``, by L-BFGS from the identity.
    Returns W y of the standardised y ``(N, d)``."""
    z = torch.from_numpy(np.asarray(y, np.float64))
    z = (z - z.mean(0)) / z.std(0)
    labels_t = torch.from_numpy(np.asarray(labels)).long()
    k = int(labels_t.max()) + 1
    counts = torch.bincount(labels_t, minlength=k).double()
    means = torch.zeros(k, z.shape[1], dtype=torch.float64).index_add_(0, labels_t, z) / counts[:, None]
    centred = z - means[labels_t]
    covariances = torch.stack([centred[labels_t == s].T @ centred[labels_t == s] / counts[s] for s in range(k)])
    weight = torch.eye(z.shape[1], dtype=torch.float64, requires_grad=True)
    lbfgs = torch.optim.LBFGS([weight], max_iter=500, history_size=20, line_search_fn="strong_wolfe",
                              tolerance_grad=1e-10)

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        variances = torch.einsum("ij,sjl,il->si", weight, covariances, weight)
        loss = -(torch.linalg.slogdet(weight)[1] - 0.5 * (counts[:, None] * variances.log()).sum() / counts.sum())
        loss.backward()
        return loss

    for _ in range(5):
        lbfgs.step(closure)
    return (z @ weight.detach().T).numpy()


def start_first_matrix_at(unmixing: torch.Tensor, bias: torch.Tensor) -> None:
    """Patch :class:`nica.flows.invertible_mlp.InvertibleMLP` so that every restart's first
    square matrix starts at ``unmixing`` (plus the restart's initial noise) and its first
    bias at ``bias``."""
    original = invertible_mlp.InvertibleMLP.__init__

    def init(self, dim, n_hidden=3, n_units=8, n_models=1, init_noise=0.1):
        original(self, dim, n_hidden, n_units, n_models, init_noise)
        with torch.no_grad():
            self.weight[:, 0] += unmixing - torch.eye(dim)
            self.bias[:, 0] = bias

    invertible_mlp.InvertibleMLP.__init__ = init


def anneal_data_noise(sigma: float, steps: int) -> None:
    """Patch :class:`nica.flows.module.IFlowModule` so that training batches get Gaussian
    noise of sd sigma * max(0, 1 - step / steps)."""
    original = IFlowModule.loss

    def loss(self, x, u, **kwargs):
        if self.training:
            step = getattr(self, "noise_step", 0)
            self.noise_step = step + 1
            scale = sigma * max(0.0, 1.0 - step / steps)
            if scale > 0:
                x = x + scale * torch.randn_like(x)
        return original(self, x, u, **kwargs)

    IFlowModule.loss = loss


def refine_by_lbfgs(model: nica.IFlow, x: np.ndarray, u: np.ndarray, s: np.ndarray, rounds: int) -> None:
    """R rounds of 50 L-BFGS iterations of the fitted flow on 10,000 random rows each,
    printing the log-likelihood of the flow's input (first 20,000 rows) and the MCC."""
    module = model.module_.train()
    y = torch.from_numpy(model.projection_.apply(x))
    u_rows = aux_rows(model.aux_encoder_, u)
    parameters = [p for p in module.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(0)
    for index in range(rounds):
        rows = torch.randperm(len(y), generator=generator)[:10_000]
        lbfgs = torch.optim.LBFGS(parameters, max_iter=50, history_size=50, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            loss = -module.log_prob(y[rows], u_rows[rows]).mean()
            loss.backward()
            return loss

        lbfgs.step(closure)
        module.eval()
        with torch.no_grad():
            log_likelihood = float(module.log_prob(y[:20_000], u_rows[:20_000]).mean())
        mcc = float(nica.mean_corr_coef(s, model.transform(x)))
        module.train()
        print(f"L-BFGS round {index + 1}: log-likelihood of the flow's input {log_likelihood:.2f}, MCC {mcc:.4f}",
              flush=True)
    module.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--settings", default="{}", help="IFlow parameters as JSON (and the two above)")
    parser.add_argument("--history", type=Path, default=None,
                        help="also write the fit's training log-likelihood per epoch here (JSON)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "tuning" / "s5-50-latents.csv")
    args = parser.parse_args()
    settings = json.loads(args.settings)
    whiten = bool(settings.pop("whiten", False))
    linear_start = bool(settings.pop("linear_start", False))
    lbfgs_rounds = int(settings.pop("lbfgs_rounds", 0))
    if "data_noise" in settings:
        anneal_data_noise(*settings.pop("data_noise"))
    if settings.pop("relative_gradient", False):
        relative_matrix_gradients()
    if "matrix_step_scale" in settings:
        scale_matrix_steps(float(settings.pop("matrix_step_scale")))
    relative = settings.pop("relative_polar", False)
    if relative:
        relative_polar_steps(traceless=relative == "traceless")
    if "matrix_momentum" in settings:
        set_matrix_momentum(float(settings.pop("matrix_momentum")))
    if "newton_schulz" in settings:
        newton_schulz_steps(int(settings.pop("newton_schulz")))
    _, x, u, s = load_data(args)
    if whiten:
        values, vectors = np.linalg.eigh(np.cov(x.T))
        x = ((x - x.mean(0)) @ vectors / np.sqrt(values)).astype(np.float32)
    start = time.process_time()
    if linear_start:  # in the flow's input units: standardised x (n = d)
        y = InputProjection.fit(x, args.n, True).apply(x)
        z = linear_ica(y, u)
        z = z / z.std(0)  # unit-variance outputs, where the element-wise layers start
        unmixing = np.linalg.lstsq(y - y.mean(0), z, rcond=None)[0].T
        start_first_matrix_at(torch.from_numpy(unmixing).float(), torch.from_numpy(-unmixing @ y.mean(0)).float())
        print(f"linear ICA: MCC {float(nica.mean_corr_coef(s, z)):.4f}", flush=True)
    model = nica.IFlow(args.n, random_state=args.seed, **settings).fit(x, u)
    cpu = time.process_time() - start
    latents = model.transform(x)
    mcc = float(nica.mean_corr_coef(s, latents))
    posthoc = float(nica.mean_corr_coef(s, linear_ica(latents, u)))
    if lbfgs_rounds:
        refine_by_lbfgs(model, x, u, s, lbfgs_rounds)
    row = dict(tag=args.tag, n=args.n, segments=args.segments, per_segment=args.per_segment,
               data_seed=args.data_seed, seed=args.seed, settings=json.dumps(json.loads(args.settings)),
               mcc=round(mcc, 4), log_likelihood=round(float(model.score_), 3), steps=model.n_steps_,
               cpu_s=round(cpu, 1), posthoc_linear=round(posthoc, 4))
    print(row)
    if args.history is not None:
        args.history.write_text(json.dumps({"row": row, "score": model.history_.score,
                                            "learning_rate": model.history_.learning_rate}))
    new = not args.out.exists()
    with args.out.open("a", newline="") as handle:
        fields = list(row) if new else next(csv.reader(args.out.open()))  # an older file keeps its columns
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
