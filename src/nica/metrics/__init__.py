"""Identifiability metrics: MCC (strong) and CCA-aligned MCC (weak)."""

from nica.metrics.mcc import MCCResult, correlation_matrix, mean_corr_coef, pairwise_mcc, weak_mean_corr_coef

__all__ = ["MCCResult", "correlation_matrix", "mean_corr_coef", "pairwise_mcc", "weak_mean_corr_coef"]
