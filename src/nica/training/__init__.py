"""Optimisation of nica models."""

from nica.training.trainer import LR_SCHEDULES, TrainConfig, TrainHistory, train

__all__ = ["LR_SCHEDULES", "TrainConfig", "TrainHistory", "train"]
