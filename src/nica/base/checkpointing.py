"""The checkpoints of a fit (every estimator of the skeleton, :class:`nica.base.Estimator`):
where they go, what identifies the fit, and the seed a resumed fit continues with.

A checkpoint is tied to its fit by a fingerprint of the settings that change the result
and of the training data, so ``fit(..., resume=True)`` refuses a checkpoint of another fit.

:func:`checkpoints_beside` gives a fit whose model is saved to a path a working folder of
checkpoints beside it, removed once the fit succeeded: ``nica fit`` checkpoints that way
without being asked, and ``--resume`` continues a killed fit.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._random import draw_seed
from nica.datasets.streaming import OneHotRows
from nica.training.checkpoint import CHECKPOINT_FILE, CheckpointError, Checkpointing, fingerprint

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
    standardised arrays, or for an out-of-core X its shape and column statistics. An
    estimator without a ``checkpoint_dir`` parameter fits without checkpoints.
    """
    if getattr(estimator, "checkpoint_dir", None) is None:
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


def working_folder(out: str | Path) -> Path:
    """The checkpoint folder of a fit whose model is saved to ``out``: ``.<name>.checkpoints``
    beside it (hidden, on the same file system)."""
    out = Path(out)
    return out.parent / f".{out.name}.checkpoints"


@contextlib.contextmanager
def checkpoints_beside(estimator: Any, out: str | Path, *, checkpoint_dir: str | Path | None = None,
                       resume: bool = False, remove: bool = True) -> Iterator[Path]:
    """Checkpoint the fit run inside the block, to resume it if the process is killed.

    ``estimator`` is any estimator with a ``checkpoint_dir`` parameter whose ``fit`` takes
    ``resume``. Its checkpoints go to ``checkpoint_dir`` when given (kept afterwards), or
    else to :func:`working_folder` ``(out)``, removed (when ``remove``: one process of a
    data-parallel fit) once the block ends without an error; a failed or killed fit keeps
    it, so that the same fit with ``resume=True`` continues. The estimator's own
    ``checkpoint_dir`` is restored after the block. Without ``resume``, a working folder
    left by an interrupted fit is refused before any work.

    Examples
    --------
    >>> from nica import IVAE, make_nonstationary
    >>> data = make_nonstationary(2, n_segments=5, n_per_segment=40, random_state=0)
    >>> model = IVAE(2, max_steps=20, random_state=0)
    >>> with checkpoints_beside(model, "/tmp/nica-doctest-model") as folder:
    ...     _ = model.fit(data.x, data.u, resume=True)
    ...     folder.name
    '.nica-doctest-model.checkpoints'
    >>> folder.exists()
    False
    """
    if "checkpoint_dir" not in estimator.get_params():
        raise TypeError(f"{type(estimator).__name__} cannot checkpoint its fit (it has no checkpoint_dir)")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else working_folder(out)
    if checkpoint_dir is None and not resume and (folder / CHECKPOINT_FILE).exists():
        raise FileExistsError(
            f"an earlier fit to {out} was interrupted and left its checkpoints in {folder}; pass "
            "resume=True (CLI: --resume) with the same settings to continue it, or delete that "
            "folder to start over"
        )
    previous = estimator.checkpoint_dir
    estimator.set_params(checkpoint_dir=folder)
    try:
        yield folder
    finally:
        estimator.set_params(checkpoint_dir=previous)
    if checkpoint_dir is None and remove:  # reached only when the block succeeded
        shutil.rmtree(folder, ignore_errors=True)
