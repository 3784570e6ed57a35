"""Prototype behind docs/tuning.md, round s1 (issue 22): kept as run.

One flow fit of n latents on ``make_nonstationary(n, n)`` (data seed, max(40, 2n)
segments of 1,000 points), printing every ``every`` epochs each restart's MCC (on 5,000
rows) and its training log-likelihood per sample (the last epoch's mini-batch mean, units
of X) beside the true model's (``benchmarks/scaling.py``'s ``true_log_likelihood``):

    python benchmarks/prototypes/flow_trajectory.py 20 8001 10000 '{"n_models": 8}'
    python benchmarks/prototypes/flow_trajectory.py 20 8001 18000 '{"n_models": 8, "prune_at": 3000, "whiten": true}'

Overrides: IFlowConfig fields (``n_models``, ``n_bins``, ``n_flows``, ``init_noise``,
``prior``, ``prior_mean``), and ``lr``, ``batch_size``, ``schedule``, ``whiten`` (PCA
whitening of X instead of z-scores), ``linear_init`` (steps of a linear flow whose map
starts the first layer), ``prune_at`` (steps of all restarts at a constant rate before the
most likely continues alone), ``every``, ``segments``, ``per``. Not part of the library:
``nica.IFlow`` keeps what this round chose (restarts pruned to the most likely one).
"""
import time, torch, numpy as np, sys, json
torch.set_num_threads(1)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from scaling import make_data, true_log_likelihood
from nica import mean_corr_coef
from nica.flows.module import IFlowConfig, IFlowModule
from nica.flows.projection import InputProjection
from nica.training.trainer import TrainConfig, train
from nica._base import seeded_init
n = int(sys.argv[1]); seed = int(sys.argv[2]); steps = int(sys.argv[3]); ov = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
every = ov.pop("every", 10); ov_prune = ov.pop("prune_at", 0); per = ov.pop("per", 1000); segs = ov.pop("segments", max(40, 2*n))
data = make_data(n, n, segs, per, "gauss", seed)
truth = true_log_likelihood(data)
whiten = ov.pop("whiten", False); linear_init = ov.pop("linear_init", 0)
proj = InputProjection.fit(data.x, n, True)
if whiten:
    xm = data.x.astype(np.float64); mu = xm.mean(0); C = np.cov((xm - mu).T, bias=True)
    proj = InputProjection.from_covariance(mu, C, n, True)
y = torch.from_numpy(proj.apply(data.x))
sub = np.random.default_rng(0).permutation(len(y))[:5000]; u = torch.from_numpy(np.eye(segs, dtype=np.float32)[data.u])
tc = dict(batch_size=ov.pop("batch_size", 256), learning_rate=ov.pop("lr", 3e-2), lr_schedule=ov.pop("schedule", "cosine"))
cfg = IFlowConfig(x_dim=n, aux_dim=segs, **{**dict(prior="auto", n_bins=4, n_models=4, n_flows=3), **ov})
module = seeded_init(lambda: IFlowModule(cfg), 0)
t0 = time.process_time()
if linear_init:
    import dataclasses
    lin = seeded_init(lambda: IFlowModule(dataclasses.replace(cfg, n_flows=1, n_bins=1)), 0)
    lin.bijection.activations[0].log_weight.data.fill_(-30.0)
    with torch.enable_grad():
        train(lin, y, u, TrainConfig(objective="elbo", max_steps=linear_init, **tc), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        W = lin.bijection.weight[:, 1] @ (lin.bijection.weight[:, 0] * lin.bijection.activations[0].log_slope.exp().unsqueeze(-1))
        module.bijection.weight[:, 0] = W
        z = lin.encode(y[sub])[0].numpy()
    print("linear init mcc", [round(mean_corr_coef(data.s[sub], zk), 3) for zk in z], "cpu", time.process_time() - t0)
def on_epoch(e, h):
    if e % every: return
    with torch.no_grad():
        z = module.encode(y[sub])[0].numpy()
    m = [mean_corr_coef(data.s[sub], zk) for zk in z]
    ll = np.array(h.model_elbo) - proj.log_jacobian()
    print(f"step {h.n_steps} cpu {time.process_time()-t0:.0f} mcc " + " ".join(f"{v:.3f}" for v in m) + " ll " + " ".join(f"{v:.2f}" for v in ll) + f" truth {truth:.2f}", flush=True)
prune_at = ov_prune
if prune_at:
    with torch.enable_grad():
        h1 = train(module, y, u, TrainConfig(objective="elbo", max_steps=prune_at, **{**tc, "lr_schedule": "constant"}), generator=torch.Generator().manual_seed(1), on_epoch=on_epoch)
    best = int(np.argmax(h1.model_elbo)); print("kept", best, flush=True)
    module = module.select(best)
    steps = steps - prune_at
with torch.enable_grad():
    train(module, y, u, TrainConfig(objective="elbo", max_steps=steps, **tc), generator=torch.Generator().manual_seed(1), on_epoch=on_epoch)
on_epoch(0, type("H", (), {"model_elbo": module.log_prob(y[sub], u[sub]).mean(-1).tolist(), "n_steps": steps})())
