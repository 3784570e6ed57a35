"""Former home of the beta-VAE baselines, now :mod:`nica.ivae.beta` (kept so that
``from nica.baselines.vae import BetaVAE`` keeps working)."""

from nica.ivae.beta import FIXED_BY_BETA, BetaTCVAE, BetaVAE

__all__ = ["BetaTCVAE", "BetaVAE", "FIXED_BY_BETA"]
