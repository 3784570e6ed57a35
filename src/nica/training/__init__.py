"""Optimisation of nica models."""

from nica.training.checkpoint import CheckpointError, Checkpointing
from nica.training.trainer import (
    LR_SCHEDULES,
    TrainConfig,
    TrainHistory,
    TrainingDivergedError,
    train,
)

__all__ = ["LR_SCHEDULES", "CheckpointError", "Checkpointing", "TrainConfig", "TrainHistory",
           "TrainingDivergedError", "train"]
