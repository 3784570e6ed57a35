"""Prototype behind nica.flows.invertible_mlp (docs/tuning.md, rounds f0-f6): kept as run.

The rows of ``benchmarks/results/tuning/flow-prototype.csv`` came from this script, one
JSON config per call, on tuning data seeds 7001-7005 (never the reported seeds):

    python benchmarks/prototypes/invertible_mlp.py '{"steps": 5000, "K": 2, "lr": 3e-2, "n_layers": 4, "param": "full", "seeds": [7003, 7004]}'

It is not part of the library (nica.IFlow is): it compares parameterisations the library
does not keep (LU-factorised weights, a relative gradient, a softplus-ramp or spline
element-wise function) with the one it does (full weights with slogdet, tanh sums).
``n_layers`` here counts linear maps, so ``n_layers=4`` is ``IFlow(n_flows=3)``.
"""
import math, time, sys, json
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from zuko.transforms import MonotonicRQSTransform
from nica import make_nonstationary, mean_corr_coef

LOG2PI = math.log(2 * math.pi)

class IMLP(nn.Module):
    def __init__(self, d, n_labels, K=1, n_layers=3, n_units=8, prior_mean=True, act="tanhsum", bound=4.0, init_scale=0.0, param="lu", relgrad=False):
        super().__init__()
        self.param, self.relgrad = param, relgrad
        if param == "full":
            self.W = nn.Parameter(torch.eye(d).expand(n_layers, K, d, d).clone() + init_scale * torch.randn(n_layers, K, d, d))
        self.d, self.K, self.L, self.act, self.bound = d, K, n_layers, act, bound
        self.lower = nn.Parameter(torch.randn(n_layers, K, d, d) * init_scale)
        self.upper = nn.Parameter(torch.randn(n_layers, K, d, d) * init_scale)
        self.logdiag = nn.Parameter(torch.zeros(n_layers, K, d))
        perms = torch.stack([torch.stack([torch.randperm(d) for _ in range(K)]) for _ in range(n_layers)])
        self.register_buffer("perm", perms)
        self.bias = nn.Parameter(torch.zeros(n_layers, K, d))
        M = n_units
        E = (n_layers - 1, K, d, M)
        if act == "tanhsum":
            self.c = nn.Parameter(torch.zeros(n_layers - 1, K, d))
            self.w = nn.Parameter(torch.full(E, math.log(0.5)))
            self.s = nn.Parameter(torch.zeros(E))
            self.b = nn.Parameter(torch.linspace(-2, 2, M).expand(*E).clone())
        elif act == "mix":
            self.c = nn.Parameter(torch.zeros(n_layers - 1, K, d))
            self.w = nn.Parameter(torch.full(E, math.log(0.3)))
            self.wr = nn.Parameter(torch.full(E, math.log(0.05)))
            self.wl = nn.Parameter(torch.full(E, math.log(0.05)))
            self.s = nn.Parameter(torch.zeros(E))
            self.b = nn.Parameter(torch.linspace(-2, 2, M).expand(*E).clone())
        elif act == "rqs":
            self.wid = nn.Parameter(torch.zeros(E))
            self.hei = nn.Parameter(torch.zeros(E))
            self.der = nn.Parameter(torch.zeros(n_layers - 1, K, d, M - 1))
        self.prior_mean = prior_mean
        self.table = nn.Parameter(torch.zeros(K, n_labels, 2 * d))
        self.register_buffer("eye", torch.eye(d))

    def weights(self, l):
        if self.param == "full":
            return self.W[l]
        L = torch.tril(self.lower[l], -1) + self.eye
        U = torch.triu(self.upper[l], 1) + torch.diag_embed(self.logdiag[l].exp())
        W = L @ U
        return torch.gather(W, 1, self.perm[l].unsqueeze(-1).expand(-1, -1, self.d))

    def elementwise(self, l, a):
        if self.act == "tanhsum":
            sc = self.s[l].exp().unsqueeze(1)
            t = torch.tanh(sc * (a.unsqueeze(-1) - self.b[l].unsqueeze(1)))
            wt = self.w[l].exp().unsqueeze(1)
            cexp = self.c[l].exp().unsqueeze(1)
            h = cexp * a + (wt * t).sum(-1)
            deriv = cexp + (wt * sc * (1 - t * t)).sum(-1)
            return h, deriv.log().sum(-1)
        if self.act == "mix":
            sc = self.s[l].exp().unsqueeze(1)
            y = sc * (a.unsqueeze(-1) - self.b[l].unsqueeze(1))
            sig = torch.sigmoid(y)
            sp = F.softplus(y)
            t = 2 * sig - 1
            wb = self.w[l].exp().unsqueeze(1); wr = self.wr[l].exp().unsqueeze(1); wl = self.wl[l].exp().unsqueeze(1)
            cexp = self.c[l].exp().unsqueeze(1)
            h = cexp * a + (wb * t + (wr * sp + wl * (y - sp)) / sc).sum(-1)
            deriv = cexp + (wb * sc * 2 * sig * (1 - sig) + wr * sig + wl * (1 - sig)).sum(-1)
            return h, deriv.log().sum(-1)
        if self.act == "rqs":
            tr = MonotonicRQSTransform(self.wid[l].unsqueeze(1), self.hei[l].unsqueeze(1), self.der[l].unsqueeze(1), bound=self.bound)
            h, ladj = tr.call_and_ladj(a)
            return h, ladj.sum(-1)

    def encode(self, x):
        h = x.unsqueeze(0).expand(self.K, -1, -1)
        if self.param == "full":
            logdet = torch.linalg.slogdet(self.W)[1].sum(0).unsqueeze(-1)
        else:
            logdet = self.logdiag.sum((0, 2)).unsqueeze(-1)
        for l in range(self.L):
            W = self.weights(l)
            a = torch.baddbmm(self.bias[l].unsqueeze(1), h, W.transpose(1, 2))
            if l < self.L - 1:
                h, ld = self.elementwise(l, a)
                logdet = logdet + ld
            else:
                h = a
        return h, logdet

    def log_prob(self, x, u):
        z, logdet = self.encode(x)
        p = self.table[:, u]
        loc, logvar = p.chunk(2, -1)
        if not self.prior_mean:
            loc = torch.zeros_like(loc)
        lp = -0.5 * (LOG2PI + logvar + (z - loc) ** 2 * torch.exp(-logvar))
        return lp.sum(-1) + logdet, z


