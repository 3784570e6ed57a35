"""The switching temporal flow as torch modules: K regime-dependent transitions and a
hidden Markov chain over the regimes, on top of a normalising flow.

Generative model: the regime c_t follows a Markov chain (initial distribution pi,
transition matrix A), the latents follow the transition of the current regime,

    z_t = m_{c_t}(z_{t-1..t-L}, u_t) + exp(s_{c_t}(z_{t-1..t-L}, u_t)) * eps_t,   eps_{t,i} iid,

and x_t = f(z_t) with f a normalising flow (on the top principal components of x when
there are more features than latents, :class:`nica.flows.projection.InputProjection`).
With the flow, z_t = f^{-1}(x_t) is a deterministic function of x_t, so

    log p(x_{L..T} | x_{<L}) = sum_t log |det d f^{-1} / d x_t|
                               + log sum_{c_L..c_T} pi_{c_L} prod_t A_{c_{t-1} c_t} p(z_t | past, u_t, c_t)

is exact: the second term is the forward algorithm (:mod:`nica.temporal.hmm`) over the
per-regime emissions log p(z_t | past, u_t, c_t = k). One training example is a chunk
of consecutive steps (a whole short sequence, or a piece of a long series: the chain
starts afresh at pi at each chunk's first scored step).

The transitions are affine in z_t (invertible by construction, as
``TemporalIVAE(transition="affine")``): K MLPs side by side
(:class:`~nica.models.networks.StackedLinear`), each mapping ``[z_{t-1..t-L}, u_t]`` to a
location and a log-scale per component. :meth:`RegimeTransition.jacobian_l1` is the mean
absolute entry of d m_k / d z_{t-l}, the sparsity penalty of CtrlNS (its transitions
have sparse Jacobians whose supports differ across regimes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nica.flows.transforms import make_flow_transform
from nica.models.base import LatentModule, LossOutput
from nica.models.networks import MLP, StackedLinear
import nica.temporal.hmm as hmm
from nica.temporal.module import MAX_LOG_SCALE, TRANSITION_ACTIVATIONS, _activation_slope

LOG_2PI = math.log(2 * math.pi)
INNOVATIONS = ("gaussian", "laplace")
#: the chain's self-transition probability at initialisation
INITIAL_STAY = 0.5


@dataclass
class SwitchingConfig:
    """Architecture of a switching temporal flow; saved as JSON beside the weights.

    Attributes
    ----------
    n_latent, lags, aux_dim : latents (= the flow's width), lags L, width of the encoded u.
    n_regimes : K.
    n_extra : flow inputs beyond the n latents (extra principal components): the flow has
        n + n_extra dimensions and its last n_extra outputs are white noise (i.i.d. standard
        Gaussian at every step, no regime, no transition).
    innovation : ``"gaussian"`` or ``"laplace"`` (unit scale; the transition sets the scale).
    transition_hidden, transition_layers, transition_activation : each regime's MLP.
    flow, n_flows, n_bins, tail_bound, flow_hidden : the bijection
        (:func:`nica.flows.make_flow_transform`).
    """

    n_latent: int
    lags: int
    aux_dim: int = 1
    n_regimes: int = 1
    n_extra: int = 0
    innovation: str = "gaussian"
    transition_hidden: int = 64
    transition_layers: int = 3
    transition_activation: str = "lrelu"
    flow: str = "spline-autoregressive"
    n_flows: int = 3
    n_bins: int = 8
    tail_bound: float = 5.0
    flow_hidden: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class RegimeTransition(nn.Module):
    """K affine inverse transitions eps = (z_t - m_k) exp(-s_k), with (m_k, s_k) an MLP of
    ``[z_{t-1..t-L}, u]`` per regime k, all K evaluated in one batched pass."""

    def __init__(self, n_latent: int, lags: int, aux_dim: int, n_regimes: int, *, hidden_dim: int = 64,
                 n_layers: int = 3, activation: str = "lrelu") -> None:
        super().__init__()
        if activation not in TRANSITION_ACTIVATIONS:
            raise ValueError(f"transition_activation must be one of {TRANSITION_ACTIVATIONS}, got {activation!r}")
        self.n_latent, self.n_past = n_latent, lags * n_latent
        self.net = MLP(self.n_past + aux_dim, 2 * n_latent, hidden_dim, n_layers, activation, n_models=n_regimes)

    def forward(self, z_t: torch.Tensor, past: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_t ``(B, n)``, past ``(B, L * n)`` (most recent first), u ``(B, aux_dim)`` ->
        eps and log |d eps_i / d z_{t,i}| = -s, each ``(K, B, n)``."""
        loc, raw = self.net(torch.cat([past, u], dim=-1)).chunk(2, dim=-1)
        log_scale = MAX_LOG_SCALE * torch.tanh(raw / MAX_LOG_SCALE)
        return (z_t - loc) * torch.exp(-log_scale), -log_scale

    def jacobians(self, past: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """d m_{k,i} / d z_{t-l,j} of every regime at every row: ``(K, B, n, L * n)``
        (forward-mode: the tangent of the past inputs carried through the layers)."""
        h = torch.cat([past, u], dim=-1)
        tangent: torch.Tensor | None = None  # (K, B or 1, width, L * n)
        for module in self.net.net:
            if isinstance(module, StackedLinear):
                if tangent is None:
                    tangent = module.weight[:, None, :, : self.n_past]
                else:
                    tangent = torch.einsum("kow,kbwp->kbop", module.weight, tangent)
                h = module(h)
            else:
                tangent = tangent * _activation_slope(module, h)[..., None]
                h = module(h)
        return tangent[:, :, : self.n_latent].expand(-1, len(past), -1, -1)

    def jacobian_l1(self, past: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Mean |d m_{k,i} / d z_{t-l,j}| over regimes, entries and the rows of ``past``."""
        return self.jacobians(past, u).abs().mean()


class SwitchingTemporalModule(LatentModule):
    """Flow, K regime transitions and the hidden Markov chain's parameters."""

    def __init__(self, config: SwitchingConfig) -> None:
        super().__init__()
        c = self.config = config
        if c.innovation not in INNOVATIONS:
            raise ValueError(f"innovation must be one of {INNOVATIONS}, got {c.innovation!r}")
        if c.n_extra < 0:
            raise ValueError(f"n_extra must be >= 0, got {c.n_extra!r}")
        self.flow = make_flow_transform(c.n_latent + c.n_extra, flow=c.flow, n_flows=c.n_flows, n_bins=c.n_bins,
                                        tail_bound=c.tail_bound, hidden_dim=c.flow_hidden)
        self.transition = RegimeTransition(c.n_latent, c.lags, c.aux_dim, c.n_regimes, hidden_dim=c.transition_hidden,
                                           n_layers=c.transition_layers, activation=c.transition_activation)
        k = c.n_regimes
        stay = math.log(INITIAL_STAY * (k - 1) / (1 - INITIAL_STAY)) if k > 1 else 0.0
        self.initial_logits = nn.Parameter(torch.zeros(k))
        self.transition_logits = nn.Parameter(torch.eye(k) * stay)
        #: the latents reported are W z (z the flow's output): W = R D^{-1} scales the
        #: innovations to one scale and picks the rotation R the likelihood leaves open,
        #: after training (:mod:`nica.temporal.rotation`); the identity until then
        self.register_buffer("readout", torch.eye(c.n_latent))
        #: weight of the Jacobian penalty in the loss (set by the estimator; not saved)
        self.sparsity = 0.0

    def log_chain(self) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi ``(K,)`` and log A ``(K, K)`` (rows: from, columns: to)."""
        return torch.log_softmax(self.initial_logits, -1), torch.log_softmax(self.transition_logits, -1)

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f^{-1}(y)'s first n outputs and log |det dz/dy| plus the extra outputs'
        white-noise log-density: ``(..., n + n_extra) -> (..., n), (...)``."""
        z, log_det = self.flow().call_and_ladj(y.reshape(-1, y.shape[-1]))
        n = self.config.n_latent
        if self.config.n_extra:
            extra = z[:, n:]
            log_det = log_det - 0.5 * (LOG_2PI * extra.shape[1] + (extra**2).sum(-1))
        return z[:, :n].reshape(*y.shape[:-1], n), log_det.reshape(y.shape[:-1])

    def latents(self, y: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """The reported latents W f^{-1}(y): ``(..., n + n_extra) -> (..., n)``; u is not needed."""
        return self.encode(y)[0] @ self.readout.T

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """y = f(W^{-1} latents) with the extra outputs at their mode 0: ``(B, n) -> (B, n + n_extra)``."""
        z = torch.linalg.solve(self.readout, latents.T).T
        if self.config.n_extra:
            z = torch.cat([z, z.new_zeros(len(z), self.config.n_extra)], dim=-1)
        return self.flow().inv(z)

    def regime_log_prob(self, z_t: torch.Tensor, past: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log p(z_t | past, u, c_t = k) for every regime: ``(B, K)``."""
        eps, log_slope = self.transition(z_t, past, u)
        if self.config.innovation == "gaussian":
            log_density = -0.5 * (LOG_2PI + eps**2)
        else:  # unit-scale Laplace
            log_density = -math.log(2.0) - eps.abs()
        return (log_density + log_slope).sum(-1).T

    def emissions(self, y: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For chunks y ``(N, L + S, n)`` and u ``(N, L + S, aux)``: the per-regime
        log-emissions of the S scored steps ``(N, S, K)``, the flow's log-determinants
        there ``(N, S)`` and the latents ``(N, L + S, n)``."""
        lags = self.config.lags
        z, log_det = self.encode(y)
        n_chunks, length, n = z.shape
        steps = length - lags
        past = torch.cat([z[:, lags - l - 1: lags - l - 1 + steps] for l in range(lags)], dim=-1)
        log_emission = self.regime_log_prob(z[:, lags:].reshape(-1, n), past.reshape(-1, lags * n),
                                            u[:, lags:].reshape(n_chunks * steps, -1))
        return log_emission.reshape(n_chunks, steps, -1), log_det[:, lags:], z

    def chunk_log_likelihood(self, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Exact log p(y_{L..} | y_{<L}, u) of each chunk ``(N,)`` (regimes summed out)."""
        log_emission, log_det, _ = self.emissions(y, u)
        log_initial, log_transition = self.log_chain()
        return hmm.log_likelihood(log_emission, log_initial, log_transition) + log_det.sum(-1)

    def orientation_statistics(self, y: torch.Tensor, u: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For chunks y, u, at every scored step (M = chunks x scored steps): the
        transition Jacobians ``(K, M, n, L * n)``, each regime's posterior ``(M, K)``, the
        transitions' log-scales ``(K, M, n)`` and the flow's latents ``(M, n)``."""
        lags, n = self.config.lags, self.config.n_latent
        log_emission, _, z = self.emissions(y, u)
        proba, _ = hmm.posteriors(log_emission, *self.log_chain())
        steps = z.shape[1] - lags
        past = torch.cat([z[:, lags - l - 1: lags - l - 1 + steps] for l in range(lags)], dim=-1)
        past, aux = past.reshape(-1, lags * n), u[:, lags:].reshape(len(z) * steps, -1)
        z_t = z[:, lags:].reshape(-1, n)
        _, neg_log_scale = self.transition(z_t, past, aux)
        return self.transition.jacobians(past, aux), proba.reshape(-1, proba.shape[-1]), -neg_log_scale, z_t

    def sparsity_penalty(self, y: torch.Tensor, u: torch.Tensor, max_rows: int = 256) -> torch.Tensor:
        """The transition Jacobians' mean |entry| at the latents of (up to ``max_rows``) steps."""
        lags, n = self.config.lags, self.config.n_latent
        z, _ = self.encode(y[: max(1, max_rows // max(1, y.shape[1] - lags))])
        steps = z.shape[1] - lags
        past = torch.cat([z[:, lags - l - 1: lags - l - 1 + steps] for l in range(lags)], dim=-1)
        aux = u[: len(z), lags:]
        return self.transition.jacobian_l1(past.reshape(-1, lags * n), aux.reshape(len(z) * steps, -1))

    def loss(self, y: torch.Tensor, u: torch.Tensor, *, n_data: int = 0,
             generator: torch.Generator | None = None) -> LossOutput:
        """The trainer's :class:`~nica.models.LossOutput` for a mini-batch of chunks:
        ``score`` holds the exact log-likelihood per scored step of each chunk; the loss is
        its negative mean plus ``sparsity`` times the Jacobian penalty."""
        steps = y.shape[1] - self.config.lags
        per_step = self.chunk_log_likelihood(y, u) / steps
        loss = -per_step.mean()
        penalty = torch.zeros(())
        if self.sparsity > 0:
            penalty = self.sparsity * self.sparsity_penalty(y, u)
            loss = loss + penalty
        return LossOutput(loss, per_step.detach(), per_step.detach(), penalty.detach().expand_as(per_step))


__all__ = ["INNOVATIONS", "RegimeTransition", "SwitchingConfig", "SwitchingTemporalModule"]
