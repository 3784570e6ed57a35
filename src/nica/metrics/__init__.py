"""Identifiability metrics: MCC (strong) and CCA-aligned MCC (weak); agreement between fits with
different seeds (no true sources needed); regime accuracy."""

from nica.metrics.agreement import SeedAgreement, align_to, chance_agreement, seed_agreement
from nica.metrics.mcc import MCCResult, correlation_matrix, mean_corr_coef, pairwise_mcc, weak_mean_corr_coef
from nica.metrics.regimes import matched_accuracy, regime_accuracy

__all__ = ["MCCResult", "SeedAgreement", "align_to", "chance_agreement", "correlation_matrix", "matched_accuracy", "mean_corr_coef",
           "pairwise_mcc", "regime_accuracy", "seed_agreement", "weak_mean_corr_coef"]
