"""Identifiability metrics: MCC (strong) and CCA-aligned MCC (weak); regime accuracy."""

from nica.metrics.mcc import MCCResult, correlation_matrix, mean_corr_coef, pairwise_mcc, weak_mean_corr_coef
from nica.metrics.regimes import matched_accuracy, regime_accuracy

__all__ = ["MCCResult", "correlation_matrix", "matched_accuracy", "mean_corr_coef", "pairwise_mcc", "regime_accuracy",
           "weak_mean_corr_coef"]
