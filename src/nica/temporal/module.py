"""The temporal iVAE as torch modules: a learned inverse transition and the window ELBO.

Generative model (TDRL, Yao et al. 2022): x_t = f(z_t) + noise, and the latents follow

    z_t = g(z_{t-1}, ..., z_{t-L}, eps_t),    eps_{t,i} independent, eps_t ~ p_eps(. | u_t),

with g invertible in eps given the past. The prior is written with the learned inverse
transition eps_t = r(z_t, z_{t-1..t-L}, u_t), component-wise (eps_i reads z_{t,i} and
the past only, so the Jacobian d eps_t / d z_t is diagonal):

    log p(z_t | z_{t-1..t-L}, u_t) = sum_i log p_eps(eps_i | u_t) + log |d eps_i / d z_{t,i}|.

Two kinds of inference:

* ``"vae"`` (TDRL's): q(z_t | x_t) factorised over time, a Gaussian decoder. The ELBO
  of a series is a sum over steps t of terms that each need samples of z_{t-L..t} only.
* ``"flow"``: no observation noise and an invertible mixing, x_t = f(z_t) with f a
  normalising flow (as :class:`nica.IFlow`); z_t = f^{-1}(x_t) exactly and the series'
  log-likelihood is exact, a sum over t of
  log p(z_t | z_{t-1..t-L}, u_t) + log |det d f^{-1}(x_t) / d x_t|.

Either way one training example is a window x_{t-L..t} and the objective a sum over
windows, so a mini-batch of windows is an unbiased estimate of the series' objective
(the first L steps of a series enter as the past of later steps; their own prior term
is left out: the objective is conditional on them).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nica.flows.transforms import make_flow_transform
from nica.models.decoders import GaussianDecoder
from nica.models.encoders import GaussianEncoder
from nica.models.base import LatentModule, LossOutput
from nica.models.networks import MLP, StackedLinear, XTanh
from nica.models.priors import PRIORS

LOG_2PI = math.log(2 * math.pi)
TRANSITIONS = ("mlp", "affine")
INFERENCE = ("flow", "vae")
#: hidden nonlinearities of the inverse transition whose derivative is written out here
TRANSITION_ACTIVATIONS = ("lrelu", "xtanh", "tanh")
#: |d eps / d z| is floored here before the log: a non-monotone MLP can reach zero slope
MIN_SLOPE = 1e-6
#: bound of the affine transition's log-scale (|s| <= this), so that exp(-s) stays finite
MAX_LOG_SCALE = 7.0


@dataclass
class TemporalIVAEConfig:
    """Architecture of a temporal iVAE; saved as JSON beside the weights.

    Attributes
    ----------
    x_dim, n_latent, lags, aux_dim : observed width, latent width, lags L, width of the
        encoded u (one-hot domains; 1 when there is a single domain).
    inference : ``"flow"`` (exact likelihood, ``x_dim == n_latent``) or ``"vae"``.
    innovation : the family of p_eps(eps_i | u): ``"laplace"`` or ``"gaussian"`` (or
        another prior in :data:`nica.models.PRIORS`), zero location, log-scale per u.
    innovation_net : map from u to the log-scales: ``"table"`` or ``"mlp"``.
    transition : ``"mlp"``, TDRL's nonparametric inverse transition, one MLP per
        component eps_i = r_i(z_{t,i}, z_{t-1..t-L}, u); or ``"affine"``, a location-scale
        transition eps_i = (z_{t,i} - m_i(past, u)) exp(-s_i(past, u)), invertible by
        construction.
    transition_hidden, transition_layers, transition_activation : the transition's MLP(s).
    flow, n_flows, n_bins, tail_bound, flow_hidden : the bijection of ``"flow"``
        inference (:func:`nica.flows.make_flow_transform`, conditioners of 2 hidden
        layers of ``flow_hidden`` units).
    hidden_dim, n_layers, activation : encoder q(z_t | x_t) and decoder MLPs of ``"vae"``
        inference (and the MLP from u to the innovations' scales, when it is one).
    decoder_var : fixed decoder variance or ``"learned"`` (per feature), ``"vae"`` only.
    """

    x_dim: int
    n_latent: int
    lags: int
    aux_dim: int = 1
    inference: str = "flow"
    innovation: str = "laplace"
    innovation_net: str = "table"
    transition: str = "mlp"
    transition_hidden: int = 64
    transition_layers: int = 3
    transition_activation: str = "lrelu"
    flow: str = "spline-autoregressive"
    n_flows: int = 3
    n_bins: int = 8
    tail_bound: float = 5.0
    flow_hidden: int = 64
    hidden_dim: int = 64
    n_layers: int = 3
    activation: str = "xtanh"
    decoder_var: float | str = 0.001

    def to_dict(self) -> dict:
        return asdict(self)


def _activation_slope(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The derivative of a hidden activation module at its input ``h``."""
    if isinstance(module, nn.LeakyReLU):
        return torch.where(h > 0, torch.ones_like(h), torch.full_like(h, module.negative_slope))
    if isinstance(module, XTanh):
        return 1.0 - torch.tanh(h) ** 2 + module.slope
    if isinstance(module, nn.Tanh):
        return 1.0 - torch.tanh(h) ** 2
    raise ValueError(f"no derivative written for activation {type(module).__name__}; "
                     f"use one of {TRANSITION_ACTIVATIONS}")


class InverseTransition(nn.Module):
    """eps_t = r(z_t, z_{t-1..t-L}, u_t), component-wise, with log |d eps_i / d z_{t,i}|.

    ``"mlp"``: n MLPs side by side (one :class:`~nica.models.networks.StackedLinear`
    model per component), component i reading ``[z_{t,i}, z_{t-1}, ..., z_{t-L}, u]``;
    the derivative in z_{t,i} is carried forward through the layers with the values
    (one extra matrix product a layer), so no autograd Jacobian is needed.
    ``"affine"``: one MLP maps ``[z_{t-1..t-L}, u]`` to a location m and log-scale s per
    component; eps_i = (z_{t,i} - m_i) exp(-s_i) and the log-derivative is -s_i.
    """

    def __init__(self, n_latent: int, lags: int, aux_dim: int, *, kind: str = "mlp", hidden_dim: int = 64,
                 n_layers: int = 3, activation: str = "lrelu") -> None:
        super().__init__()
        if kind not in TRANSITIONS:
            raise ValueError(f"unknown transition {kind!r}; choose one of {TRANSITIONS}")
        if activation not in TRANSITION_ACTIVATIONS:
            raise ValueError(f"transition_activation must be one of {TRANSITION_ACTIVATIONS}, got {activation!r}")
        self.kind, self.n_latent = kind, n_latent
        context = lags * n_latent + aux_dim
        if kind == "mlp":
            self.net = MLP(1 + context, 1, hidden_dim, n_layers, activation, n_models=n_latent)
        else:
            self.net = MLP(context, 2 * n_latent, hidden_dim, n_layers, activation)

    def forward(self, z_t: torch.Tensor, past: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_t ``(batch, n)``, past ``(batch, L * n)`` (``[z_{t-1}, ..., z_{t-L}]``), u
        ``(batch, aux_dim)`` -> eps and log |d eps_i / d z_{t,i}|, each ``(batch, n)``."""
        context = torch.cat([past, u], dim=-1)
        if self.kind == "affine":
            loc, raw = self.net(context)[0].chunk(2, dim=-1)
            log_scale = MAX_LOG_SCALE * torch.tanh(raw / MAX_LOG_SCALE)
            return (z_t - loc) * torch.exp(-log_scale), -log_scale
        n, batch = self.n_latent, z_t.shape[0]
        h = torch.cat([z_t.T[..., None], context.expand(n, batch, context.shape[-1])], dim=-1)
        tangent: torch.Tensor | None = None  # d h / d z_{t,i}, (n, batch or 1, width)
        for module in self.net.net:
            if isinstance(module, StackedLinear):
                if tangent is None:  # the first layer: z_{t,i} is input column 0
                    tangent = module.weight[:, None, :, 0]
                else:
                    tangent = torch.bmm(tangent.expand(n, batch, -1), module.weight.transpose(-1, -2))
                h = module(h)
            else:
                tangent = tangent * _activation_slope(module, h)
                h = module(h)
        eps = h[..., 0].T
        slope = tangent.expand(n, batch, 1)[..., 0].T
        return eps, torch.log(slope.abs().clamp_min(MIN_SLOPE))


class TemporalIVAEModule(LatentModule):
    """The observation model (a flow, or encoder and decoder) and the transition prior
    p(z_t | z_{t-1..t-L}, u_t)."""

    def __init__(self, config: TemporalIVAEConfig) -> None:
        super().__init__()
        c = self.config = config
        if c.innovation not in PRIORS:
            raise ValueError(f"unknown innovation family {c.innovation!r}; choose one of {sorted(PRIORS)}")
        if c.inference not in INFERENCE:
            raise ValueError(f"inference must be one of {INFERENCE}, got {c.inference!r}")
        net = dict(hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation)
        if c.inference == "flow":
            if c.x_dim != c.n_latent:
                raise ValueError(f"flow inference needs as many latents as features, got n_latent={c.n_latent} "
                                 f"and x_dim={c.x_dim}; use inference='vae'")
            self.flow = make_flow_transform(c.x_dim, flow=c.flow, n_flows=c.n_flows, n_bins=c.n_bins,
                                            tail_bound=c.tail_bound, hidden_dim=c.flow_hidden)
        else:
            self.encoder = GaussianEncoder(c.x_dim, 0, c.n_latent, use_aux=False, shared=True, **net)
            self.decoder = GaussianDecoder(c.n_latent, c.x_dim, variance=c.decoder_var, **net)
        self.transition = InverseTransition(c.n_latent, c.lags, c.aux_dim, kind=c.transition,
                                            hidden_dim=c.transition_hidden, n_layers=c.transition_layers,
                                            activation=c.transition_activation)
        # p_eps(eps | u): zero location, a log-scale per u
        self.innovation = PRIORS[c.innovation](c.n_latent, c.aux_dim, learn_mean=False, learn_scale=True,
                                               aux_net=c.innovation_net, **net)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For x ``(..., d)``: the latents ``(..., n)`` and, for a flow, log |det dz/dx|
        ``(...)``; for a VAE, the posterior mean and log-variance ``(..., n)``."""
        flat = x.reshape(-1, x.shape[-1])
        shape = (*x.shape[:-1], self.config.n_latent)
        if self.config.inference == "flow":
            z, log_det = self.flow().call_and_ladj(flat)
            return z.reshape(shape), log_det.reshape(x.shape[:-1])
        mean, logvar = self.encoder(flat, flat.new_empty(0))
        return mean[0].reshape(shape), logvar[0].reshape(shape)

    def latents(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """z_t = f^{-1}(x_t) (flow) or the posterior mean (VAE): ``(..., d) -> (..., n)``;
        u is not needed (the encoder reads x_t alone)."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x_t = f(z_t) (flow) or the decoder mean (VAE): ``(batch, n) -> (batch, d)``."""
        if self.config.inference == "flow":
            return self.flow().inv(z)
        return self.decoder.mean(z)[0]

    def log_prior(self, z_t: torch.Tensor, past: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log p(z_t | z_{t-1..t-L}, u) ``(batch,)``; past ``(batch, L * n)``, most recent first."""
        eps, log_slope = self.transition(z_t, past, u)
        params = self.innovation(u)
        return (self.innovation.log_prob(eps, params)[0] + log_slope).sum(-1)

    def window_terms(self, x: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """For windows x ``(batch, L + 1, d)`` (oldest first) and u of their last step:
        the observation term and log p(z_t | past, u), each ``(batch,)``.

        Flow: log |det d f^{-1}(x_t) / d x_t| and the prior at z = f^{-1}(x); their sum is
        log p(x_t | x_{t-1..t-L}, u). VAE: log p(x_t | z_t) + the entropy of q(z_t | x_t),
        and the prior, at one reparameterised sample of z_{t-L..t}; their sum is the ELBO.
        """
        if self.config.inference == "flow":
            z, log_det = self.encode(x)
            observation = log_det[:, -1]
        else:
            mean, logvar = self.encode(x)
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * noise
            entropy = 0.5 * (LOG_2PI + 1.0 + logvar[:, -1]).sum(-1)
            observation = self.decoder.log_prob(x[:, -1], z[None, :, -1])[0] + entropy
        past = z[:, :-1].flip(1).reshape(len(z), -1)
        return observation, self.log_prior(z[:, -1], past, u)

    def loss(self, x: torch.Tensor, u: torch.Tensor, *, n_data: int,
             generator: torch.Generator | None = None) -> LossOutput:
        """Negative mean objective of a mini-batch of windows, in the trainer's
        :class:`~nica.models.LossOutput`: ``score`` holds the exact log-likelihood (flow)
        or the ELBO (VAE) per window, ``reconstruction`` the observation term and ``kl``
        minus the prior term (``score = reconstruction - kl``). ``n_data`` is unused."""
        observation, log_prior = self.window_terms(x, u, generator)
        objective = observation + log_prior
        return LossOutput(-objective.mean(), objective.detach(), observation.detach(), -log_prior.detach())


__all__ = ["INFERENCE", "TRANSITIONS", "InverseTransition", "TemporalIVAEConfig", "TemporalIVAEModule"]
