"""The checkpoints of an :class:`nica.IVAE` fit: where they go, what identifies the fit, and
the seed a resumed fit continues with.

A checkpoint is tied to its fit by a fingerprint of the settings that change the result
and of the training data, so ``fit(..., resume=True)`` refuses a checkpoint of another fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nica._random import draw_seed
from nica.datasets.streaming import OneHotRows
from nica.training.checkpoint import CheckpointError, Checkpointing, fingerprint

#: settings that do not change a fit's result: left out of the fingerprint
NOT_IN_FINGERPRINT = ("verbose", "device", "checkpoint_dir", "checkpoint_every", "random_state")


def aux_identity(u_rows: torch.Tensor | OneHotRows) -> tuple[np.ndarray, ...]:
    """Arrays that identify the encoded u in a checkpoint's fingerprint."""
    if isinstance(u_rows, OneHotRows):
        return u_rows.labels.cpu().numpy(), np.asarray([u_rows.n_classes])
    return (u_rows.cpu().numpy(),)


def fit_checkpointing(estimator: Any, data_id: tuple[np.ndarray, ...], resume: bool
                      ) -> tuple[Checkpointing | None, int]:
    """The fit's checkpoint settings and its seed (taken from the checkpoint on resume).

    ``estimator`` supplies ``checkpoint_dir``, ``checkpoint_every``, ``random_state`` and
    its settings (``get_params()``); ``data_id`` identifies the training data: the
    standardised arrays, or for an out-of-core X its shape and column statistics.
    """
    if estimator.checkpoint_dir is None:
        if resume:
            raise ValueError("resume=True needs checkpoint_dir: the folder the interrupted fit wrote to")
        return None, draw_seed(estimator.random_state)
    settings = {k: v for k, v in estimator.get_params().items() if k not in NOT_IN_FINGERPRINT}
    checkpoint = Checkpointing(estimator.checkpoint_dir, estimator.checkpoint_every,
                               fingerprint=fingerprint(settings, *data_id))
    saved = checkpoint.load() if resume else None
    if saved is None:
        if checkpoint.path.exists() and not resume:
            raise FileExistsError(
                f"{checkpoint.path} holds the checkpoint of an earlier fit; pass resume=True "
                "(CLI: --resume) to continue it, or delete it / choose another checkpoint_dir"
            )
        seed = draw_seed(estimator.random_state)
    else:
        seed = int(saved["metadata"]["seed"])
        random_state = estimator.random_state
        if isinstance(random_state, (int, np.integer)) and int(random_state) != seed:
            raise CheckpointError(
                f"the checkpoint in {estimator.checkpoint_dir} was written with random_state={seed}, "
                f"not {random_state}; pass the same random_state to resume"
            )
    checkpoint.metadata = {"seed": seed}
    return checkpoint, seed
