"""Latents that depend on each other given u: :class:`LatentCausalVAE`, an iVAE whose
prior is the weight-variant linear-Gaussian latent causal model of Liu et al. (2022)
(the prior itself is :class:`nica.models.latent_causal.LatentCausalPrior`; the matching
data are :func:`nica.datasets.latent_scm.make_latent_scm`)."""

from nica.latent_causal.estimator import LatentCausalVAE

__all__ = ["LatentCausalVAE"]
