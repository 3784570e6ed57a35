"""The identifiable flow as a torch module: a bijection and the iVAE's conditional prior.

With zero noise and an invertible mixing, the iVAE's generative model becomes a
normalising flow x = f(z) whose base distribution is the factorised exponential-family
prior p(z | u) (the paper's special case; iFlow, Li et al. 2020). It is fitted by exact
maximum likelihood:

    log p(x | u) = log p(f^{-1}(x) | u) + log |det d f^{-1}(x) / dx|.

The bijection is an invertible MLP (:mod:`nica.flows.invertible_mlp`, the default) or one
of the zuko flows of :mod:`nica.flows.transforms`. K independent flows ("restarts") can be
stacked as one module (invertible MLP only); every tensor then carries a leading
dimension K, as in :class:`nica.models.IVAEModule`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nica.flows.invertible_mlp import InvertibleMLP
from nica.flows.transforms import make_flow_transform
from nica.models.base import LatentModule, LossOutput
from nica.models.priors import PRIORS, PriorParams

#: the bijection whose parameters are stacked over restarts
STACKABLE_FLOW = "invertible-mlp"
#: ``prior="auto"``: the restarts are shared out among these families, and the likelihood
#: chooses (the first takes the odd one out)
AUTO_PRIORS = ("gaussian", "laplace")


def prior_families(prior: str, n_models: int) -> list[tuple[str, int]]:
    """(family, number of restarts) in restart order: one family, or for ``"auto"`` the
    restarts split between :data:`AUTO_PRIORS` (a single restart is Gaussian)."""
    if prior != "auto":
        return [(prior, n_models)]
    counts = [n_models // len(AUTO_PRIORS) + (i < n_models % len(AUTO_PRIORS)) for i in range(len(AUTO_PRIORS))]
    return [(name, count) for name, count in zip(AUTO_PRIORS, counts) if count > 0]


@dataclass
class IFlowConfig:
    """Architecture of an identifiable flow.

    Attributes
    ----------
    n_latent : the latent width n, which is also the width of the flow's input (a
        bijection: X itself when n equals its number of features, else its top n principal
        components); ``x_dim`` is its former name, kept as a read-only alias and read from
        models saved before model format 4.
    aux_dim : the auxiliary (one-hot or continuous) width.
    prior : a registered prior name (see :mod:`nica.models.priors`), or ``"auto"``: the
        restarts are shared out between a Gaussian and a Laplace prior
        (:func:`prior_families`), each restart keeping its family.
    prior_mean, prior_scale : whether the prior's location / scale depend on u (iFlow
        learns both natural parameters of a Gaussian).
    prior_net : ``"table"`` (one row per one-hot label) or ``"mlp"``.
    flow : ``"invertible-mlp"`` or a zuko flow step of :data:`nica.flows.FLOW_STEPS`.
    n_flows : element-wise layers of the invertible MLP, or steps of a zuko flow.
    n_bins : tanh units of each element-wise function (invertible MLP) or spline bins.
    n_tail_units : tail units of each element-wise function (invertible MLP only; see
        :class:`nica.flows.invertible_mlp.MonotoneTanhSum`).
    tail_bound : spline interval [-B, B] (zuko spline flows).
    hidden_dim, n_layers, activation : the conditioner MLPs of a zuko flow and the prior MLP.
    init_noise : invertible MLP: weights start at the identity plus this much noise.
    n_models : K stacked restarts (invertible MLP only).
    """

    n_latent: int
    aux_dim: int
    prior: str = "gaussian"
    prior_mean: bool = True
    prior_scale: bool = True
    prior_net: str = "table"
    flow: str = STACKABLE_FLOW
    n_flows: int = 3
    n_bins: int = 8
    n_tail_units: int = 0
    tail_bound: float = 5.0
    hidden_dim: int = 64
    n_layers: int = 2
    activation: str = "relu"
    init_noise: float = 0.1
    n_models: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> IFlowConfig:
        """A config from :meth:`to_dict`'s record, or from one saved before model format 4
        (its width was called ``x_dim``)."""
        record = dict(record)
        if "x_dim" in record and "n_latent" not in record:
            record["n_latent"] = record.pop("x_dim")
        return cls(**record)

    @property
    def x_dim(self) -> int:
        """Former name of :attr:`n_latent` (the flow's input is as wide as its latents)."""
        return self.n_latent


class IFlowModule(LatentModule):
    """x = f(z), z ~ p(z | u) factorised; ``encode`` is f^{-1}, ``decode`` is f.

    Every method works on K stacked models: latents and observations are ``(K, batch, n)``,
    log-densities ``(K, batch)``.
    """

    def __init__(self, config: IFlowConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        if c.prior != "auto" and c.prior not in PRIORS:
            raise ValueError(f"unknown prior {c.prior!r}; choose 'auto' or one of {sorted(PRIORS)}")
        if not isinstance(c.n_models, int) or c.n_models < 1:
            raise ValueError(f"n_models must be a positive integer, got {c.n_models!r}")
        if c.flow == STACKABLE_FLOW:
            if c.n_bins < 1:
                raise ValueError(f"n_bins must be >= 1, got {c.n_bins}")
            if not isinstance(c.n_tail_units, int) or c.n_tail_units < 0:
                raise ValueError(f"n_tail_units must be a non-negative integer, got {c.n_tail_units!r}")
            self.bijection = InvertibleMLP(c.n_latent, c.n_flows, c.n_bins, c.n_models, c.init_noise,
                                           n_tail_units=c.n_tail_units)
            self.transform = None
        else:
            if c.n_models != 1:
                raise ValueError(
                    f"flow={c.flow!r} fits one model at a time: pass n_restarts=1, or use "
                    f"flow={STACKABLE_FLOW!r} for restarts")
            self.transform = make_flow_transform(
                c.n_latent, flow=c.flow, n_flows=c.n_flows, n_bins=c.n_bins, tail_bound=c.tail_bound,
                hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation,
            )
        self.families = prior_families(c.prior, c.n_models)
        # one prior module per family, each stacked over that family's restarts
        self.priors = nn.ModuleList(
            PRIORS[name](
                c.n_latent, c.aux_dim, learn_mean=c.prior_mean, learn_scale=c.prior_scale,
                conditional=True, aux_net=c.prior_net,
                hidden_dim=c.hidden_dim, n_layers=c.n_layers, activation=c.activation, n_models=count,
            )
            for name, count in self.families
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f^{-1}(x) ``(K, batch, n)`` and log |det dz/dx| ``(K, batch)`` for x ``(batch, n)``."""
        if self.transform is None:
            return self.bijection(x)
        z, log_det = self.transform().call_and_ladj(x)
        return z.unsqueeze(0), log_det.unsqueeze(0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = f(z): ``(batch, n)`` or ``(K, batch, n)`` -> ``(K, batch, n)``."""
        if self.transform is None:
            return self.bijection.inverse(z)
        return self.transform().inv(z[0] if z.dim() == 3 else z).unsqueeze(0)

    def square_matrices(self) -> list[nn.Parameter]:
        """The invertible MLP's square weights ``(K, n_flows + 1, n, n)`` (the parameters
        that may take orthogonalised momentum steps: :class:`nica.training.optim.FlatAdam`);
        none for a zuko flow."""
        return [] if self.transform is not None else [self.bijection.weight]

    def prior_params(self, u: torch.Tensor) -> PriorParams:
        """Parameters of p(z | u) ``(K, batch, n)`` each (location, and log-variance for a
        Gaussian or log-scale for a Laplace restart), for a batch of auxiliary vectors."""
        params = [prior(u) for prior in self.priors]
        return PriorParams(torch.cat([p.loc for p in params]), torch.cat([p.log_scale for p in params]))

    def prior_log_prob(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log p(z | u) of latents ``(K, batch, n)`` under each restart's prior ``(K, batch)``."""
        out, start = [], 0
        for prior, (_, count) in zip(self.priors, self.families):
            out.append(prior.log_prob(z[start:start + count], prior(u)).sum(-1))
            start += count
        return torch.cat(out)

    def log_prob(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Exact log p(x | u) per model and sample ``(K, batch)``."""
        z, log_det = self.encode(x)
        return self.prior_log_prob(z, u) + log_det

    def loss(
        self,
        x: torch.Tensor,
        u: torch.Tensor,
        *,
        n_data: int,
        generator: torch.Generator | None = None,
    ) -> LossOutput:
        """Negative mean log-likelihood per model ``(K,)``, in the trainer's
        :class:`~nica.models.LossOutput`.

        ``score`` holds the exact log p(x | u), ``reconstruction`` the log-determinant and
        ``kl`` minus log p(z | u), so ``score = reconstruction - kl``; all three
        ``(K, batch)``. ``n_data`` and ``generator`` are unused: the objective is exact and
        deterministic.
        """
        z, log_det = self.encode(x)
        log_pz = self.prior_log_prob(z, u)
        log_px = log_pz + log_det
        return LossOutput(-log_px.mean(-1), log_px.detach(), log_det.detach(), -log_pz.detach())

    def latents(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """z = f^{-1}(x) of every stacked model ``(K, batch, n)`` (u is not needed)."""
        return self.encode(x)[0]

    def select(self, k: int) -> IFlowModule:
        """Model ``k`` of the stack as a module of its own (K = 1)."""
        if not 0 <= k < self.config.n_models:
            raise IndexError(f"model {k} out of range for {self.config.n_models} stacked models")
        if self.config.n_models == 1:
            return self
        family, offset = self._family_of(k)
        single = IFlowModule(dataclasses.replace(self.config, n_models=1, prior=self.families[family][0]))
        single.to(next(self.parameters()))  # same device and dtype before the values are copied in
        state = {}
        for name, value in self.state_dict().items():
            if name.startswith("priors."):  # priors.<family>.<rest>, stacked over that family
                _, index, rest = name.split(".", 2)
                if int(index) == family:
                    state[f"priors.0.{rest}"] = value[k - offset:k - offset + 1].clone()
            else:
                state[name] = value[k:k + 1].clone()
        single.load_state_dict(state)
        return single

    def _family_of(self, k: int) -> tuple[int, int]:
        """The index of restart k's prior family and the index of that family's first restart."""
        start = 0
        for index, (_, count) in enumerate(self.families):
            if k < start + count:
                return index, start
            start += count
        raise IndexError(k)

    def restart_priors(self) -> list[str]:
        """The prior family of each restart, in order ``(K,)``."""
        return [name for name, count in self.families for _ in range(count)]


__all__ = ["IFlowConfig", "IFlowModule", "STACKABLE_FLOW"]
