"""Torch modules: priors, encoders, decoders and the iVAE module that joins them; the module
protocol every trained module follows (:mod:`nica.models.base`)."""

from nica.models.base import LatentModule, LossOutput
from nica.models.decoders import BernoulliDecoder, GaussianDecoder
from nica.models.encoders import GaussianEncoder
from nica.models.ivae import IVAEConfig, IVAEModule
from nica.models.latent_causal import CausalPriorParams, LatentCausalPrior
from nica.models.networks import MLP, XTanh
from nica.models.objectives import (
    AUTHORS_WEIGHTS,
    ELBO_WEIGHTS,
    Objective,
    ObjectiveWeights,
    beta_tcvae_weights,
    beta_vae_weights,
)
from nica.models.priors import PRIORS, ConditionalPrior, GaussianPrior, LaplacePrior, PriorParams, register_prior

__all__ = [
    "AUTHORS_WEIGHTS",
    "BernoulliDecoder",
    "CausalPriorParams",
    "ConditionalPrior",
    "ELBO_WEIGHTS",
    "GaussianDecoder",
    "GaussianEncoder",
    "GaussianPrior",
    "IVAEConfig",
    "IVAEModule",
    "LaplacePrior",
    "LatentCausalPrior",
    "LatentModule",
    "LossOutput",
    "MLP",
    "PRIORS",
    "Objective",
    "ObjectiveWeights",
    "PriorParams",
    "XTanh",
    "beta_tcvae_weights",
    "beta_vae_weights",
    "register_prior",
]
