"""The iVAE torch module: inference, generative model and loss in one place."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from nica.models.analytic import AnalyticLoss, analytic_support
from nica.models.base import LatentModule, LossOutput
from nica.models.decoders import DECODERS, GaussianDecoder
from nica.models.encoders import GaussianEncoder
from nica.models.objectives import (
    ELBO_WEIGHTS,
    Objective,
    ObjectiveWeights,
    decomposed_objective,
)
from nica.models.priors import PRIORS, ConditionalPrior, PriorParams

LOG_2PI = math.log(2 * math.pi)


@dataclass
class IVAEConfig:
    """Architecture of an iVAE; saved as JSON beside the weights.

    The defaults are the estimator's (see docs/tuning.md), except ``prior_net``, whose
    ``"mlp"`` serves any u (the estimator picks a table for categorical u).

    Attributes
    ----------
    x_dim, aux_dim, n_latent : observed, auxiliary (one-hot or continuous) and latent widths.
    prior : ``"gaussian"``, ``"laplace"`` or another name in :data:`~nica.models.priors.PRIORS`.
    prior_mean, prior_scale : whether the prior's location / scale depend on u.
        The authors' model has ``prior_mean=False`` (zero mean, variance modulation only).
    prior_net : ``"mlp"`` (the authors' choice) or ``"table"`` (one row per one-hot label).
    conditional : ``False`` turns the model into a plain VAE: prior independent of u and
        an encoder q(z|x) that does not see u.
    shared_encoder : one encoder network with mean and log-variance heads instead of two.
    encoder_sees_u : q(z | x, u) as in the paper, or q(z | x) (for noise-free data the true
        posterior does not depend on u).
    decoder : ``"gaussian"`` or ``"bernoulli"``.
    decoder_var : fixed Gaussian decoder variance or ``"learned"`` (per dimension).
    hidden_dim, n_layers, activation : shared by encoder, decoder and prior MLPs.
    prior_penalty : strength of the prior's own penalty on its parameters, added to the
        loss (the latent causal prior: L1 on its weights; 0, the default, for none).
    n_models : K independent models (restarts) trained side by side; every parameter has
        a leading dimension K and every output a leading ``(K, ...)``.
    """

    x_dim: int
    aux_dim: int
    n_latent: int
    prior: str = "gaussian"
    prior_mean: bool = False
    prior_scale: bool = True
    prior_net: str = "mlp"
    conditional: bool = True
    shared_encoder: bool = True
    encoder_sees_u: bool = False
    decoder: str = "gaussian"
    decoder_var: float | str = 0.1
    hidden_dim: int = 50
    n_layers: int = 3
    activation: str = "xtanh"
    n_models: int = 1
    prior_penalty: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class IVAEModule(LatentModule):
    """Identifiable VAE: q(z|x,u), p(x|z) and the conditional prior p(z|u).

    Two training settings are attributes, not part of the saved :class:`IVAEConfig`:
    ``objective`` (an :class:`~nica.models.objectives.Objective`, the plain ELBO unless set),
    which gives the loss its term weights at each step, and ``analytic_gradients``: the
    opt-in fast path of :meth:`fused_loss`, the hand-derived backward of
    :mod:`nica.models.analytic` for the configurations it covers.
    """

    def __init__(self, config: IVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.objective = Objective()
        self.analytic_gradients = False
        c = config
        if c.prior not in PRIORS:
            raise ValueError(f"unknown prior {c.prior!r}; choose one of {sorted(PRIORS)}")
        if c.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {c.decoder!r}; choose one of {sorted(DECODERS)}")
        if not isinstance(c.n_models, int) or c.n_models < 1:
            raise ValueError(f"n_models must be a positive integer, got {c.n_models!r}")
        net = dict(
            hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation, n_models=c.n_models
        )
        self.encoder = GaussianEncoder(
            c.x_dim,
            c.aux_dim,
            c.n_latent,
            use_aux=c.conditional and c.encoder_sees_u,
            shared=c.shared_encoder,
            **net,
        )
        if c.decoder == "gaussian":
            self.decoder: nn.Module = GaussianDecoder(
                c.n_latent, c.x_dim, variance=c.decoder_var, **net
            )
        else:
            self.decoder = DECODERS[c.decoder](c.n_latent, c.x_dim, **net)
        self.prior = PRIORS[c.prior](
            c.n_latent,
            c.aux_dim,
            learn_mean=c.prior_mean,
            learn_scale=c.prior_scale,
            conditional=c.conditional,
            aux_net=c.prior_net,
            **net,
        )
        if c.prior_penalty:
            if type(self.prior).penalty is ConditionalPrior.penalty:
                raise ValueError(f"prior {c.prior!r} has no penalty; prior_penalty must be 0")
            self.prior.penalty_strength = float(c.prior_penalty)

    def inference(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each ``(K, batch, n_latent)``; x ``(batch, x_dim)``."""
        return self.encoder(x, u)

    def generative(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder mean E[x | z]: ``([K,] batch, n_latent) -> (K, batch, x_dim)``."""
        return self.decoder.mean(z)

    def prior_params(self, u: torch.Tensor) -> PriorParams:
        """Parameters of p(z | u) for a batch of auxiliary vectors."""
        return self.prior(u)

    @staticmethod
    def reparameterize(
        mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """One sample z = mean + std * eps with eps drawn from ``generator``."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def loss(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_data: int,
        weights: ObjectiveWeights = ELBO_WEIGHTS,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Objective on a mini-batch; ``loss`` is the quantity to minimise.

        x: ``(batch, x_dim)``, u: ``(batch, aux_dim)``; ``n_data`` is the data-set size
        (used by the reweighted objective's estimate of the aggregate posterior).
        """
        mean, logvar = self.inference(x, u)
        z = self.reparameterize(mean, logvar, generator)
        prior = self.prior_params(u)
        log_px = self.decoder.log_prob(x, z)
        kl = self.prior.kl_from_gaussian(mean, logvar, prior)
        elbo = log_px - kl
        if weights == ELBO_WEIGHTS:
            objective = elbo
        else:
            noise_sq = (z - mean) ** 2 * torch.exp(-logvar)
            log_qz_x = -0.5 * (LOG_2PI + logvar + noise_sq).sum(-1)
            log_pz = self.prior.log_prob(z, prior).sum(-1)
            objective = decomposed_objective(
                log_px, log_qz_x, log_pz, z, mean, logvar, n_data, weights
            )
        loss = -objective.mean(-1)
        penalty = self.prior.penalty(prior)
        if penalty is not None:
            loss = loss + penalty.mean(-1)
        return LossOutput(loss, elbo.detach(), log_px.detach(), kl.detach())

    def training_loss_kwargs(self, step: int, max_steps: int) -> dict:
        """The term weights of :attr:`objective` at ``step`` (annealed ones move with it)."""
        return {"weights": self.objective.weights_at(step, max_steps)}

    def fused_loss(self) -> AnalyticLoss | None:
        """The hand-derived loss and gradients when ``analytic_gradients`` is on and
        :func:`~nica.models.analytic.analytic_support` covers this configuration, else None."""
        if self.analytic_gradients and analytic_support(self) is None:
            return AnalyticLoss(self)
        return None

    def latents(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Posterior means ``(K, batch, n_latent)``."""
        return self.inference(x, u)[0]

    @torch.no_grad()
    def elbo(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per-sample ELBO ``(K, batch)`` with an ``n_samples``-sample reconstruction term."""
        mean, logvar = self.inference(x, u)
        kl = self.prior.kl_from_gaussian(mean, logvar, self.prior_params(u))
        rec = torch.stack(
            [
                self.decoder.log_prob(x, self.reparameterize(mean, logvar, generator))
                for _ in range(n_samples)
            ]
        ).mean(0)
        return rec - kl

    def select(self, index: int) -> IVAEModule:
        """A single-model copy (``n_models=1``) of stacked model ``index``."""
        if not 0 <= index < self.config.n_models:
            raise IndexError(f"model index {index} out of range for {self.config.n_models} models")
        with torch.random.fork_rng(devices=[]):  # its random init is overwritten: keep global RNG
            single = IVAEModule(replace(self.config, n_models=1))
        reference = next(self.parameters())
        single.to(device=reference.device, dtype=reference.dtype)
        single.load_state_dict({k: v[index : index + 1] for k, v in self.state_dict().items()})
        return single.train(self.training)
