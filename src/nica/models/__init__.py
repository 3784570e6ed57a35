"""Torch modules: priors, encoders, decoders and the iVAE module that joins them."""

from nica.models.decoders import BernoulliDecoder, GaussianDecoder
from nica.models.encoders import GaussianEncoder
from nica.models.ivae import IVAEConfig, IVAEModule, LossOutput
from nica.models.networks import MLP, XTanh
from nica.models.objectives import (
    AUTHORS_WEIGHTS,
    ELBO_WEIGHTS,
    ObjectiveWeights,
    beta_tcvae_weights,
    beta_vae_weights,
)
from nica.models.priors import GaussianPrior, LaplacePrior, PriorParams

__all__ = [
    "AUTHORS_WEIGHTS",
    "BernoulliDecoder",
    "ELBO_WEIGHTS",
    "GaussianDecoder",
    "GaussianEncoder",
    "GaussianPrior",
    "IVAEConfig",
    "IVAEModule",
    "LaplacePrior",
    "LossOutput",
    "MLP",
    "ObjectiveWeights",
    "PriorParams",
    "XTanh",
    "beta_tcvae_weights",
    "beta_vae_weights",
]
