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
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nica._model_dir import absolute
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
    standardised arrays, or for an out-of-core X what the fit read of it
    (:func:`nica.datasets.streaming.streamed_data_id`: a digest of every row and the shape).
    An estimator without a ``checkpoint_dir`` parameter fits without checkpoints.
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
    out = absolute(out)
    return out.parent / f".{out.name}.checkpoints"


#: the lock file a fit holds in its checkpoint folder while it runs
LOCK_FILE = ".lock"


def nica_entries(name: str) -> bool:
    """Whether an entry of a checkpoint folder is one a fit writes: the checkpoint, its
    temporary files, the lock."""
    return name in (CHECKPOINT_FILE, LOCK_FILE) or name.startswith(f".{CHECKPOINT_FILE}.")


@contextlib.contextmanager
def fit_lock(folder: Path, out: str | Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file) for the block: a second fit
    to the same checkpoints is refused at once, instead of the two deleting each other's
    files. Released when the block ends or the process dies (``flock``); where the system
    has no ``fcntl`` (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = f" (its model goes to {out})" if out is not None else ""
            raise FileExistsError(f"another nica fit is running with the checkpoints in {folder}{owner}; wait "
                                  "for it to finish, or choose another output or checkpoint folder") from None
        try:  # the file may have been removed by the fit that held it just before: lock a fresh one
            same = os.path.samestat(os.fstat(fd), os.stat(folder / LOCK_FILE))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(folder / LOCK_FILE)  # while still held: a fit waiting on it then locks a fresh one
        os.close(fd)  # releases the lock


def _remove_own(folder: Path, *, remove_folder: bool) -> None:
    """Remove what a fit wrote in ``folder`` (the checkpoint, its temporary files, the
    lock) and, when ``remove_folder``, the folder itself if nothing else is in it."""
    for entry in folder.iterdir() if folder.is_dir() else []:
        if nica_entries(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
    if remove_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()  # fails, and keeps it, when anything else is in it


@contextlib.contextmanager
def checkpoints_beside(estimator: Any, out: str | Path, *, checkpoint_dir: str | Path | None = None,
                       resume: bool = False, remove: bool = True, lock: bool = True) -> Iterator[Path]:
    """Checkpoint the fit run inside the block, to resume it if the process is killed.

    ``estimator`` is any estimator with a ``checkpoint_dir`` parameter whose ``fit`` takes
    ``resume``. Its checkpoints go to ``checkpoint_dir`` when given (kept afterwards), or
    else to :func:`working_folder` ``(out)``, from which the fit's own files are removed
    (when ``remove``: one process of a data-parallel fit) once the block ends without an
    error, and the folder too if this fit (or the interrupted one it resumed) made it and
    nothing else is in it; a folder of the user's by that name keeps everything but nica's
    files. A failed or killed fit keeps its checkpoint, so that the same fit with
    ``resume=True`` continues. While the block runs the folder is locked (``lock``): a
    second fit to the same output is refused at once. The estimator's own
    ``checkpoint_dir`` is restored after the block. Without ``resume``, a checkpoint left by
    an interrupted fit is refused before any work.

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
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; nica keeps the fit's checkpoints there: "
                              "move it, or choose another output or checkpoint folder")
    if checkpoint_dir is None and not resume and (folder / CHECKPOINT_FILE).exists():
        raise FileExistsError(
            f"an earlier fit to {out} was interrupted and left its checkpoints in {folder}; pass "
            "resume=True (CLI: --resume) with the same settings to continue it, or delete that "
            "folder to start over"
        )
    # the working folder is removed afterwards only if a fit made it: absent now, or holding
    # nothing but a fit's files (an interrupted one's, resumed here)
    ours = not folder.exists() or all(nica_entries(entry.name) for entry in folder.iterdir())
    previous = estimator.checkpoint_dir
    estimator.set_params(checkpoint_dir=folder)
    try:
        with fit_lock(folder, out) if lock else contextlib.nullcontext():
            yield folder
            if checkpoint_dir is None and remove:  # reached only when the block succeeded
                _remove_own(folder, remove_folder=ours)
    finally:
        estimator.set_params(checkpoint_dir=previous)
        if ours and checkpoint_dir is None:
            with contextlib.suppress(OSError):
                folder.rmdir()  # a fit that failed before its first checkpoint leaves no empty folder