def fit(x, u, n_labels, K=1, steps=2000, batch=256, lr=3e-3, seed=0, warmup=0, betas=(0.9, 0.999), trace=0, data=None, **kw):
    torch.manual_seed(seed)
    m = IMLP(x.shape[1], n_labels, K=K, **kw)
    opt = torch.optim.Adam(m.parameters(), lr=lr, betas=tuple(betas))
    def f(t):
        w = min(1.0, (t + 1) / warmup) if warmup else 1.0
        return w * 0.5 * (1 + math.cos(math.pi * t / steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    g = torch.Generator().manual_seed(seed + 1)
    N = len(x)
    t0 = time.perf_counter()
    for t in range(steps):
        idx = torch.randint(0, N, (batch,), generator=g)
        lp, _ = m.log_prob(x[idx], u[idx])
        loss = -lp.mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if m.param == "full" and m.relgrad:
            with torch.no_grad():
                W = m.W
                m.W.grad = m.W.grad @ W.transpose(-1, -2) @ W
        opt.step(); sched.step()
        if trace and (t + 1) % trace == 0:
            with torch.no_grad():
                lp, z = m.log_prob(x, u)
            print(t + 1, [round(mean_corr_coef(data.s, z[k].numpy()), 3) for k in range(m.K)], lp.mean(1).numpy().round(3).tolist(), flush=True)
    return m, time.perf_counter() - t0


if __name__ == "__main__":
    torch.set_num_threads(1)
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    tag = json.dumps(cfg)
    setting = cfg.pop("setting", {"n_sources": 5})
    seeds = cfg.pop("seeds", [7001, 7003])
    mseed = cfg.pop("model_seed", 0)
    for ds in seeds:
        data = make_nonstationary(**setting, random_state=ds)
        x = data.x.astype(np.float32)
        whiten = cfg.get("whiten", False)
        if whiten:
            xc = x - x.mean(0)
            ev, evec = np.linalg.eigh(np.cov(xc.T))
            x = (xc @ evec / np.sqrt(ev)).astype(np.float32)
        else:
            x = (x - x.mean(0)) / x.std(0)
        xt = torch.from_numpy(x); ut = torch.from_numpy(data.u).long()
        m, sec = fit(xt, ut, int(data.u.max()) + 1, seed=mseed, data=data, **{k: v for k, v in cfg.items() if k != "whiten"})
        with torch.no_grad():
            lp, z = m.log_prob(xt, ut)
        ll = lp.mean(1).numpy()
        mccs = [mean_corr_coef(data.s, z[k].numpy()) for k in range(m.K)]
        best = int(np.argmax(ll))
        print(f"{tag} seed {ds} time {sec:.1f}s mcc {np.round(mccs,3).tolist()} ll {np.round(ll,3).tolist()} best {mccs[best]:.3f}", flush=True)
